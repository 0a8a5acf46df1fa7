//go:build !linux

package wal

import "os"

// fdatasync falls back to a full fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// preallocate sets f's length to size; the file may be sparse.
func preallocate(f *os.File, size int64) error { return f.Truncate(size) }

// lockDir is a no-op outside Linux: Cairn's production target is Linux.
func lockDir(*os.File) error { return nil }
