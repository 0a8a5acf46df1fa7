package storage_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/cairnkv/cairn/storage"
)

func openMem(t *testing.T) storage.Engine {
	t.Helper()
	eng, err := storage.OpenPebble("", storage.PebbleOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return eng
}

func mustSet(t *testing.T, eng storage.Engine, kvs ...string) {
	t.Helper()
	b := eng.NewWriteBatch()
	defer b.Close()
	for i := 0; i+1 < len(kvs); i += 2 {
		if err := b.Set([]byte(kvs[i]), []byte(kvs[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// keys lists every key in [lower, upper) of r, forwards.
func keys(t *testing.T, r storage.Reader, lower, upper []byte) []string {
	t.Helper()
	it, err := r.NewIter(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, string(it.Key()))
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGetReturnsACopyAndReportsMissingKeys(t *testing.T) {
	eng := openMem(t)
	mustSet(t, eng, "a", "1")
	v, ok, err := eng.Get([]byte("a"))
	if err != nil || !ok || string(v) != "1" {
		t.Fatalf("Get(a) = %q, %v, %v", v, ok, err)
	}
	v[0] = 'x' // must not reach the engine
	if v2, _, _ := eng.Get([]byte("a")); string(v2) != "1" {
		t.Fatalf("Get(a) after mutating a returned value = %q", v2)
	}
	if v, ok, err := eng.Get([]byte("b")); err != nil || ok || v != nil {
		t.Fatalf("Get(missing) = %q, %v, %v", v, ok, err)
	}
}

func TestBatchReadsItsOwnWritesBeforeCommit(t *testing.T) {
	eng := openMem(t)
	mustSet(t, eng, "a", "1", "c", "3")
	b := eng.NewBatch()
	defer b.Close()
	if err := b.Set([]byte("b"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := b.Get([]byte("b")); !ok || string(v) != "2" {
		t.Fatalf("batch Get(b) = %q, %v", v, ok)
	}
	if _, ok, _ := b.Get([]byte("a")); ok {
		t.Fatal("batch still sees a key it deleted")
	}
	if got := fmt.Sprint(keys(t, b, nil, nil)); got != "[b c]" {
		t.Fatalf("batch iter = %s", got)
	}
	if got := fmt.Sprint(keys(t, eng, nil, nil)); got != "[a c]" {
		t.Fatalf("engine sees uncommitted batch: %s", got)
	}
	if b.Len() == 0 {
		t.Fatal("Len of a non-empty batch is 0")
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keys(t, eng, nil, nil)); got != "[b c]" {
		t.Fatalf("after commit: %s", got)
	}
}

func TestDeleteRangeIsHalfOpen(t *testing.T) {
	eng := openMem(t)
	mustSet(t, eng, "a", "", "b", "", "b\x00", "", "c", "", "d", "")
	b := eng.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte("b"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keys(t, b, nil, nil)); got != "[a c d]" {
		t.Fatalf("batch after DeleteRange[b,c) = %q", got)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keys(t, eng, nil, nil)); got != "[a c d]" {
		t.Fatalf("engine after DeleteRange[b,c) = %q", got)
	}
}

// An empty or inverted range deletes nothing and must not break the engine
// (the lease package can compute an inverted range for lease ID -1).
func TestDeleteRangeEmptyOrInvertedDeletesNothing(t *testing.T) {
	for _, r := range [][2]string{{"b", "b"}, {"c", "b"}, {"\xff\xff", "\x00"}} {
		t.Run(fmt.Sprintf("%q-%q", r[0], r[1]), func(t *testing.T) {
			eng := openMem(t)
			mustSet(t, eng, "a", "", "b", "", "c", "")
			b := eng.NewBatch()
			defer b.Close()
			if err := b.DeleteRange([]byte(r[0]), []byte(r[1])); err != nil {
				return // refusing is fine too
			}
			if err := b.Commit(); err != nil {
				return
			}
			if got := fmt.Sprint(keys(t, eng, nil, nil)); got != "[a b c]" {
				t.Fatalf("after DeleteRange[%q,%q): %s", r[0], r[1], got)
			}
			if err := eng.Flush(); err != nil {
				t.Fatalf("flush after inverted DeleteRange: %v", err)
			}
			if got := fmt.Sprint(keys(t, eng, nil, nil)); got != "[a b c]" {
				t.Fatalf("after flush: %s", got)
			}
		})
	}
}

func TestSnapshotIsFrozen(t *testing.T) {
	eng := openMem(t)
	mustSet(t, eng, "a", "1")
	snap := eng.NewSnapshot()
	defer snap.Close()
	mustSet(t, eng, "a", "2", "b", "2")
	if v, _, _ := snap.Get([]byte("a")); string(v) != "1" {
		t.Fatalf("snapshot Get(a) = %q, want 1", v)
	}
	if got := fmt.Sprint(keys(t, snap, nil, nil)); got != "[a]" {
		t.Fatalf("snapshot keys = %s", got)
	}
}

func TestIteratorBoundsAndSeeks(t *testing.T) {
	eng := openMem(t)
	mustSet(t, eng, "a", "", "b", "", "c", "", "d", "", "e", "")
	if got := fmt.Sprint(keys(t, eng, []byte("b"), []byte("d"))); got != "[b c]" {
		t.Fatalf("[b,d) = %s", got)
	}
	it, err := eng.NewIter([]byte("b"), []byte("e"))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	steps := []struct {
		name string
		op   func() bool
		want string // "" means invalid
	}{
		{"Last", it.Last, "d"},
		{"Prev", it.Prev, "c"},
		{"SeekGE(a)", func() bool { return it.SeekGE([]byte("a")) }, "b"},
		{"SeekGE(bb)", func() bool { return it.SeekGE([]byte("bb")) }, "c"},
		{"SeekGE(e)", func() bool { return it.SeekGE([]byte("e")) }, ""},
		{"SeekLT(c)", func() bool { return it.SeekLT([]byte("c")) }, "b"},
		{"SeekLT(b)", func() bool { return it.SeekLT([]byte("b")) }, ""},
		{"SeekLT(z)", func() bool { return it.SeekLT([]byte("z")) }, "d"},
		{"First", it.First, "b"},
		{"Next", it.Next, "c"},
	}
	for _, s := range steps {
		ok := s.op()
		if ok != it.Valid() {
			t.Fatalf("%s returned %v but Valid() = %v", s.name, ok, it.Valid())
		}
		got := ""
		if ok {
			got = string(it.Key())
		}
		if got != s.want {
			t.Fatalf("%s: at %q, want %q", s.name, got, s.want)
		}
	}
}

// Pebble runs without a WAL: Close must flush, so an engine reopened from
// its directory has every committed write.
func TestCloseFlushesCommittedWrites(t *testing.T) {
	dir := t.TempDir()
	eng, err := storage.OpenPebble(dir, storage.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("v"), 100)
	b := eng.NewWriteBatch()
	for i := range 1000 {
		if err := b.Set(fmt.Appendf(nil, "k%04d", i), val); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if onDisk, live := eng.Size(); onDisk < 0 || live < 0 || live > onDisk {
		t.Fatalf("Size() = %d, %d", onDisk, live)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	eng, err = storage.OpenPebble(dir, storage.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if n := len(keys(t, eng, nil, nil)); n != 1000 {
		t.Fatalf("after reopen: %d keys, want 1000", n)
	}
}

func TestSizeCountsUnflushedWrites(t *testing.T) {
	e, err := storage.OpenPebble(t.TempDir(), storage.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	before, _ := e.Size()
	for i := 0; i < 10; i++ {
		b := e.NewWriteBatch()
		val := make([]byte, 100000)
		rand.Read(val) // incompressible, so the flushed size is comparable
		if err := b.Set([]byte{'k', byte(i)}, val); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	after, _ := e.Size()
	if after-before < 1000000 {
		t.Fatalf("size grew by %d after 1 MB of writes still in the memtable, want >= 1000000", after-before)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	flushed, _ := e.Size()
	if flushed < 1000000/2 || flushed > after+100000 {
		t.Fatalf("size after flush %d, before %d: the memtable bytes should move to files, not vanish or double", flushed, after)
	}
}

// FirstWithPrefix finds the same key with and without a Split (prefix
// seeks through bloom filters) for prefixes that are whole Split
// prefixes, in the memtable, in flushed tables, in a
// batch over them and in a snapshot, and reopening an engine the other
// way round is refused.
func TestFirstWithPrefix(t *testing.T) {
	// Keys are "<name>@<version>": the prefix is up to and including '@'.
	split := func(k []byte) int {
		if i := bytes.IndexByte(k, '@'); i >= 0 {
			return i + 1
		}
		return len(k)
	}
	dir := t.TempDir()
	withSplit, err := storage.OpenPebble(dir, storage.PebbleOptions{Split: split})
	if err != nil {
		t.Fatal(err)
	}
	plain := openMem(t)
	for _, eng := range []storage.Engine{withSplit, plain} {
		for i := 0; i < 200; i++ {
			mustSet(t, eng, fmt.Sprintf("key%03d@%d", i%50, 9-i/50), fmt.Sprint(i))
			if i%40 == 39 {
				if err := eng.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	b := withSplit.NewBatch()
	if err := b.Set([]byte("key007@0"), []byte("batch")); err != nil {
		t.Fatal(err)
	}
	snap := withSplit.NewSnapshot()
	for _, p := range []string{"key000@", "key007@", "key049@", "key050@", "nokey@"} {
		want, wantV, wantOK, err := plain.FirstWithPrefix([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range map[string]storage.Reader{"engine": withSplit, "snapshot": snap, "batch": b} {
			got, gotV, ok, err := r.FirstWithPrefix([]byte(p))
			if err != nil {
				t.Fatal(err)
			}
			w, wv, wok := want, wantV, wantOK
			if name == "batch" && p == "key007@" {
				w, wv, wok = []byte("key007@0"), []byte("batch"), true // the batch's own write
			}
			if ok != wok || !bytes.Equal(got, w) || !bytes.Equal(gotV, wv) {
				t.Errorf("%s: FirstWithPrefix(%q) = %q=%q %v, want %q=%q %v", name, p, got, gotV, ok, w, wv, wok)
			}
		}
	}
	b.Close()
	snap.Close()
	if err := withSplit.Close(); err != nil {
		t.Fatal(err)
	}
	if eng, err := storage.OpenPebble(dir, storage.PebbleOptions{}); err == nil {
		eng.Close()
		t.Fatal("an engine made with a Split opened without one")
	}
}
