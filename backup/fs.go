package backup

import (
	"io"
	"os"
	"time"
)

// File is a file being written.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// FS is what the scheduler does to the backup directory. OSFS is the
// real one; tests wrap it to fail a write, a sync or a rename.
type FS interface {
	MkdirAll(dir string) error
	// Create creates a new file (it must not exist) for writing.
	Create(path string) (File, error)
	Rename(from, to string) error
	Remove(path string) error
	// SyncDir makes the directory's entries (a rename, a removal)
	// durable.
	SyncDir(dir string) error
	// ReadDir lists the directory's entry names.
	ReadDir(dir string) ([]string, error)
}

// OSFS is FS on the operating system's files.
type OSFS struct{}

// MkdirAll creates dir (mode 0700) and its parents.
func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }

// Create creates path exclusively, mode 0600.
func (OSFS) Create(path string) (File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// Rename renames from to to.
func (OSFS) Rename(from, to string) error { return os.Rename(from, to) }

// Remove removes path.
func (OSFS) Remove(path string) error { return os.Remove(path) }

// SyncDir fsyncs the directory dir.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadDir lists dir's entry names.
func (OSFS) ReadDir(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name()
	}
	return names, nil
}

// Clock is the scheduler's time.
type Clock interface {
	Now() time.Time
	// Tick delivers a time every d, dropping ticks a slow reader misses
	// (time.Ticker's behaviour); stop releases it.
	Tick(d time.Duration) (c <-chan time.Time, stop func())
}

// RealClock is the system clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Tick is a time.Ticker.
func (RealClock) Tick(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
