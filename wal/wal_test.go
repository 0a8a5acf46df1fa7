package wal

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// small is the options most tests use: segments of 64 KiB keep Open from
// reading the default 64 MiB of preallocated zeros.
var small = Options{SegmentSize: 64 << 10}

func mustOpen(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

func mustClose(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func wantState(t testing.TB, dir string, opts Options, want string) {
	t.Helper()
	got, err := readBack(t, dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got != want {
		t.Fatalf("read back\n got %s\nwant %s", got, want)
	}
}

func TestOpenEmptyDirReadsZeroState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	if Exists(dir) {
		t.Fatal("Exists before Open")
	}
	w := mustOpen(t, dir, Options{})
	defer mustClose(t, w)
	snap, hs, ents, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if snap.GetIndex() != 0 || snap.ConfState == nil || !isEmptyHardState(hs) || len(ents) != 0 {
		t.Fatalf("fresh log read back %v %v %v", snap, hs, ents)
	}
	if !Exists(dir) {
		t.Fatal("Exists after Open = false")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(names) != 1 || filepath.Base(names[0]) != "0000000000000001-0000000000000001.wal" {
		t.Fatalf("files %v, want one first segment", names)
	}
	if _, _, _, err := w.ReadAll(); !errors.Is(err, ErrAlreadyRead) {
		t.Fatalf("second ReadAll: %v, want ErrAlreadyRead", err)
	}
}

func TestRoundTripAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, small)
	r := newRecorder(t, w)
	r.save(hardState(1, 1, 0), ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, ""))
	r.save(hardState(1, 1, 2))
	r.snapshot(snapMeta(2, 1, 1, 2, 3))
	r.save(hardState(2, 3, 3), ent(4, 2, "d"))
	mustClose(t, w)

	w = mustOpen(t, dir, small)
	snap, hs, ents, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stateKey(snap, hs, ents), r.m.key(); got != want {
		t.Fatalf("read back\n got %s\nwant %s", got, want)
	}
	if len(ents) != 2 || ents[0].GetType() != raftpb.EntryType_EntryNormal {
		t.Fatalf("entries %v", ents)
	}
	mustClose(t, w)
}

func TestOverwriteSuffixReplacesLaterEntries(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{SegmentSize: 4096})
	r := newRecorder(t, w)
	for i := uint64(1); i <= 10; i++ {
		r.save(hardState(1, 1, 0), ent(i, 1, "old"))
	}
	// A new leader overwrites 5..10 with a shorter suffix 5..7.
	r.save(hardState(2, 2, 4), ent(5, 2, "new"), ent(6, 2, "new"), ent(7, 2, "new"))
	// Append continues after the new last index.
	r.save(nil, ent(8, 2, "next"))
	want := r.m.key()
	if !strings.Contains(want, `[7/2 "new"][8/2 "next"]`) || strings.Contains(want, "[9/") {
		t.Fatalf("model state looks wrong: %s", want)
	}
	mustClose(t, w)
	wantState(t, dir, Options{}, want)
}

func TestReopenAppendReopen(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 2048}
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRecorder(t, nil)
	for cycle := range 8 {
		w := mustOpen(t, dir, opts)
		snap, hs, ents, err := w.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := stateKey(snap, hs, ents), r.m.key(); got != want {
			t.Fatalf("cycle %d read back\n got %s\nwant %s", cycle, got, want)
		}
		r.w = w
		r.workload(rng, 15)
		mustClose(t, w)
	}
	if n := len(segmentFiles(t, dir)); n < 2 {
		t.Fatalf("history spans %d segments, want several", n)
	}
	wantState(t, dir, opts, r.m.key())
}

func TestSegmentCutAndReleaseThenReopen(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1024}
	w := mustOpen(t, dir, opts)
	r := newRecorder(t, w)
	data := strings.Repeat("d", 100)
	for i := uint64(1); i <= 60; i++ {
		r.save(hardState(1, 1, i-1), ent(i, 1, data))
	}
	segs := segmentFiles(t, dir)
	if len(segs) < 5 {
		t.Fatalf("got %d segments for 60 entries of 100 bytes at 1 KiB each, want several", len(segs))
	}
	for i, name := range segs {
		seq, first, ok := parseSegmentName(name)
		if !ok || seq != uint64(i+1) {
			t.Fatalf("segment %d named %s", i, name)
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 1024 {
			t.Fatalf("%s is %d bytes, want preallocated 1024", name, fi.Size())
		}
		if i > 0 && first <= 1 {
			t.Fatalf("segment %s does not name its first index", name)
		}
	}

	// Without a snapshot marker nothing may go.
	if err := w.ReleaseTo(50); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != len(segs) {
		t.Fatalf("ReleaseTo without a snapshot removed segments: %v", got)
	}

	r.snapshot(snapMeta(30, 1, 1))
	if err := w.ReleaseTo(30); err != nil {
		t.Fatal(err)
	}
	kept := segmentFiles(t, dir)
	if len(kept) >= len(segs) {
		t.Fatalf("ReleaseTo(30) removed nothing: %v", kept)
	}
	// The oldest kept segment must still be needed: it either holds an entry
	// above 30 or is the segment right after the last one released.
	if _, first, _ := parseSegmentName(kept[0]); first > 31 {
		t.Fatalf("released too much: first kept segment %s", kept[0])
	}
	r.save(hardState(1, 1, 60), ent(61, 1, "after release"))
	mustClose(t, w)
	wantState(t, dir, opts, r.m.key())

	// Release everything the snapshot covers, reopen, keep going.
	w = mustOpen(t, dir, opts)
	r.w = w
	r.snapshot(snapMeta(61, 1, 1))
	if err := w.ReleaseTo(1000); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != 1 {
		t.Fatalf("after releasing everything, segments %v, want only the last", got)
	}
	r.save(hardState(2, 1, 61), ent(62, 2, "x"))
	mustClose(t, w)
	wantState(t, dir, opts, r.m.key())
}

