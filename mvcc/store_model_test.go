package mvcc

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

var (
	modelSeeds = flag.Int("mvcc.seeds", 8, "seeds TestStoreMatchesModel runs")
	modelSteps = flag.Int("mvcc.steps", 200, "writes per seed in TestStoreMatchesModel")
)

// keyAlphabet makes short keys that are often prefixes of each other and
// hold the bytes the key encoding treats specially (0x00, 0xFF).
var keyAlphabet = []byte{0x00, 0x01, 'a', 'b', 0xff}

func randKey(rng *rand.Rand) []byte {
	k := make([]byte, 1+rng.IntN(3))
	for i := range k {
		k[i] = keyAlphabet[rng.IntN(len(keyAlphabet))]
	}
	return k
}

// prefixEnd is clientv3.GetPrefixRangeEnd.
func prefixEnd(key []byte) []byte {
	end := bytes.Clone(key)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}

// randBounds picks a (key, range_end) of every kind etcd knows: one key, a
// prefix, from-key, everything, and an arbitrary (possibly empty) range.
func randBounds(rng *rand.Rand) (key, end []byte) {
	switch rng.IntN(7) {
	case 0, 1:
		return randKey(rng), nil
	case 2, 3:
		k := randKey(rng)
		return k, prefixEnd(k)
	case 4:
		return randKey(rng), []byte{0}
	case 5:
		return []byte{0}, []byte{0}
	default:
		return randKey(rng), randKey(rng)
	}
}

var (
	sortOrders  = []pb.RangeRequest_SortOrder{pb.RangeRequest_NONE, pb.RangeRequest_ASCEND, pb.RangeRequest_DESCEND}
	sortTargets = []pb.RangeRequest_SortTarget{pb.RangeRequest_KEY, pb.RangeRequest_VERSION, pb.RangeRequest_CREATE, pb.RangeRequest_MOD, pb.RangeRequest_VALUE}
)

// randRange picks a range request against a store at revision cur.
func randRange(rng *rand.Rand, m *model, cur int64) *pb.RangeRequest {
	key, end := randBounds(rng)
	r := &pb.RangeRequest{Key: key, RangeEnd: end}
	switch rng.IntN(9) {
	case 0:
		r.Revision = cur
	case 1:
		r.Revision = max(m.compact-rng.Int64N(2), 1) // at or just below the compaction
	case 2:
		r.Revision = cur + 1 + rng.Int64N(3) // future
	case 3, 4, 5:
		r.Revision = 1 + rng.Int64N(cur)
	case 6:
		r.Revision = -rng.Int64N(3)
	}
	if rng.IntN(3) == 0 {
		r.Limit = rng.Int64N(5)
	}
	r.KeysOnly = rng.IntN(5) == 0
	r.CountOnly = rng.IntN(10) == 0
	if rng.IntN(3) == 0 {
		r.SortOrder = sortOrders[rng.IntN(len(sortOrders))]
		r.SortTarget = sortTargets[rng.IntN(len(sortTargets))]
	}
	if rng.IntN(4) == 0 {
		pick := func() int64 {
			if rng.IntN(2) == 0 {
				return 0
			}
			return rng.Int64N(cur + 2)
		}
		r.MinModRevision, r.MaxModRevision = pick(), pick()
		r.MinCreateRevision, r.MaxCreateRevision = pick(), pick()
	}
	return r
}

var values = []string{"", "v", "v1", "v2", "w", "\x00", "\xff"}

func randValue(rng *rand.Rand) string { return values[rng.IntN(len(values))] }

// modelRun drives the model and several stores with the same writes.
type modelRun struct {
	t      *testing.T
	rng    *rand.Rand
	m      *model
	stores []*Store
	names  []string
	index  uint64
	// physical holds, per store, the channel of the newest compaction.
	physical []<-chan struct{}
}

func newModelRun(t *testing.T, seed uint64) *modelRun {
	r := &modelRun{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), m: newModel()}
	// The latest-version cache holds everything on the first store,
	// nothing on the third and, on the fourth, little enough that it
	// evicts all the time.
	uncached, tiny := newStore(t), newStore(t)
	uncached.latest, tiny.latest = newLatestCache(0), newLatestCache(4096)
	r.stores = []*Store{newStore(t), openStore(t, noReclaimEngine{newEngine(t)}), uncached, tiny}
	r.names = []string{"reclaiming", "non-reclaiming", "uncached", "tiny cache"}
	r.physical = make([]<-chan struct{}, len(r.stores))
	return r
}

