package mvcc

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/storage"
)

// writer applies single-change transactions to a store, numbering entries.
type writer struct {
	t     *testing.T
	s     *Store
	index uint64
}

func (w *writer) put(k, v string) {
	w.t.Helper()
	t := w.s.Write()
	if _, err := t.Put([]byte(k), []byte(v), 0); err != nil {
		w.t.Fatal(err)
	}
	w.end(t)
}

func (w *writer) del(k, end string) {
	w.t.Helper()
	t := w.s.Write()
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	if _, err := t.DeleteRange([]byte(k), e); err != nil {
		w.t.Fatal(err)
	}
	w.end(t)
}

func (w *writer) end(t *TxnWrite) {
	w.t.Helper()
	w.index++
	if err := t.End(w.index); err != nil {
		w.t.Fatal(err)
	}
}

// compact compacts at rev and waits until the space is reclaimed.
func (w *writer) compact(rev int64) {
	w.t.Helper()
	t := w.s.Write()
	ch, err := t.Compact(rev)
	if err != nil {
		t.Abort()
		w.t.Fatalf("Compact(%d): %v", rev, err)
	}
	w.end(t)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		w.t.Fatalf("compaction at %d not reclaimed after 10s", rev)
	}
}

func (w *writer) get(k string) (string, bool) {
	w.t.Helper()
	rr, err := w.s.Range(context.Background(), &pb.RangeRequest{Key: []byte(k)})
	if err != nil {
		w.t.Fatal(err)
	}
	if len(rr.Kvs) == 0 {
		return "", false
	}
	return string(rr.Kvs[0].Value), true
}

// A key that is live at one compaction and deleted before the next must
// stay deleted once the second compaction removes its tombstone.
func TestCompactionDoesNotResurrectDeletedKey(t *testing.T) {
	w := &writer{t: t, s: newStore(t)}
	w.put("a", "old") // rev 2
	w.put("b", "x")   // rev 3
	w.compact(3)      // "a"@2 is live at 3: kept
	w.del("a", "")    // rev 4: tombstone
	w.put("c", "x")   // rev 5
	w.compact(5)      // the tombstone @4 is hidden at 5: reclaimed
	if v, ok := w.get("a"); ok {
		t.Fatalf("deleted key \"a\" reads back as %q after compaction", v)
	}
	hash := func(s *Store) uint32 {
		h, _, _, err := s.HashKV(0)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// A store that got the same history but never compacted physically in
	// between must hash the same.
	o := &writer{t: t, s: newStore(t)}
	o.put("a", "old")
	o.put("b", "x")
	o.del("a", "")
	o.put("c", "x")
	o.compact(5)
	if hash(w.s) != hash(o.s) {
		t.Fatalf("HashKV differs between a store compacted at 3 and 5 and one compacted at 5 only")
	}
}

// A version kept by one compaction (it was live then) and superseded
// before the next must be reclaimed by the next.
func TestCompactionReclaimsVersionKeptByEarlierCompaction(t *testing.T) {
	w := &writer{t: t, s: newStore(t)}
	w.put("a", "v1") // rev 2
	w.put("b", "x")  // rev 3
	w.compact(3)     // "a"@2 kept
	w.put("a", "v2") // rev 4 supersedes "a"@2
	w.put("b", "y")  // rev 5
	w.compact(5)
	var versions []int64
	it, err := w.s.eng.NewIter(keyPrefix([]byte("a")), keyNext([]byte("a")))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		_, rev, err := decodeKey(nil, it.Key())
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, rev.main)
	}
	if len(versions) != 1 || versions[0] != 4 {
		t.Fatalf("versions of \"a\" left after compaction at 5: %v, want [4]", versions)
	}
}

func TestCompactRefusesCompactedAndFutureRevisions(t *testing.T) {
	w := &writer{t: t, s: newStore(t)}
	w.put("a", "1") // rev 2
	w.put("a", "2") // rev 3
	for _, c := range []struct {
		rev  int64
		want error
	}{{4, ErrFutureRev}, {0, ErrCompacted}, {-1, ErrCompacted}} {
		tx := w.s.Write()
		if _, err := tx.Compact(c.rev); err != c.want {
			t.Errorf("Compact(%d) = %v, want %v", c.rev, err, c.want)
		}
		tx.Abort()
	}
	w.compact(2)
	tx := w.s.Write()
	if _, err := tx.Compact(2); err != ErrCompacted {
		t.Errorf("Compact(2) again = %v, want ErrCompacted", err)
	}
	tx.Abort()
	if _, err := w.s.Range(context.Background(), &pb.RangeRequest{Key: []byte("a"), Revision: 1}); err != ErrCompacted {
		t.Errorf("Range at 1 after compaction at 2: %v, want ErrCompacted", err)
	}
	rr, err := w.s.Range(context.Background(), &pb.RangeRequest{Key: []byte("a"), Revision: 2})
	if err != nil || len(rr.Kvs) != 1 || string(rr.Kvs[0].Value) != "1" {
		t.Errorf("Range at the compaction revision = %v, %v; want a=1", rr, err)
	}
}

