//go:build !unix

package server

// Open file descriptors are counted on Unix only.
func fdUsed() int     { return 0 }
func fdLimit() uint64 { return 0 }
