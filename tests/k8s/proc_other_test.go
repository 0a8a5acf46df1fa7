//go:build !linux

package k8s

import "syscall"

// childProcAttr has nothing to add outside Linux, which alone has Pdeathsig.
func childProcAttr() *syscall.SysProcAttr { return nil }