// After a restart the store resumes where it was: revision, compaction and
// applied index come back from the engine, and compacted reads stay refused.
func TestStoreReopensWithItsState(t *testing.T) {
	eng := newEngine(t)
	s, err := Open(eng, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, s: s}
	w.put("a", "1")
	w.put("a", "2")
	w.compact(2)
	s.Close()
	s2 := openStore(t, eng)
	if s2.Rev() != 3 || s2.CompactRev() != 2 || s2.AppliedIndex() != w.index {
		t.Fatalf("reopened: rev %d compact %d applied %d, want 3 2 %d", s2.Rev(), s2.CompactRev(), s2.AppliedIndex(), w.index)
	}
	if _, err := s2.Range(context.Background(), &pb.RangeRequest{Key: []byte("a"), Revision: 1}); err != ErrCompacted {
		t.Fatalf("Range at 1 after reopen: %v", err)
	}
}

// countingEngine counts the positioning calls made on iterators of the
// engine (not of batches), a machine-independent measure of read work.
type countingEngine struct {
	storage.Engine
	steps atomic.Int64
}

func (e *countingEngine) NewIter(lower, upper []byte) (storage.Iterator, error) {
	it, err := e.Engine.NewIter(lower, upper)
	if err != nil {
		return nil, err
	}
	return &countingIter{Iterator: it, n: &e.steps}, nil
}

type countingIter struct {
	storage.Iterator
	n *atomic.Int64
}

func (it *countingIter) First() bool          { it.n.Add(1); return it.Iterator.First() }
func (it *countingIter) Next() bool           { it.n.Add(1); return it.Iterator.Next() }
func (it *countingIter) SeekGE(k []byte) bool { it.n.Add(1); return it.Iterator.SeekGE(k) }
func (it *countingIter) SeekLT(k []byte) bool { it.n.Add(1); return it.Iterator.SeekLT(k) }
func (it *countingIter) Prev() bool           { it.n.Add(1); return it.Iterator.Prev() }
func (it *countingIter) Last() bool           { it.n.Add(1); return it.Iterator.Last() }

// Reclaiming a compacted history costs work in proportion to its length,
// however it is spread over keys: a hot key with n versions must not cost
// n steps per version (n²).
func TestCompactionWorkIsLinearForAHotKey(t *testing.T) {
	const n = 600
	for _, c := range []struct {
		name string
		key  func(i int) string
	}{
		{"spread", func(i int) string { return fmt.Sprint("k", i%150) }},
		{"hot", func(int) string { return "hot" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			eng := &countingEngine{Engine: newEngine(t)}
			w := &writer{t: t, s: openStore(t, eng)}
			for i := range n {
				w.put(c.key(i), "")
			}
			eng.steps.Store(0)
			w.compact(w.s.Rev())
			if steps := eng.steps.Load(); steps > 20*n {
				t.Fatalf("reclaiming %d revisions took %d iterator steps, want at most %d", n, steps, 20*n)
			}
		})
	}
}

// versionsOf lists the revisions of key's versions still in the engine.
func versionsOf(t *testing.T, s *Store, key string) []string {
	t.Helper()
	it, err := s.eng.NewIter(keyPrefix([]byte(key)), keyNext([]byte(key)))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		_, rev, err := decodeKey(nil, it.Key())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d.%d", rev.main, rev.sub))
	}
	return out
}

// The common way to free space: delete, then compact at the current
// revision (etcd reclaims the deleted values at once). Values that an
// earlier compaction kept must be reclaimed too, though their own
// revision-log entries are gone and the delete is at the compaction
// revision itself.
func TestCompactionAtTheDeleteRevisionReclaimsOldValues(t *testing.T) {
	w := &writer{t: t, s: newStore(t)}
	w.put("a", "big") // rev 2
	w.put("b", "big") // rev 3
	w.compact(3)      // both live: kept
	w.del("a", "c")   // rev 4 deletes both
	w.compact(4)
	for _, k := range []string{"a", "b"} {
		if got := versionsOf(t, w.s, k); len(got) != 1 || got[0] != "4."+map[string]string{"a": "0", "b": "1"}[k] {
			t.Errorf("versions of %q after delete and compaction at the delete: %v, want only the tombstone", k, got)
		}
	}
	// Likewise for an overwrite at the compaction revision.
	w.put("c", "old") // rev 5
	w.put("x", "")    // rev 6
	w.compact(6)      // "c"@5 live: kept
	w.put("c", "new") // rev 7
	w.compact(7)
	if got := versionsOf(t, w.s, "c"); len(got) != 1 || got[0] != "7.0" {
		t.Errorf("versions of \"c\" after overwrite and compaction at it: %v, want [7.0]", got)
	}
}
