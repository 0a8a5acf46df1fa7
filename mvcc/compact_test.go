package mvcc

import (
	"context"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
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
