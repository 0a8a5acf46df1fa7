package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNilLogIsANoOp(t *testing.T) {
	var l *Log
	l.Record(Entry{Method: "/etcdserverpb.KV/Put"})
	if n := l.Dropped(); n != 0 {
		t.Fatalf("Dropped() = %d", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	off, err := Open(Config{})
	if off != nil || err != nil {
		t.Fatalf("Open with no path = %v, %v; want nil, nil", off, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "audit.log")
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Path: missing}, "audit: open " + missing},
		{Config{Path: filepath.Join(dir, "a"), MaxSizeMB: -1}, "max size -1"},
		{Config{Path: filepath.Join(dir, "a"), MaxBackups: -2}, "max backups -2"},
	} {
		l, err := Open(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, %v; want an error with %q", tc.cfg, l, err, tc.want)
		}
	}
}

func TestFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("audit file mode %v, want no group or other access", perm)
	}
}

func TestStderrPath(t *testing.T) {
	l, err := Open(Config{Path: "-"})
	if err != nil || l == nil {
		t.Fatalf("Open(-) = %v, %v", l, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFlushesEverythingQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(Config{Path: path, BufferSize: 10000})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := 0; i < n; i++ {
		l.Record(Entry{Method: "/etcdserverpb.KV/Put", Key: []byte("k"), Code: "OK", Revision: int64(i + 1)})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != n || l.Dropped() != 0 {
		t.Fatalf("got %d lines and %d dropped, want %d and 0", len(lines), l.Dropped(), n)
	}
	for i, m := range lines {
		if m["revision"] != float64(i+1) {
			t.Fatalf("line %d has revision %v: lines out of order", i, m["revision"])
		}
	}
	// After Close, Record does nothing and Close is idempotent.
	l.Record(Entry{Method: "/etcdserverpb.KV/Put", Code: "OK"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(readLines(t, path)); got != n {
		t.Fatalf("Record after Close wrote: %d lines", got)
	}
}

func TestOpenAppendsToAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for i := 0; i < 2; i++ {
		l, err := Open(Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		l.Record(Entry{Method: "/etcdserverpb.KV/Put", Code: "OK"})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(readLines(t, path)); got != 2 {
		t.Fatalf("got %d lines after two opens, want 2", got)
	}
}

func TestRecordCopiesKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	s := newStallSink()
	l := newLog(Config{Path: path}, s, time.Hour)
	key, end := []byte("/key"), []byte("/end")
	l.Record(Entry{Method: "/etcdserverpb.KV/Range", Key: key, RangeEnd: end, Code: "OK"})
	copy(key, "XXXX")
	copy(end, "YYYY")
	close(s.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := splitLines(t, s.bytes())
	if len(lines) != 1 || lines[0]["key"] != "/key" || lines[0]["range_end"] != "/end" {
		t.Fatalf("got %v; the caller's later change to its slices reached the log", lines)
	}
}

func TestReadsOffSkipsReadsButNotRefusals(t *testing.T) {
	for _, reads := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "audit.log")
		l, err := Open(Config{Path: path, Reads: reads})
		if err != nil {
			t.Fatal(err)
		}
		entries := []Entry{
			{Method: "/etcdserverpb.KV/Range", Code: "OK", Read: true},
			{Method: "/etcdserverpb.Watch/Watch", Code: "OK", Read: true},
			{Method: "/etcdserverpb.KV/Range", Code: "PermissionDenied", Read: true},
			{Method: "/etcdserverpb.KV/Range", Code: "Unauthenticated", Read: true},
			{Method: "/etcdserverpb.Auth/Authenticate", Code: "InvalidArgument", Read: true},
			{Method: "/etcdserverpb.KV/Put", Code: "OK"},
		}
		for _, e := range entries {
			l.Record(e)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range readLines(t, path) {
			got = append(got, m["method"].(string)+" "+m["code"].(string))
		}
		want := []string{
			"/etcdserverpb.KV/Range PermissionDenied",
			"/etcdserverpb.KV/Range Unauthenticated",
			"/etcdserverpb.Auth/Authenticate InvalidArgument",
			"/etcdserverpb.KV/Put OK",
		}
		if reads {
			want = append([]string{"/etcdserverpb.KV/Range OK", "/etcdserverpb.Watch/Watch OK"}, want...)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("reads=%v: got\n%s\nwant\n%s", reads, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if l.Dropped() != 0 {
			t.Errorf("reads=%v: skipped reads counted as dropped: %d", reads, l.Dropped())
		}
	}
}

// The point of the queue: a writer stuck on a disk never holds up a
// request. Lines beyond the queue are dropped, counted, reported to the
// logger while the writer is still stuck, and marked in the file once it
// catches up.
func TestRecordNeverBlocksWhenTheWriterStalls(t *testing.T) {
	const queue, extra = 8, 5
	rec, logger := newRecords()
	s := newStallSink()
	l := newLog(Config{Path: "x", BufferSize: queue, Logger: logger, Member: "m1"}, s, 10*time.Millisecond)

	l.Record(Entry{Method: "/etcdserverpb.KV/Put", Code: "OK", Revision: 1})
	<-s.entered // the writer holds entry 1 and is stuck in write

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < queue+extra; i++ {
			l.Record(Entry{Method: "/etcdserverpb.KV/Put", Code: "OK", Revision: int64(i + 2)})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Record blocked behind a stalled writer")
	}
	if got := l.Dropped(); got != extra {
		t.Fatalf("Dropped() = %d, want %d", got, extra)
	}
	// Reported while the writer is still stuck.
	eventually(t, "a drop warning", func() bool { return len(rec.find("audit: queue full, lines dropped")) > 0 })
	w := rec.find("audit: queue full, lines dropped")[0]
	if w["dropped"].Uint64() != extra || w["total"].Uint64() != extra {
		t.Fatalf("warning %v, want dropped=%d total=%d", w, extra, extra)
	}

	close(s.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	req, ev := requests(splitLines(t, s.bytes()))
	if len(req) != 1+queue {
		t.Fatalf("got %d request lines, want %d", len(req), 1+queue)
	}
	if len(ev) != 1 || ev[0]["event"] != "dropped" || ev[0]["count"] != float64(extra) ||
		ev[0]["v"] != 1.0 || ev[0]["member"] != "m1" || ev[0]["time"] == "" {
		t.Fatalf("events %v, want one dropped event with count %d", ev, extra)
	}
	// One warning for the one run of drops: nothing new was dropped since.
	if n := len(rec.find("audit: queue full, lines dropped")); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
}

// Drops right before Close are reported by Close itself, not lost with
// the reporter's last tick.
func TestCloseReportsLateDrops(t *testing.T) {
	rec, logger := newRecords()
	s := newStallSink()
	l := newLog(Config{Path: "x", BufferSize: 1, Logger: logger}, s, time.Hour)
	l.Record(Entry{Method: "a", Code: "OK"})
	<-s.entered
	l.Record(Entry{Method: "b", Code: "OK"}) // queued
	l.Record(Entry{Method: "c", Code: "OK"}) // dropped
	close(s.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	w := rec.find("audit: queue full, lines dropped")
	if len(w) != 1 || w[0]["dropped"].Uint64() != 1 {
		t.Fatalf("warnings %v, want one with dropped=1", w)
	}
	_, ev := requests(splitLines(t, s.bytes()))
	if len(ev) != 1 || ev[0]["count"] != 1.0 {
		t.Fatalf("events %v, want one dropped event with count 1", ev)
	}
}

func TestWriteErrorsAreReported(t *testing.T) {
	rec, logger := newRecords()
	l := newLog(Config{Path: "x", Logger: logger}, failSink{}, time.Hour)
	l.Record(Entry{Method: "a", Code: "OK"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	e := rec.find("audit: write failed, lines lost")
	if len(e) == 0 || e[0]["lost"].Uint64() != 1 || !strings.Contains(e[0]["error"].String(), "disk on fire") {
		t.Fatalf("error reports %v, want one with lost=1 and the error", e)
	}
}

func TestConcurrentRecordAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(Config{Path: path, BufferSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wrote [4]int
	done := make(chan struct{})
	for g := range wrote {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.Record(Entry{Method: "/etcdserverpb.KV/Put", Key: []byte("k"), Code: "OK"})
				wrote[g]++
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	total := 0
	for range wrote {
		<-done
	}
	for _, n := range wrote {
		total += n
	}
	req, ev := requests(readLines(t, path))
	var dropped uint64
	for _, e := range ev {
		dropped += uint64(e["count"].(float64))
	}
	if dropped != l.Dropped() {
		t.Fatalf("dropped events sum to %d, Dropped() = %d", dropped, l.Dropped())
	}
	if uint64(len(req))+dropped > uint64(total) {
		t.Fatalf("%d lines + %d dropped > %d recorded", len(req), dropped, total)
	}
}
