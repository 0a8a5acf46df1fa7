package k8s

import "syscall"

// childProcAttr makes the kernel kill a server when the test binary that
// started it dies, so a crashed or killed test run leaves no server behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
