package mvcc

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// Readers at random past revisions run while writes and compactions
// (reclaimed in the background) go on. A read may fail with ErrCompacted
// once its revision is compacted, but whatever it returns must be the
// store as of that revision.
func TestConcurrentReadsMatchModelOrFailCompacted(t *testing.T) {
	steps := 300
	if testing.Short() {
		steps = 100
	}
	r := newModelRun(t, 42)
	r.stores = r.stores[:1] // the reclaiming store
	r.names = r.names[:1]
	r.physical = r.physical[:1]
	s := r.stores[0]

	var mu sync.Mutex // guards r.m against the readers
	// wantAt answers req as of its revision, ignoring compaction.
	wantAt := func(req *pb.RangeRequest) *pb.RangeResponse {
		mu.Lock()
		defer mu.Unlock()
		compact := r.m.compact
		r.m.compact = 0
		defer func() { r.m.compact = compact }()
		want, err := r.m.rangeAt(req, r.m.rev)
		if err != nil {
			panic(err)
		}
		return want
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			reads, compacted := 0, 0
			for {
				select {
				case <-done:
					t.Logf("reader %d: %d reads, %d compacted", g, reads, compacted)
					if reads > 0 && compacted == reads {
						t.Errorf("reader %d: all %d reads failed as compacted", g, reads)
					}
					return
				default:
				}
				mu.Lock()
				lo, hi := max(r.m.compact, 1), r.m.rev
				req := randRange(rng, r.m, hi)
				mu.Unlock()
				req.Revision = lo + rng.Int64N(hi-lo+1)
				var got *pb.RangeResponse
				var err error
				if rng.IntN(2) == 0 {
					got, err = s.Range(context.Background(), req)
				} else {
					// Streamed in chunks of one: many engine reads.
					req.SortOrder, req.SortTarget = pb.RangeRequest_NONE, pb.RangeRequest_KEY
					req.MinModRevision, req.MaxModRevision, req.MinCreateRevision, req.MaxCreateRevision = 0, 0, 0, 0
					got = &pb.RangeResponse{}
					err = s.RangeStream(context.Background(), req, fixedChunk(1), func(rr *pb.RangeResponse) error {
						got.Kvs = append(got.Kvs, rr.Kvs...)
						if rr.Header != nil {
							got.Header, got.More, got.Count = rr.Header, rr.More, rr.Count
						}
						return nil
					})
				}
				reads++
				if errors.Is(err, ErrCompacted) {
					compacted++
					continue
				}
				if err != nil {
					t.Errorf("reader %d: Range %s: %v", g, fmtReq(req), err)
					return
				}
				want := wantAt(req)
				got.Header, want.Header = nil, nil
				if !proto.Equal(got, want) {
					t.Errorf("reader %d: Range %s\n got  %s\n want %s", g, fmtReq(req), fmtResp(got, nil), fmtResp(want, nil))
					return
				}
			}
		}()
	}
	for range steps {
		mu.Lock()
		switch x := r.rng.IntN(10); {
		case x < 7:
			r.writeTxn(1 + r.rng.IntN(4))
		default:
			if r.m.rev > r.m.compact {
				r.compact(r.m.compact+1+r.rng.Int64N(r.m.rev-r.m.compact), false)
			}
		}
		mu.Unlock()
		time.Sleep(100 * time.Microsecond) // let the readers in
	}
	close(done)
	wg.Wait()
	r.waitPhysical()
}
