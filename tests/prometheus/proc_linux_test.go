package prometheus_test

import "syscall"

// sysProcAttr has the kernel kill Prometheus when the test binary dies
// (a panic or a -timeout), so it never outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
