package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/cairnkv/cairn/snapshot"
)

// Source writes a consistent snapshot of the store to w and returns the
// revision it holds. It should stop early, with an error, once ctx is
// done; the scheduler also fails the writes it is given then.
type Source func(ctx context.Context, w io.Writer) (rev int64, err error)

// Config is a scheduler's settings and boundaries.
type Config struct {
	// Dir is the backup directory (--backup-dir); created if missing.
	Dir string
	// Interval is the time between attempts (--backup-interval).
	Interval time.Duration
	// Retention is how many backups to keep (--backup-retention).
	Retention int
	// LeaderOnly skips the attempt unless IsLeader says this member
	// leads (--backup-on-leader-only), asked at each tick.
	LeaderOnly bool
	IsLeader   func() bool
	// Format is the format Source writes: "etcd" (also "") or "cairn".
	Format string
	Source Source

	// Verify reads a written file back; nil: snapshot.Verify.
	Verify VerifyFunc
	// FS and Clock default to the real ones.
	FS     FS
	Clock  Clock
	Logger *slog.Logger
}

// CheckFlags validates --backup-dir, --backup-interval and
// --backup-retention, naming the flag at fault.
func CheckFlags(dir string, interval time.Duration, retention int) error {
	switch {
	case dir == "":
		return errors.New("--backup-dir is empty")
	case interval <= 0:
		return fmt.Errorf("--backup-interval must be > 0 when --backup-dir is set (got %v)", interval)
	case retention < 1:
		return fmt.Errorf("--backup-retention must be at least 1 when --backup-dir is set (got %d)", retention)
	}
	return nil
}

// Check reports a setting that cannot work, naming the flag.
func (c *Config) Check() error {
	if err := CheckFlags(c.Dir, c.Interval, c.Retention); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	switch {
	case c.Format != "" && c.Format != "etcd" && c.Format != "cairn":
		return fmt.Errorf("backup: unknown snapshot format %q (want etcd or cairn)", c.Format)
	case c.Source == nil:
		return errors.New("backup: no snapshot source")
	}
	return nil
}

// Stats are the figures the member's metrics report.
type Stats struct {
	// LastSuccess and LastFailure are when the latest successful and
	// failed attempts ended (zero: never).
	LastSuccess, LastFailure time.Time
	// LastDuration is how long the latest attempt took, successful or
	// not; LastSize and LastRevision are the latest backup's.
	LastDuration time.Duration
	LastSize     int64
	LastRevision int64
	Successes    uint64
	Failures     uint64
	// LastError is the latest failure's error ("" after a success).
	LastError string
}

// Scheduler takes the backups. Run it in a goroutine of its own.
type Scheduler struct {
	cfg Config
	lg  *slog.Logger

	mu    sync.Mutex
	stats Stats
}

// New checks cfg and makes a scheduler; it does no I/O.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Format == "" {
		cfg.Format = "etcd"
	}
	if cfg.Verify == nil {
		cfg.Verify = snapshot.Verify
	}
	if cfg.FS == nil {
		cfg.FS = OSFS{}
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return true }
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg, lg: lg}, nil
}

// Stats returns the scheduler's figures so far.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run creates the directory, removes the temporary files an interrupted
// attempt left, then attempts a backup at every tick until ctx is done.
// Nothing here is fatal: a failure is logged and counted, and the next
// tick tries again.
func (s *Scheduler) Run(ctx context.Context) {
	if err := s.prepare(); err != nil {
		s.lg.Error("backup: cannot prepare the backup directory; every attempt will be tried anyway", "dir", s.cfg.Dir, "err", err)
	}
	s.lg.Info("backup: scheduled backups", "dir", s.cfg.Dir, "interval", s.cfg.Interval, "retention", s.cfg.Retention,
		"leader-only", s.cfg.LeaderOnly, "format", s.cfg.Format)
	c, stop := s.cfg.Clock.Tick(s.cfg.Interval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c:
			if s.cfg.LeaderOnly && !s.cfg.IsLeader() {
				s.lg.Debug("backup: not the leader; skipping (--backup-on-leader-only)")
				continue
			}
			_, _ = s.Backup(ctx)
		}
	}
}

func (s *Scheduler) prepare() error {
	if err := s.cfg.FS.MkdirAll(s.cfg.Dir); err != nil {
		return err
	}
	names, err := s.cfg.FS.ReadDir(s.cfg.Dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if isTemp(n) {
			if err := s.cfg.FS.Remove(filepath.Join(s.cfg.Dir, n)); err != nil {
				return err
			}
			s.lg.Warn("backup: removed the temporary file of an interrupted backup", "file", n)
		}
	}
	return nil
}

