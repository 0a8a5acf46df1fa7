package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/snapshot"
	"github.com/cairnkv/cairn/storage"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// engineAt builds an in-memory engine whose store is at revision rev,
// with one key per revision, each of valueSize bytes.
func engineAt(t testing.TB, rev int64, valueSize int) storage.Engine {
	t.Helper()
	eng, err := storage.OpenPebble("", storage.PebbleOptions{InMemory: true, Split: mvcc.SplitKey})
	must(t, err)
	t.Cleanup(func() { eng.Close() })
	b := eng.NewWriteBatch()
	defer b.Close()
	for r := int64(2); r <= rev; r++ {
		v := &mvcc.Version{Key: fmt.Appendf(nil, "k%06d", r), Value: []byte(strings.Repeat("v", valueSize)), Create: r, Mod: r, Ver: 1}
		must(t, mvcc.ImportVersion(b, v))
	}
	must(t, mvcc.ImportMeta(b, mvcc.Meta{Rev: rev, Applied: uint64(rev)}))
	must(t, b.Commit())
	return eng
}

// etcdSnapshot is an etcd-format snapshot of a store at rev.
func etcdSnapshot(t testing.TB, rev int64, valueSize int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snap.db")
	if _, _, err := snapshot.WriteEtcd(engineAt(t, rev, valueSize), path, snapshot.EtcdOptions{Term: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	must(t, err)
	return b
}

// source serves etcd snapshots whose revision grows by 10 each call,
// starting at 10, made up front (the scheduler must not wait on them).
type source struct {
	mu    sync.Mutex
	snaps [][]byte
	revs  []int64
	calls int
	// fail, when set, is returned instead of a snapshot.
	fail error
	// garbage writes bytes that are no snapshot at all.
	garbage bool
}

// snaps are five etcd snapshots at revisions 10, 20, ... 50, made once
// for every test.
var snaps struct {
	once  sync.Once
	snaps [][]byte
	revs  []int64
}

func newSource(t testing.TB) *source {
	snaps.once.Do(func() {
		for i := range 5 {
			rev := int64(10 * (i + 1))
			snaps.snaps = append(snaps.snaps, etcdSnapshot(t, rev, 10))
			snaps.revs = append(snaps.revs, rev)
		}
	})
	return &source{snaps: snaps.snaps, revs: snaps.revs}
}

func (s *source) write(ctx context.Context, w io.Writer) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if s.garbage {
		_, err := w.Write([]byte("definitely not a snapshot"))
		return 99, err
	}
	i := min(s.calls, len(s.snaps)-1)
	s.calls++
	if _, err := w.Write(s.snaps[i]); err != nil {
		return 0, err
	}
	return s.revs[i], nil
}

// fakeClock ticks when the test says; each tick moves time on a minute.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
	c   chan time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 4, 18, 30, 0, 0, time.UTC), c: make(chan time.Time)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Tick(time.Duration) (<-chan time.Time, func()) { return c.c, func() {} }

// tick advances the time and hands Run a tick (blocking until Run takes
// it: Run is then done with the previous one).
func (c *fakeClock) tick(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	c.now = c.now.Add(time.Minute)
	now := c.now
	c.mu.Unlock()
	select {
	case c.c <- now:
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduler did not take a tick within 10s: it is stuck")
	}
}

// faultFS is OSFS with injectable failures.
type faultFS struct {
	OSFS
	mu                                                      sync.Mutex
	failCreate, failSync, failRename, failSyncDir, failRead error
	// fullAfter, when > 0, fails writes with ENOSPC past that many bytes.
	fullAfter int64
}

func (f *faultFS) get(p *error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *p
}

func (f *faultFS) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCreate, f.failSync, f.failRename, f.failSyncDir, f.failRead, f.fullAfter = nil, nil, nil, nil, nil, 0
}

func (f *faultFS) Create(path string) (File, error) {
	if err := f.get(&f.failCreate); err != nil {
		return nil, err
	}
	file, err := f.OSFS.Create(path)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &faultFile{File: file, fs: f, limit: f.fullAfter}, nil
}

func (f *faultFS) Rename(from, to string) error {
	if err := f.get(&f.failRename); err != nil {
		return err
	}
	return f.OSFS.Rename(from, to)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.get(&f.failSyncDir); err != nil {
		return err
	}
	return f.OSFS.SyncDir(dir)
}

