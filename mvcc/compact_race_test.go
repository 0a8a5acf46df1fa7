package mvcc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/storage"
)

// gateEngine pauses the next NewIter or NewSnapshot call, once armed, until
// the test releases it: it lets a test run a compaction exactly between a
// reader's compaction check and its read of the engine.
type gateEngine struct {
	storage.Engine
	mu   sync.Mutex
	iter *gate
	snap *gate
}

type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) pass() {
	close(g.entered)
	<-g.release
}

func (e *gateEngine) take(p **gate) *gate {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := *p
	*p = nil
	return g
}

func (e *gateEngine) NewIter(lower, upper []byte) (storage.Iterator, error) {
	if g := e.take(&e.iter); g != nil {
		g.pass()
	}
	return e.Engine.NewIter(lower, upper)
}

func (e *gateEngine) NewSnapshot() storage.Snapshot {
	if g := e.take(&e.snap); g != nil {
		g.pass()
	}
	return e.Engine.NewSnapshot()
}

func waitEntered(t *testing.T, g *gate) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("reader never reached the engine")
	}
}

// A range at revision 2 that has passed its compaction check when a
// compaction at 3 commits and is reclaimed must not read the reclaimed
// engine: it must answer as of revision 2 or fail with ErrCompacted.
func TestRangeRacingCompactionNeverSeesReclaimedVersions(t *testing.T) {
	eng := &gateEngine{Engine: newEngine(t)}
	w := &writer{t: t, s: openStore(t, eng)}
	w.put("a", "1") // rev 2
	w.put("a", "2") // rev 3

	g := newGate()
	eng.mu.Lock()
	eng.iter = g
	eng.mu.Unlock()
	type result struct {
		rr  *pb.RangeResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		rr, err := w.s.Range(context.Background(), &pb.RangeRequest{Key: []byte("a"), Revision: 2})
		done <- result{rr, err}
	}()
	waitEntered(t, g)
	w.compact(3) // reclaims "a"@2
	close(g.release)
	res := <-done
	if errors.Is(res.err, ErrCompacted) {
		return
	}
	if res.err != nil || len(res.rr.Kvs) != 1 || string(res.rr.Kvs[0].Value) != "1" {
		t.Fatalf("Range(a, rev 2) racing a compaction at 3 = %s; want a=1 or ErrCompacted", fmtResp(res.rr, res.err))
	}
}

// HashKV racing a compaction must not hash a reclaimed engine under the
// old compaction revision: members would disagree and raise CORRUPT.
func TestHashKVRacingCompactionMatchesUncompacted(t *testing.T) {
	eng := &gateEngine{Engine: newEngine(t)}
	w := &writer{t: t, s: openStore(t, eng)}
	o := &writer{t: t, s: newStore(t)}
	for _, x := range []*writer{w, o} {
		x.put("a", "1") // rev 2
		x.put("a", "2") // rev 3
		x.put("b", "1") // rev 4
	}
	want, _, _, err := o.s.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	eng.mu.Lock()
	eng.snap = g
	eng.mu.Unlock()
	type result struct {
		h          uint32
		compactRev int64
		err        error
	}
	done := make(chan result, 1)
	go func() {
		h, _, c, err := w.s.HashKV(0)
		done <- result{h, c, err}
	}()
	waitEntered(t, g)
	w.compact(3)
	close(g.release)
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.compactRev == 0 && res.h != want {
		t.Fatalf("HashKV reported compaction revision 0 but hashed a store reclaimed at 3: %08x, uncompacted store %08x", res.h, want)
	}
}

// A streamed range reads every chunk at one revision. If that revision is
// compacted and reclaimed between two chunks, the stream must fail with
// ErrCompacted (as etcd's, which checks each chunk) rather than send chunks
// read from a reclaimed engine.
func TestRangeStreamCompactedBetweenChunks(t *testing.T) {
	w := &writer{t: t, s: newStore(t)}
	w.put("a", "1") // rev 2
	w.put("b", "1") // rev 3
	w.put("c", "1") // rev 4
	w.put("b", "2") // rev 5
	w.put("c", "2") // rev 6
	var got []string
	chunks := 0
	err := w.s.RangeStream(context.Background(), &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Revision: 4}, fixedChunk(1),
		func(rr *pb.RangeResponse) error {
			for _, kv := range rr.Kvs {
				got = append(got, string(kv.Key)+"="+string(kv.Value))
			}
			if chunks++; chunks == 1 {
				w.compact(6) // reclaims "b"@3 and "c"@4
			}
			return nil
		})
	if errors.Is(err, ErrCompacted) {
		return
	}
	if err != nil || len(got) != 3 || got[1] != "b=1" || got[2] != "c=1" {
		t.Fatalf("RangeStream at 4 with a compaction at 6 after the first chunk: %v, %v; want [a=1 b=1 c=1] or ErrCompacted", got, err)
	}
}
