//go:build !linux

package bench

import (
	"os/exec"
	"time"
)

// stopWithParent does nothing where the kernel offers no parent-death
// signal: workers of a bench that crashed must be stopped by hand there.
func stopWithParent(*exec.Cmd) {}

// The CPU readers need /proc: elsewhere the parts are left out.
func selfCPU() (time.Duration, bool)          { return 0, false }
func procCPU(int) (time.Duration, bool)       { return 0, false }
func commandCPU(string) map[int]time.Duration { return nil }
func machineCPU() (machineTimes, bool)        { return machineTimes{}, false }