type faultFile struct {
	File
	fs      *faultFS
	limit   int64
	written int64
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.limit > 0 && f.written+int64(len(p)) > f.limit {
		n := int(f.limit - f.written)
		n, _ = f.File.Write(p[:n])
		f.written += int64(n)
		return n, &os.PathError{Op: "write", Path: "backup", Err: syscall.ENOSPC}
	}
	n, err := f.File.Write(p)
	f.written += int64(n)
	return n, err
}

func (f *faultFile) Sync() error {
	if err := f.fs.get(&f.fs.failSync); err != nil {
		return err
	}
	return f.File.Sync()
}

// harness runs a scheduler on a temporary directory.
type harness struct {
	t      *testing.T
	dir    string
	clock  *fakeClock
	fs     *faultFS
	src    *source
	s      *Scheduler
	leader atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
}

func newHarness(t *testing.T, retention int, edit func(*Config)) *harness {
	h := &harness{t: t, dir: filepath.Join(t.TempDir(), "backups"), clock: newClock(), fs: &faultFS{}, src: newSource(t)}
	h.leader.Store(true)
	cfg := Config{Dir: h.dir, Interval: time.Minute, Retention: retention, LeaderOnly: true, IsLeader: h.leader.Load,
		Source: h.src.write, FS: h.fs, Clock: h.clock}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	must(t, err)
	h.s = s
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.s.Run(ctx)
	}()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return within 10s of its context's end")
	}
}