func TestReleaseKeepsEntriesAboveSnapshot(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 512}
	w := mustOpen(t, dir, opts)
	r := newRecorder(t, w)
	for i := uint64(1); i <= 30; i++ {
		r.save(hardState(1, 1, i), ent(i, 1, strings.Repeat("e", 60)))
	}
	r.snapshot(snapMeta(10, 1))
	// Asking to release far beyond the marker must not drop entries 11..30.
	if err := w.ReleaseTo(25); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	wantState(t, dir, opts, r.m.key())
}

func TestSaveRejectsInvalidEntries(t *testing.T) {
	w := mustOpen(t, t.TempDir(), small)
	defer mustClose(t, w)
	if err := w.Save(nil, []*raftpb.Entry{ent(2, 1, "")}); err == nil || !strings.Contains(err.Error(), "gap") {
		t.Fatalf("Save with a gap: %v", err)
	}
	if err := w.Save(nil, []*raftpb.Entry{ent(1, 1, ""), ent(3, 1, "")}); err == nil {
		t.Fatal("Save with non-contiguous entries succeeded")
	}
	if err := w.SaveSnapshot(snapMeta(5, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(nil, []*raftpb.Entry{ent(5, 1, "")}); err == nil {
		t.Fatal("Save at the snapshot index succeeded")
	}
	if err := w.SaveSnapshot(snapMeta(4, 1)); err == nil {
		t.Fatal("SaveSnapshot moving backwards succeeded")
	}
	// Rejections are not failures: the log is still usable.
	if err := w.Save(hardState(1, 0, 0), []*raftpb.Entry{ent(6, 1, "ok")}); err != nil {
		t.Fatal(err)
	}
}

// countingSync counts fdatasyncs and fails them on demand.
type countingSync struct {
	n    int
	fail error
}

func (c *countingSync) sync(f *os.File) error {
	c.n++
	if c.fail != nil {
		return c.fail
	}
	return fdatasync(f)
}

func TestSaveSyncsOnceAndOnlyWhenItWrites(t *testing.T) {
	w := mustOpen(t, t.TempDir(), small)
	defer mustClose(t, w)
	var c countingSync
	w.sync = c.sync

	ents := make([]*raftpb.Entry, 100)
	for i := range ents {
		ents[i] = ent(uint64(i+1), 1, "payload")
	}
	if err := w.Save(hardState(1, 1, 0), ents); err != nil {
		t.Fatal(err)
	}
	if c.n != 1 {
		t.Fatalf("Save of 100 entries synced %d times, want 1", c.n)
	}
	for _, hs := range []*raftpb.HardState{nil, {}, hardState(1, 1, 0)} {
		if err := w.Save(hs, nil); err != nil {
			t.Fatal(err)
		}
	}
	if c.n != 1 {
		t.Fatalf("Saves with nothing new synced %d times, want none", c.n)
	}
	if err := w.Save(hardState(1, 1, 5), nil); err != nil {
		t.Fatal(err)
	}
	if c.n != 2 {
		t.Fatalf("Save of a changed hard state synced %d times, want 1", c.n-1)
	}
}

func TestFailedSyncFailsTheWAL(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, small)
	if err := w.Save(hardState(1, 1, 1), []*raftpb.Entry{ent(1, 1, "durable")}); err != nil {
		t.Fatal(err)
	}
	injected := errors.New("injected EIO")
	c := countingSync{fail: injected}
	w.sync = c.sync
	if err := w.Save(nil, []*raftpb.Entry{ent(2, 1, "lost")}); !errors.Is(err, injected) {
		t.Fatalf("Save with failing sync: %v", err)
	}
	c.fail = nil
	if err := w.Save(nil, []*raftpb.Entry{ent(2, 1, "retry")}); !errors.Is(err, injected) {
		t.Fatalf("Save after a failed sync: %v, want the sticky error", err)
	}
	if err := w.SaveSnapshot(snapMeta(1, 1)); !errors.Is(err, injected) {
		t.Fatalf("SaveSnapshot after a failed sync: %v, want the sticky error", err)
	}
	mustClose(t, w)
	// The write itself reached the page cache, so reopening may find entry 2;
	// what matters is that it opens and holds entry 1.
	got, err := readBack(t, dir, small)
	if err != nil || !strings.Contains(got, `[1/1 "durable"]`) {
		t.Fatalf("reopen after failed sync: %v %s", err, got)
	}
}

func TestClosedWALRejectsCalls(t *testing.T) {
	w := mustOpen(t, t.TempDir(), small)
	mustClose(t, w)
	if err := w.Save(hardState(1, 1, 1), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close: %v", err)
	}
	if err := w.SaveSnapshot(snapMeta(1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("SaveSnapshot after Close: %v", err)
	}
	if err := w.ReleaseTo(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReleaseTo after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenLocksTheDirectory(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, small)
	if _, err := Open(dir, small); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	mustClose(t, w)
	mustClose(t, mustOpen(t, dir, small))
}

func TestOpenRemovesLeftoverTempSegment(t *testing.T) {
	dir := t.TempDir()
	mustClose(t, mustOpen(t, dir, small))
	tmp := filepath.Join(dir, segmentName(2, 1)+tmpExt)
	if err := os.WriteFile(tmp, []byte("half-built"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustClose(t, mustOpen(t, dir, small))
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover temp segment still there: %v", err)
	}
}

func TestSegmentNames(t *testing.T) {
	name := segmentName(1, 1)
	if name != "0000000000000001-0000000000000001.wal" {
		t.Fatalf("segmentName(1, 1) = %s", name)
	}
	for _, tc := range []struct {
		name      string
		seq, frst uint64
		ok        bool
	}{
		{"0000000000000002-00000000000a3f01.wal", 2, 0xa3f01, true},
		{"0000000000000000-0000000000000001.wal", 0, 0, false},
		{"0000000000000001-0000000000000001.wal.tmp", 0, 0, false},
		{"000000000000001-0000000000000001.wal", 0, 0, false},
		{"000000000000000g-0000000000000001.wal", 0, 0, false},
		{"notes.txt", 0, 0, false},
	} {
		seq, first, ok := parseSegmentName(tc.name)
		if ok != tc.ok || seq != tc.seq || first != tc.frst {
			t.Errorf("parseSegmentName(%q) = %d, %d, %v", tc.name, seq, first, ok)
		}
	}
}

// segmentFiles lists the segment file names in dir in log order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(segs))
	for i, s := range segs {
		names[i] = filepath.Base(s.path)
	}
	return names
}

func TestSaveLargerThanASegment(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1024}
	w := mustOpen(t, dir, opts)
	r := newRecorder(t, w)
	big := strings.Repeat("B", 3000)
	r.save(hardState(1, 1, 0), ent(1, 1, big), ent(2, 1, big))
	r.save(hardState(1, 1, 2), ent(3, 1, "small"))
	r.save(nil, ent(4, 1, big))
	mustClose(t, w)
	if n := len(segmentFiles(t, dir)); n != 3 {
		t.Fatalf("got %d segments, want 3: an oversized write fills one segment alone", n)
	}
	wantState(t, dir, opts, r.m.key())
}

func TestReleaseConcurrentWithSave(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 512}
	w := mustOpen(t, dir, opts)
	r := newRecorder(t, w)
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := w.ReleaseTo(^uint64(0)); err != nil {
				errc <- err
				return
			}
		}
	}()
	for i := uint64(1); i <= 200; i++ {
		r.save(hardState(1, 1, i-1), ent(i, 1, strings.Repeat("c", 50)))
		if i%10 == 0 {
			r.snapshot(snapMeta(i-5, 1))
		}
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatalf("ReleaseTo: %v", err)
	}
	mustClose(t, w)
	wantState(t, dir, opts, r.m.key())
}

func TestSaveNoSyncDefersTheSyncUntilCloseOrTheNextSave(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, small)
	var c countingSync
	w.sync = c.sync
	if err := w.Save(hardState(1, 1, 0), []*raftpb.Entry{ent(1, 1, "a")}); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveNoSync(hardState(1, 1, 1), nil); err != nil {
		t.Fatal(err)
	}
	if c.n != 1 {
		t.Fatalf("SaveNoSync synced: %d syncs, want 1", c.n)
	}
	mustClose(t, w)
	if c.n != 2 {
		t.Fatalf("Close after SaveNoSync made %d syncs in all, want 2", c.n)
	}
	w = mustOpen(t, dir, small)
	defer mustClose(t, w)
	_, hs, ents, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if hs.GetCommit() != 1 || len(ents) != 1 {
		t.Fatalf("after reopen: commit %d, %d entries; want commit 1, 1 entry", hs.GetCommit(), len(ents))
	}
}
