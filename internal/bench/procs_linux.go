package bench

import (
	"os/exec"
	"syscall"
)

// stopWithParent makes the kernel send the worker SIGTERM when the bench
// dies (a panic, SIGKILL), so its workers never live on unattended.
func stopWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