// attempt ticks and waits until the attempt the tick starts is over.
func (h *harness) attempt() Stats {
	h.t.Helper()
	before := h.s.Stats()
	h.clock.tick(h.t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := h.s.Stats()
		if st.Successes+st.Failures > before.Successes+before.Failures {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatal("no attempt ended within 10s of a tick")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) files() []string {
	h.t.Helper()
	names, err := OSFS{}.ReadDir(h.dir)
	must(h.t, err)
	slices.Sort(names)
	return names
}

func TestNames(t *testing.T) {
	at := time.Date(2026, 12, 4, 19, 30, 0, 0, time.FixedZone("CET", 3600))
	if got, want := Name(at, 12345, "etcd"), "cairn-backup-20261204T183000Z-r000000012345.db"; got != want {
		t.Fatalf("Name = %q, want %q", got, want)
	}
	if got, want := Name(at, 7, "cairn"), "cairn-backup-20261204T183000Z-r000000000007.cairn"; got != want {
		t.Fatalf("Name = %q, want %q", got, want)
	}
	info, ok := ParseName("cairn-backup-20261204T183000Z-r000000012345.db")
	if !ok || info.Revision != 12345 || !info.Time.Equal(at) || info.Format != "etcd" {
		t.Fatalf("ParseName = %+v, %v", info, ok)
	}
	for _, n := range []string{"cairn-backup-20261204T183000Z-ab12cd34.tmp", "cairn-backup-20261204T183000Z-r12345.db",
		"notes.txt", "cairn-backup-20261204T183000Z-r000000012345.db.bak", "x-cairn-backup-20261204T183000Z-r000000012345.db"} {
		if _, ok := ParseName(n); ok {
			t.Errorf("ParseName(%q) accepted it", n)
		}
	}
	// Time orders backups before revision does, and a revision past 12
	// digits still parses.
	got := backups([]string{Name(at.Add(time.Hour), 5, ""), "other", Name(at, 1e13, ""), Name(at, 9, "")})
	var order []int64
	for _, b := range got {
		order = append(order, b.Revision)
	}
	if !slices.Equal(order, []int64{9, 1e13, 5}) {
		t.Fatalf("order %v", order)
	}
}

func TestConfigCheck(t *testing.T) {
	src := func(context.Context, io.Writer) (int64, error) { return 0, nil }
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Interval: time.Second, Retention: 1, Source: src}, "--backup-dir"},
		{Config{Dir: "d", Retention: 1, Source: src}, "--backup-interval must be > 0"},
		{Config{Dir: "d", Interval: -time.Second, Retention: 1, Source: src}, "--backup-interval must be > 0"},
		{Config{Dir: "d", Interval: time.Second, Source: src}, "--backup-retention must be at least 1"},
		{Config{Dir: "d", Interval: time.Second, Retention: 1, Format: "bolt", Source: src}, "unknown snapshot format"},
		{Config{Dir: "d", Interval: time.Second, Retention: 1}, "no snapshot source"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
}

// Scheduled backups rotate: with a retention of 3, five backups leave the
// three newest; each verifies and loads into an empty engine at its
// revision; files that are not backups are left alone.
func TestScheduledBackupsRotate(t *testing.T) {
	h := newHarness(t, 3, nil)
	must(t, os.MkdirAll(h.dir, 0o700))
	for _, n := range []string{"notes.txt", "cairn-backup-manual.db"} {
		must(t, os.WriteFile(filepath.Join(h.dir, n), []byte("keep me"), 0o600))
	}
	h.run()
	for i := range 5 {
		st := h.attempt()
		if st.Failures != 0 || st.Successes != uint64(i+1) || st.LastRevision != int64(10*(i+1)) || st.LastSize != int64(len(h.src.snaps[i])) {
			t.Fatalf("after attempt %d: %+v", i+1, st)
		}
	}
	want := []string{"cairn-backup-20261204T183300Z-r000000000030.db", "cairn-backup-20261204T183400Z-r000000000040.db",
		"cairn-backup-20261204T183500Z-r000000000050.db", "cairn-backup-manual.db", "notes.txt"}
	if got := h.files(); !slices.Equal(got, want) {
		t.Fatalf("files %v\nwant %v", got, want)
	}
	entries, err := List(h.dir)
	must(t, err)
	if len(entries) != 3 {
		t.Fatalf("List: %+v", entries)
	}
	for _, e := range entries {
		if !e.Verified || e.Size != int64(len(h.src.snaps[e.Revision/10-1])) {
			t.Errorf("List entry %+v", e)
		}
		eng, err := storage.OpenPebble("", storage.PebbleOptions{InMemory: true, Split: mvcc.SplitKey})
		must(t, err)
		meta, f, err := snapshot.Load(filepath.Join(h.dir, e.Name), eng, false)
		eng.Close()
		if err != nil || f != snapshot.Etcd || meta.Rev != e.Revision {
			t.Errorf("%s loads as %v rev %d (%v)", e.Name, f, meta.Rev, err)
		}
	}
}

// Each injected failure fails the attempt with an error naming the step,
// leaves the directory as it was (no temporary or partial file, the
// earlier backup kept), and the next tick, with the fault gone, succeeds.
func TestFailedBackupLeavesNothingAndIsRetried(t *testing.T) {
	errDisk := errors.New("injected I/O error")
	for _, tc := range []struct {
		name   string
		inject func(h *harness)
		want   string
	}{
		{"create", func(h *harness) { h.fs.failCreate = errDisk }, "backup: create"},
		{"disk full", func(h *harness) { h.fs.fullAfter = 4096 }, "no space left on device"},
		{"fsync", func(h *harness) { h.fs.failSync = errDisk }, "backup: fsync"},
		{"rename", func(h *harness) { h.fs.failRename = errDisk }, "backup: rename"},
		{"directory fsync", func(h *harness) { h.fs.failSyncDir = errDisk }, "backup: fsync directory"},
		{"source", func(h *harness) { h.src.fail = errors.New("store closed") }, "store closed"},
		{"verification", func(h *harness) { h.src.garbage = true }, "verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 3, nil)
			h.run()
			if st := h.attempt(); st.Successes != 1 {
				t.Fatalf("first backup: %+v", st)
			}
			before := h.files()
			h.fs.mu.Lock()
			h.src.mu.Lock()
			tc.inject(h)
			h.src.mu.Unlock()
			h.fs.mu.Unlock()
			st := h.attempt()
			if st.Failures != 1 || !strings.Contains(st.LastError, tc.want) || st.LastFailure.IsZero() {
				t.Fatalf("failed attempt: %+v, want an error with %q", st, tc.want)
			}
			if got := h.files(); !slices.Equal(got, before) {
				t.Fatalf("after the failure the directory holds %v, want %v", got, before)
			}
			h.fs.clear()
			h.src.mu.Lock()
			h.src.fail, h.src.garbage = nil, false
			h.src.mu.Unlock()
			st = h.attempt()
			if st.Successes != 2 || st.LastError != "" || len(h.files()) != 2 {
				t.Fatalf("retry: %+v, files %v", st, h.files())
			}
		})
	}
}