func (r *modelRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("rev %d compact %d: %s", r.m.rev, r.m.compact, fmt.Sprintf(format, args...))
}

// writeTxn applies one write transaction of n random puts and deletes.
func (r *modelRun) writeTxn(n int) {
	r.t.Helper()
	txns := make([]*TxnWrite, len(r.stores))
	for i, s := range r.stores {
		txns[i] = s.Write()
	}
	var desc []string
	for range n {
		if r.rng.IntN(3) > 0 {
			k, v, lease := randKey(r.rng), randValue(r.rng), int64(r.rng.IntN(3))
			desc = append(desc, fmt.Sprintf("put(%q=%q,l%d)", k, v, lease))
			want := r.m.put(string(k), v, lease)
			for i, t := range txns {
				got, err := t.Put(k, []byte(v), lease)
				if err != nil {
					r.fatalf("%s: %v: %v", r.names[i], desc, err)
				}
				if !proto.Equal(got, want) {
					r.fatalf("%s: %v: prev = %s, want %s", r.names[i], desc, fmtKV(got), fmtKV(want))
				}
			}
		} else {
			k, end := randBounds(r.rng)
			desc = append(desc, fmt.Sprintf("del(%q,%q)", k, end))
			want := r.m.deleteRange(k, end)
			for i, t := range txns {
				got, err := t.DeleteRange(k, end)
				if err != nil {
					r.fatalf("%s: %v: %v", r.names[i], desc, err)
				}
				if fmtKVs(got) != fmtKVs(want) {
					r.fatalf("%s: %v: deleted %s, want %s", r.names[i], desc, fmtKVs(got), fmtKVs(want))
				}
			}
		}
		if r.rng.IntN(3) == 0 {
			// A read inside the transaction sees its own writes.
			req := randRange(r.rng, r.m, r.m.cur())
			want, werr := r.m.rangeAt(req, r.m.cur())
			for i, t := range txns {
				got, gerr := t.Range(context.Background(), req)
				r.checkRange(r.names[i]+" in txn "+fmt.Sprint(desc), req, got, gerr, want, werr)
			}
		}
	}
	r.m.endTxn()
	r.index++
	for i, t := range txns {
		if err := t.End(r.index); err != nil {
			r.fatalf("%s: End: %v", r.names[i], err)
		}
	}
}

func (r *modelRun) compact(rev int64, wait bool) {
	r.t.Helper()
	werr := r.m.compactTo(rev)
	r.index++
	for i, s := range r.stores {
		t := s.Write()
		ch, err := t.Compact(rev)
		if !errors.Is(err, werr) || (err == nil) != (werr == nil) {
			t.Abort()
			r.fatalf("%s: Compact(%d) = %v, want %v", r.names[i], rev, err, werr)
		}
		if err := t.End(r.index); err != nil {
			r.fatalf("%s: End: %v", r.names[i], err)
		}
		if ch != nil {
			r.physical[i] = ch
		}
	}
	if wait {
		r.waitPhysical()
	}
}

// waitPhysical waits until every store has physically finished its newest
// compaction.
func (r *modelRun) waitPhysical() {
	r.t.Helper()
	for i, ch := range r.physical {
		if ch == nil {
			continue
		}
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			r.fatalf("%s: physical compaction did not finish", r.names[i])
		}
	}
}

func (r *modelRun) checkState() {
	r.t.Helper()
	for i, s := range r.stores {
		if s.Rev() != r.m.rev || s.CompactRev() != r.m.compact || s.AppliedIndex() != r.index {
			r.fatalf("%s: Rev=%d CompactRev=%d AppliedIndex=%d, want %d %d %d", r.names[i],
				s.Rev(), s.CompactRev(), s.AppliedIndex(), r.m.rev, r.m.compact, r.index)
		}
	}
}

func (r *modelRun) checkRange(who string, req *pb.RangeRequest, got *pb.RangeResponse, gerr error, want *pb.RangeResponse, werr error) {
	r.t.Helper()
	same := (gerr == nil) == (werr == nil) && errors.Is(gerr, werr)
	if same && gerr == nil {
		same = proto.Equal(got, want)
	}
	if !same {
		r.fatalf("%s: Range %s\n got  %s\n want %s", who, fmtReq(req), fmtResp(got, gerr), fmtResp(want, werr))
	}
}

func (r *modelRun) checkRandomRanges(n int) {
	r.t.Helper()
	for range n {
		req := randRange(r.rng, r.m, r.m.rev)
		want, werr := r.m.rangeAt(req, r.m.rev)
		for i, s := range r.stores {
			got, gerr := s.Range(context.Background(), req)
			r.checkRange(r.names[i], req, got, gerr, want, werr)
		}
	}
}

