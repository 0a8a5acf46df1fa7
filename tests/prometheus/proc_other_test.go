//go:build !linux

package prometheus_test

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
