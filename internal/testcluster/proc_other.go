//go:build !linux

package testcluster

import "syscall"

// sysProcAttr has nothing to add outside Linux: a server may outlive a
// test binary that is killed there.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// lockFile does not lock outside Linux; builds from concurrent test
// binaries rely on go build's own atomic replacement of the output.
func lockFile(string) (func(), error) { return func() {}, nil }