// checkRangeStream reads a default-ordered range in small chunks and
// checks the chunks add up to what Range answers.
func (r *modelRun) checkRangeStream() {
	r.t.Helper()
	req := randRange(r.rng, r.m, r.m.rev)
	req.SortOrder, req.SortTarget = pb.RangeRequest_NONE, pb.RangeRequest_KEY
	req.MinModRevision, req.MaxModRevision, req.MinCreateRevision, req.MaxCreateRevision = 0, 0, 0, 0
	want, werr := r.m.rangeAt(req, r.m.rev)
	chunk := 1 + r.rng.Int64N(3)
	for i, s := range r.stores {
		got := &pb.RangeResponse{}
		var last *pb.RangeResponse
		gerr := s.RangeStream(context.Background(), req, fixedChunk(chunk), func(rr *pb.RangeResponse) error {
			if last != nil && last.Header != nil {
				return fmt.Errorf("chunk after the one carrying the header")
			}
			got.Kvs = append(got.Kvs, rr.Kvs...)
			last = rr
			return nil
		})
		if gerr == nil {
			if last == nil || last.Header == nil {
				r.fatalf("%s: RangeStream(chunk %d) %s: last chunk has no header", r.names[i], chunk, fmtReq(req))
			}
			got.Header, got.More, got.Count = last.Header, last.More, last.Count
		}
		r.checkRange(fmt.Sprintf("%s: RangeStream(chunk %d)", r.names[i], chunk), req, got, gerr, want, werr)
	}
}

// step makes one random write and checks reads after it.
func (r *modelRun) step() {
	r.t.Helper()
	// A view pinned before the write keeps reading at its revision.
	views := make([]ReadView, len(r.stores))
	for i, s := range r.stores {
		views[i] = s.ReadView()
	}
	pinned := r.m.rev

	switch x := r.rng.IntN(100); {
	case x < 50:
		r.writeTxn(1)
	case x < 85:
		r.writeTxn(2 + r.rng.IntN(4))
	case x < 95:
		var rev int64
		switch r.rng.IntN(4) {
		case 0:
			rev = r.m.rev
		case 1:
			rev = r.m.compact // refused: already compacted
		case 2:
			rev = r.m.rev + 1 // refused: future
		default:
			rev = r.m.compact + 1 + r.rng.Int64N(max(r.m.rev-r.m.compact, 1))
		}
		r.compact(rev, r.rng.IntN(2) == 0)
	default:
		r.writeTxn(0) // an entry that changes nothing
	}
	r.checkState()
	r.checkRandomRanges(4)
	if r.rng.IntN(4) == 0 {
		r.checkRangeStream()
	}

	req := randRange(r.rng, r.m, pinned)
	req.Revision = -r.rng.Int64N(2) // 0 or negative: the pinned revision
	want, werr := r.m.rangeAt(req, pinned)
	for i, v := range views {
		if v.Rev() != pinned {
			r.fatalf("%s: ReadView.Rev() = %d, want %d", r.names[i], v.Rev(), pinned)
		}
		got, gerr := v.Range(context.Background(), req)
		r.checkRange(r.names[i]+" ReadView", req, got, gerr, want, werr)
	}
}

// checkEveryRevision reads the whole key space, and one prefix, at every
// revision a client may read, and at the two just outside.
func (r *modelRun) checkEveryRevision() {
	r.t.Helper()
	for rev := max(r.m.compact-1, 1); rev <= r.m.rev+1; rev++ {
		for _, b := range [][2][]byte{{{0}, {0}}, {[]byte("a"), []byte("b")}, {{0xff}, {0}}} {
			req := &pb.RangeRequest{Key: b[0], RangeEnd: b[1], Revision: rev}
			want, werr := r.m.rangeAt(req, r.m.rev)
			for i, s := range r.stores {
				got, gerr := s.Range(context.Background(), req)
				r.checkRange(r.names[i]+" (every revision)", req, got, gerr, want, werr)
			}
		}
	}
}

