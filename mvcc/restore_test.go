package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func putN(t *testing.T, s *Store, n int, index uint64) {
	t.Helper()
	for i := 0; i < n; i++ {
		tw := s.Write()
		if _, err := tw.Put([]byte(fmt.Sprintf("key/%03d", i%50)), []byte(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
		if err := tw.End(index + uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRestoreReplacesTheStoreWithASnapshot(t *testing.T) {
	src := newStore(t)
	putN(t, src, 200, 1)
	tw := src.Write()
	if _, err := tw.Compact(100); err != nil {
		t.Fatal(err)
	}
	if err := tw.End(201); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if _, err := src.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}

	dst := newStore(t)
	putN(t, dst, 30, 1) // state the snapshot must replace entirely
	ws := dst.NewWatchStream(16)
	if _, err := ws.Watch(WatchOptions{Key: []byte("key/"), End: []byte("key0")}); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(bytes.NewReader(snap.Bytes()), "test"); err != nil {
		t.Fatal(err)
	}
	if dst.Rev() != src.Rev() || dst.CompactRev() != src.CompactRev() || dst.AppliedIndex() != src.AppliedIndex() {
		t.Fatalf("after restore rev %d compact %d applied %d; source has %d %d %d",
			dst.Rev(), dst.CompactRev(), dst.AppliedIndex(), src.Rev(), src.CompactRev(), src.AppliedIndex())
	}
	for _, rev := range []int64{0, 150, 100} {
		req := &pb.RangeRequest{Key: []byte("key/"), RangeEnd: []byte("key0"), Revision: rev}
		a, err := src.Range(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := dst.Range(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(a.Kvs) != fmt.Sprint(b.Kvs) || a.Count != b.Count {
			t.Fatalf("rev %d: restored store differs:\n%v\n%v", rev, b.Kvs, a.Kvs)
		}
	}
	ha, _, _, err := src.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	hb, _, _, err := dst.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	if ha != hb {
		t.Fatalf("HashKV after restore %x, source %x", hb, ha)
	}
	if dst.PendingRestore() != "" {
		t.Fatalf("restore left a pending marker %q", dst.PendingRestore())
	}
}

func TestRestoreRejectsACorruptSnapshot(t *testing.T) {
	src := newStore(t)
	putN(t, src, 20, 1)
	var snap bytes.Buffer
	if _, err := src.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	b := snap.Bytes()
	b[len(b)/2] ^= 0x01
	dst := newStore(t)
	putN(t, dst, 5, 1)
	if err := dst.Restore(bytes.NewReader(b), "corrupt"); err == nil {
		t.Fatal("restored a corrupt snapshot")
	}
	// A small snapshot fails before its first batch commits: the store is
	// untouched. (A large one that fails later leaves the restoring
	// marker, and the member restores again from the file on start.)
	if src, err := RestoringFrom(dst.Engine()); err != nil || src != "" {
		t.Fatalf("marker %q, %v after a restore that wrote nothing", src, err)
	}
	if dst.Rev() != 6 {
		t.Fatalf("revision %d after a failed restore, want 6", dst.Rev())
	}
}

// A put after a restore builds on the snapshot's version of the key, not
// on what the store had cached before it.
func TestPutAfterRestoreSeesTheSnapshot(t *testing.T) {
	src := newStore(t)
	putN(t, src, 3, 1) // key/000..002 at version 1
	tw := src.Write()
	if _, err := tw.Put([]byte("only/src"), []byte("s"), 0); err != nil {
		t.Fatal(err)
	}
	if err := tw.End(4); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if _, err := src.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	dst := newStore(t)
	putN(t, dst, 500, 1) // key/000 at version 10, in the cache
	waitKeyFilter(t, dst)
	if err := dst.Restore(bytes.NewReader(snap.Bytes()), "test"); err != nil {
		t.Fatal(err)
	}
	// Once the restored store's key filter is ready, it knows the keys
	// only the snapshot had.
	waitKeyFilter(t, dst)
	tw = dst.Write()
	if prev, err := tw.Put([]byte("only/src"), []byte("new"), 0); err != nil || prev == nil || string(prev.Value) != "s" {
		t.Fatalf("put of a key only the snapshot had: prev %v, err %v", prev, err)
	}
	if err := tw.End(9_999); err != nil {
		t.Fatal(err)
	}
	tw = dst.Write()
	prev, err := tw.Put([]byte("key/000"), []byte("new"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.End(10_000); err != nil {
		t.Fatal(err)
	}
	if prev == nil || prev.Version != 1 || string(prev.Value) != "0" || prev.ModRevision != 2 {
		t.Fatalf("prev after restore = %v; want the snapshot's key/000 (version 1, value \"0\", mod 2)", prev)
	}
	// A key the snapshot does not have starts a new generation.
	tw = dst.Write()
	if prev, err := tw.Put([]byte("key/040"), []byte("new"), 0); err != nil || prev != nil {
		t.Fatalf("put of a key only the old contents had: prev %v, err %v; want none", prev, err)
	}
	tw.Abort()
}

// A transaction that deletes many keys and then writes some of them again
// sees its own deletes (the overlay is indexed once it is long).
func TestPutAfterBigDeleteInOneTxn(t *testing.T) {
	s := newStore(t)
	putN(t, s, 100, 1) // key/000..049, version 2
	tw := s.Write()
	deleted, err := tw.DeleteRange([]byte("key/"), []byte("key0"))
	if err != nil || len(deleted) != 50 {
		t.Fatalf("deleted %d, err %v", len(deleted), err)
	}
	for i := range 50 {
		prev, err := tw.Put(fmt.Appendf(nil, "key/%03d", i), []byte("again"), 0)
		if err != nil || prev != nil {
			t.Fatalf("put of deleted key/%03d: prev %v, err %v; want none", i, prev, err)
		}
	}
	prev, err := tw.Put([]byte("key/007"), []byte("twice"), 0)
	if err != nil || prev == nil || string(prev.Value) != "again" || prev.Version != 1 {
		t.Fatalf("second put of key/007 in the txn: prev %v, err %v", prev, err)
	}
	if err := tw.End(1000); err != nil {
		t.Fatal(err)
	}
}