// A follower skips its ticks when leader-only, and backs up once it
// leads; with leader-only off it backs up regardless.
func TestLeaderOnly(t *testing.T) {
	h := newHarness(t, 3, nil)
	h.leader.Store(false)
	h.run()
	h.clock.tick(t)
	h.clock.tick(t) // taken only once the first tick is done with
	if st := h.s.Stats(); st.Successes+st.Failures != 0 {
		t.Fatalf("a follower attempted a backup: %+v", st)
	}
	h.leader.Store(true)
	if st := h.attempt(); st.Successes != 1 {
		t.Fatalf("leader: %+v", st)
	}

	h2 := newHarness(t, 3, func(c *Config) { c.LeaderOnly = false })
	h2.leader.Store(false)
	h2.run()
	if st := h2.attempt(); st.Successes != 1 {
		t.Fatalf("leader-only off: %+v", st)
	}
}

// Temporary files of an interrupted backup are removed when the
// scheduler starts; other files are not.
func TestLeftoverTempFilesRemovedAtStart(t *testing.T) {
	h := newHarness(t, 3, nil)
	must(t, os.MkdirAll(h.dir, 0o700))
	leftover := filepath.Join(h.dir, "cairn-backup-20261204T180000Z-0badf00d.tmp")
	other := filepath.Join(h.dir, "unrelated.tmp")
	must(t, os.WriteFile(leftover, []byte("half"), 0o600))
	must(t, os.WriteFile(other, []byte("mine"), 0o600))
	h.leader.Store(false)
	h.run()
	h.clock.tick(t) // Run has prepared the directory
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover temporary file still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("an unrelated file was removed: %v", err)
	}
}

// A backup that hangs never holds up the caller: Stats answers while it
// runs, and Run returns promptly once its context ends, removing the
// temporary file.
func TestStuckBackupNeverHoldsUpTheCaller(t *testing.T) {
	started := make(chan struct{})
	h := newHarness(t, 3, func(c *Config) {
		c.Source = func(ctx context.Context, w io.Writer) (int64, error) {
			close(started)
			for {
				if _, err := w.Write(make([]byte, 512)); err != nil {
					return 0, err
				}
				time.Sleep(time.Millisecond)
			}
		}
	})
	h.run()
	h.clock.tick(t)
	<-started
	statsDone := make(chan Stats)
	go func() { statsDone <- h.s.Stats() }()
	select {
	case <-statsDone:
	case <-time.After(5 * time.Second):
		t.Fatal("Stats blocked while a backup was running")
	}
	h.stop()
	if st := h.s.Stats(); st.Failures != 1 || !strings.Contains(st.LastError, "context canceled") {
		t.Fatalf("after stop: %+v", st)
	}
	if got := h.files(); len(got) != 0 {
		t.Fatalf("files left: %v", got)
	}
}

// On a real, small tmpfs with room for one and a half backups, the
// second backup fills the disk: it fails with ENOSPC, leaves nothing
// behind and keeps the first backup (none is deleted to make room); once
// space is freed the next tick succeeds.
func TestFullDiskOnTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	snap := etcdSnapshot(t, 20, 10)
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, fmt.Sprintf("size=%d", len(snap)*3/2)); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	h := newHarness(t, 3, func(c *Config) {
		c.Dir = filepath.Join(mnt, "backups")
		c.FS = OSFS{}
		c.Source = func(ctx context.Context, w io.Writer) (int64, error) {
			_, err := w.Write(snap)
			return 20, err
		}
	})
	h.dir = filepath.Join(mnt, "backups")
	h.run()
	if st := h.attempt(); st.Successes != 1 {
		t.Fatalf("first backup: %+v", st)
	}
	before := h.files()
	st := h.attempt()
	if st.Failures != 1 || !strings.Contains(st.LastError, "no space left on device") {
		t.Fatalf("second backup on a full disk: %+v", st)
	}
	if got := h.files(); !slices.Equal(got, before) {
		t.Fatalf("after ENOSPC the directory holds %v, want %v", got, before)
	}
	must(t, os.Remove(filepath.Join(h.dir, before[0])))
	if st := h.attempt(); st.Successes != 2 {
		t.Fatalf("retry after freeing space: %+v", st)
	}
	if got := h.files(); len(got) != 1 {
		t.Fatalf("files %v", got)
	}
}