// checkHashes: a store that reclaimed compacted versions and one that did
// not must hash alike at every readable revision.
func (r *modelRun) checkHashes() {
	r.t.Helper()
	for rev := r.m.compact; rev <= r.m.rev; rev++ {
		if rev <= 0 {
			continue
		}
		var first uint32
		for i, s := range r.stores {
			h, hrev, crev, err := s.HashKV(rev)
			if err != nil || hrev != rev || crev != r.m.compact {
				r.fatalf("%s: HashKV(%d) = _, %d, %d, %v", r.names[i], rev, hrev, crev, err)
			}
			if i == 0 {
				first = h
			} else if h != first {
				r.fatalf("HashKV(%d): %s %08x != %s %08x", rev, r.names[0], first, r.names[i], h)
			}
		}
	}
	for i, s := range r.stores {
		if _, _, _, err := s.HashKV(r.m.rev + 1); !errors.Is(err, ErrFutureRev) {
			r.fatalf("%s: HashKV(future) err = %v", r.names[i], err)
		}
		if r.m.compact > 1 {
			if _, _, _, err := s.HashKV(r.m.compact - 1); !errors.Is(err, ErrCompacted) {
				r.fatalf("%s: HashKV(compacted) err = %v", r.names[i], err)
			}
		}
	}
}

// checkReclaimed checks what the compactor left in the engine of s once it
// has finished: no version that every allowed read skips, except those at
// the compaction revision itself (which the next compaction reclaims), and
// a revision log holding exactly the changes at or above the compaction.
func (r *modelRun) checkReclaimed(s *Store) {
	r.t.Helper()
	c := r.m.compact
	type ver struct {
		key      string
		main, sb int64
	}
	allowed := map[ver]bool{}
	var wantLog []ver
	for k, h := range r.m.hist {
		newestAtC := -1
		for i, v := range h {
			if v.main <= c {
				newestAtC = i
			}
			if v.main >= c {
				allowed[ver{k, v.main, v.sub}] = true
				wantLog = append(wantLog, ver{"", v.main, v.sub})
			}
		}
		if newestAtC >= 0 && !h[newestAtC].tombstone {
			allowed[ver{k, h[newestAtC].main, h[newestAtC].sub}] = true
		}
	}
	it, err := s.eng.NewIter([]byte{prefixKey}, []byte{prefixKey + 1})
	if err != nil {
		r.t.Fatal(err)
	}
	defer it.Close()
	var leaked []string
	for ok := it.First(); ok; ok = it.Next() {
		user, rev, err := decodeKey(nil, it.Key())
		if err != nil {
			r.fatalf("engine key %x: %v", it.Key(), err)
		}
		if !allowed[ver{string(user), rev.main, rev.sub}] {
			var hist []string
			for _, v := range r.m.hist[string(user)] {
				h := fmt.Sprintf("%d.%d", v.main, v.sub)
				if v.tombstone {
					h += "(del)"
				}
				hist = append(hist, h)
			}
			leaked = append(leaked, fmt.Sprintf("%q@%d.%d (history %v)", user, rev.main, rev.sub, hist))
		}
	}
	if len(leaked) > 0 {
		r.fatalf("after compaction at %d finished, the engine still holds versions no read can see: %v", c, leaked)
	}
	lit, err := s.eng.NewIter([]byte{prefixRev}, []byte{prefixRev + 1})
	if err != nil {
		r.t.Fatal(err)
	}
	defer lit.Close()
	n := 0
	for ok := lit.First(); ok; ok = lit.Next() {
		rev, err := decodeRevKey(lit.Key())
		if err != nil {
			r.t.Fatal(err)
		}
		if rev.main < c {
			r.fatalf("revision log still holds %d.%d below the compaction %d", rev.main, rev.sub, c)
		}
		n++
	}
	if n != len(wantLog) {
		r.fatalf("revision log holds %d entries at or above %d, want %d", n, c, len(wantLog))
	}
}

// TestStoreMatchesModel runs random write transactions and compactions
// against the store and a model of etcd's MVCC semantics, and after each
// one compares ranges of every shape at current, past, compacted and
// future revisions. Two stores take the same writes: one whose compactor
// reclaims space and one whose compactor reclaims nothing, so any read the
// compactor changes shows up as a difference.
func TestStoreMatchesModel(t *testing.T) {
	seeds, steps := *modelSeeds, *modelSteps
	if testing.Short() {
		seeds, steps = 2, 100
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := newModelRun(t, seed)
			for range steps {
				r.step()
			}
			// Compact once more, wait for the space to be reclaimed, and
			// check nothing a client may read has changed.
			if r.m.rev > r.m.compact {
				r.compact(r.m.compact+1+r.rng.Int64N(r.m.rev-r.m.compact), false)
			}
			r.waitPhysical()
			r.checkEveryRevision()
			r.checkHashes()
			r.checkReclaimed(r.stores[0])
		})
	}
}

// fixedChunk is a Chunker that carries the same number of keys in every
// message.
type fixedChunk int64

func (c fixedChunk) Next(int, int) int64 { return int64(c) }