// Backup takes one backup now, whether this member leads or not, and
// prunes the directory to the retention after a success. It records
// the outcome in Stats and logs it.
func (s *Scheduler) Backup(ctx context.Context) (Entry, error) {
	start := s.cfg.Clock.Now()
	e, err := s.write(ctx, start)
	end := s.cfg.Clock.Now()
	s.mu.Lock()
	s.stats.LastDuration = end.Sub(start)
	if err != nil {
		s.stats.LastFailure, s.stats.LastError = end, err.Error()
		s.stats.Failures++
	} else {
		s.stats.LastSuccess, s.stats.LastError = end, ""
		s.stats.LastSize, s.stats.LastRevision = e.Size, e.Revision
		s.stats.Successes++
	}
	s.mu.Unlock()
	if err != nil {
		s.lg.Error("backup: failed; retrying at the next interval", "dir", s.cfg.Dir, "took", end.Sub(start), "err", err)
		return Entry{}, err
	}
	s.lg.Info("backup: saved and verified", "file", filepath.Join(s.cfg.Dir, e.Name), "revision", e.Revision,
		"size", e.Size, "took", end.Sub(start))
	s.prune()
	return e, nil
}

// write makes one backup: temporary file, snapshot, fsync, read back,
// rename, fsync of the directory. On any error the temporary file (or
// the renamed file, if only the directory's fsync failed) is removed.
func (s *Scheduler) write(ctx context.Context, at time.Time) (_ Entry, err error) {
	fs, dir := s.cfg.FS, s.cfg.Dir
	if err := fs.MkdirAll(dir); err != nil {
		return Entry{}, fmt.Errorf("backup: create %s: %w", dir, err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, namePrefix+at.UTC().Format(timeLayout)+"-"+hex.EncodeToString(rnd[:])+tmpSuffix)
	f, err := fs.Create(tmp)
	if err != nil {
		return Entry{}, fmt.Errorf("backup: create %s: %w", tmp, err)
	}
	open := true
	defer func() {
		if open {
			f.Close()
		}
		if err != nil {
			if rerr := fs.Remove(tmp); rerr != nil {
				s.lg.Warn("backup: cannot remove the temporary file of a failed backup", "file", tmp, "err", rerr)
			}
		}
	}()
	w := &guardedWriter{ctx: ctx, w: f}
	rev, err := s.cfg.Source(ctx, w)
	if err == nil {
		err = w.err // a Source that swallowed a write error
	}
	if err != nil {
		return Entry{}, fmt.Errorf("backup: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return Entry{}, fmt.Errorf("backup: fsync %s: %w", tmp, err)
	}
	open = false
	if err := f.Close(); err != nil {
		return Entry{}, fmt.Errorf("backup: close %s: %w", tmp, err)
	}
	if err := verify(s.cfg.Verify, tmp, s.cfg.Format, rev); err != nil {
		return Entry{}, fmt.Errorf("backup: %w", err)
	}
	name := Name(at, rev, s.cfg.Format)
	final := filepath.Join(dir, name)
	if err := fs.Rename(tmp, final); err != nil {
		return Entry{}, fmt.Errorf("backup: rename %s: %w", tmp, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		// The file is whole but its name may not survive a crash: a
		// failure all the same, and nothing is left behind.
		if rerr := fs.Remove(final); rerr != nil {
			s.lg.Warn("backup: cannot remove a backup whose directory could not be synced", "file", final, "err", rerr)
		}
		return Entry{}, fmt.Errorf("backup: fsync directory %s: %w", dir, err)
	}
	info, _ := ParseName(name)
	return Entry{Info: info, Size: w.n, Verified: true}, nil
}

// prune deletes the oldest backups beyond the retention. Only files
// with a backup's name are counted and deleted.
func (s *Scheduler) prune() {
	names, err := s.cfg.FS.ReadDir(s.cfg.Dir)
	if err != nil {
		s.lg.Warn("backup: cannot list the backup directory to apply the retention", "dir", s.cfg.Dir, "err", err)
		return
	}
	all := backups(names)
	if len(all) <= s.cfg.Retention {
		return
	}
	for _, b := range all[:len(all)-s.cfg.Retention] {
		if err := s.cfg.FS.Remove(filepath.Join(s.cfg.Dir, b.Name)); err != nil {
			s.lg.Warn("backup: cannot remove an old backup", "file", b.Name, "err", err)
			continue
		}
		s.lg.Info("backup: removed an old backup (--backup-retention)", "file", b.Name, "retention", s.cfg.Retention)
	}
	if err := s.cfg.FS.SyncDir(s.cfg.Dir); err != nil {
		s.lg.Warn("backup: fsync the backup directory after the retention", "dir", s.cfg.Dir, "err", err)
	}
}

// guardedWriter counts what is written, refuses to write once ctx is
// done, and remembers the first error (a Source might not return it).
type guardedWriter struct {
	ctx context.Context
	w   io.Writer
	n   int64
	err error
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if err := g.ctx.Err(); err != nil {
		g.err = err
		return 0, err
	}
	n, err := g.w.Write(p)
	g.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	g.err = err
	return n, err
}
