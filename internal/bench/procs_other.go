//go:build !linux

package bench

import "os/exec"

// stopWithParent does nothing where the kernel offers no parent-death
// signal: workers of a bench that crashed must be stopped by hand there.
func stopWithParent(*exec.Cmd) {}
