//go:build unix

package server

import (
	"os"
	"syscall"
)

// fdUsed counts this process's open file descriptors (the entries of
// /proc/self/fd; 0 where there is no such directory), as etcd's
// os_fd_used.
func fdUsed() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// fdLimit is the soft limit on open file descriptors (os_fd_limit).
func fdLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}
