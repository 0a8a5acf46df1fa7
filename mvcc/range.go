package mvcc

import (
	"bytes"
	"context"
	"math"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/storage"
)

// bounds turns etcd's (key, range_end) into engine bounds over the 'k'
// space: an empty end means the single key, "\x00" means every key >= key.
func bounds(key, end []byte) (lower, upper []byte) {
	switch {
	case len(end) == 0:
		return keyPrefix(key), keyNext(key)
	case len(end) == 1 && end[0] == 0:
		return keyBound(key), []byte{prefixKey + 1}
	default:
		return keyBound(key), keyBound(end)
	}
}

// scanOptions narrows a scan.
type scanOptions struct {
	rev   int64 // read as of this revision
	limit int64 // stop collecting after this many (0: all)
	// countAll keeps counting past limit, for RangeResponse.count.
	countAll  bool
	countOnly bool
	keysOnly  bool
}

// scan walks the user keys in [key, end) as of opts.rev, returning live
// key-values in key order and how many live keys it counted.
func scan(ctx context.Context, r storage.Reader, key, end []byte, opts scanOptions) ([]*mvccpb.KeyValue, int64, error) {
	lower, upper := bounds(key, end)
	if bytes.Compare(lower, upper) >= 0 {
		return nil, 0, nil
	}
	it, err := r.NewIter(lower, upper)
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()

	var (
		kvs   []*mvccpb.KeyValue
		count int64
		seek  = make([]byte, 0, 64)
		steps int
	)
	valid := it.First()
	for valid {
		if steps++; steps&1023 == 0 && ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		k := it.Key()
		pl := prefixLen(k)
		if pl < 3 {
			return nil, 0, errBadKey
		}
		main := int64(^beUint64(k[pl:]))
		if main > opts.rev {
			// Newer than the read revision: jump to the newest version <= rev.
			seek = append(seek[:0], k[:pl]...)
			seek = appendRevInverted(seek, revision{main: opts.rev, sub: math.MaxInt64})
			valid = it.SeekGE(seek)
			if !valid || len(it.Key()) != pl+suffixLen || !bytes.HasPrefix(it.Key(), seek[:pl]) {
				// No version <= rev of this key; the iterator already
				// sits on the next key (or the end).
				continue
			}
			k = it.Key()
			main = int64(^beUint64(k[pl:]))
		}
		rec, err := decodeValue(it.Value())
		if err != nil {
			return nil, 0, err
		}
		if !rec.tombstone {
			collect := !opts.countOnly && (opts.limit <= 0 || int64(len(kvs)) < opts.limit)
			if collect {
				user, _, err := decodeKey(nil, k)
				if err != nil {
					return nil, 0, err
				}
				kv := &mvccpb.KeyValue{
					Key:            user,
					CreateRevision: rec.create,
					ModRevision:    main,
					Version:        rec.version,
				}
				// etcd's keys-only ranges come from its in-memory index,
				// which has no lease: leave it out too.
				if !opts.keysOnly {
					kv.Value = bytes.Clone(rec.value)
					kv.Lease = rec.lease
				}
				kvs = append(kvs, kv)
			}
			count++
			if !opts.countAll && !opts.countOnly && opts.limit > 0 && int64(len(kvs)) >= opts.limit {
				break
			}
		}
		// Move past the other versions of this key: try one Next, which is
		// cheap when the key has a single version, then seek.
		prefix := append(seek[:0], k[:pl]...)
		valid = it.Next()
		if valid && len(it.Key()) == pl+suffixLen && bytes.HasPrefix(it.Key(), prefix) {
			prefix[len(prefix)-1] = 2 // 0x00 0x01 -> 0x00 0x02: past every version
			valid = it.SeekGE(prefix)
		}
		seek = prefix
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	return kvs, count, nil
}

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[7]) | uint64(b[6])<<8 | uint64(b[5])<<16 | uint64(b[4])<<24 |
		uint64(b[3])<<32 | uint64(b[2])<<40 | uint64(b[1])<<48 | uint64(b[0])<<56
}

// isDefaultOrder reports whether results come in the scan's natural order.
func isDefaultOrder(r *pb.RangeRequest) bool {
	return r.SortOrder == pb.RangeRequest_NONE ||
		(r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND)
}

func hasRevisionFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// checkRev resolves the revision a range reads at.
func checkRev(want, cur, compacted int64) (int64, error) {
	if want > cur {
		return 0, ErrFutureRev
	}
	if want <= 0 {
		want = cur
	}
	if want < compacted {
		return 0, ErrCompacted
	}
	return want, nil
}

// stillReadable reports whether a read at rev that has just finished saw
// a complete picture. Reads do not block compaction; instead, a read whose
// revision fell below the compaction revision while it ran may have
// missed versions the background compactor removed, and fails as if it
// had started after the compaction.
func (s *Store) stillReadable(rev int64) error {
	if rev < s.compactRev.Load() {
		return ErrCompacted
	}
	return nil
}

// rangeAt executes a RangeRequest against r with etcd's semantics: count
// covers every key in the range (before filters and limit), filters and
// sorting apply before the limit, keys_only drops values.
func rangeAt(ctx context.Context, r storage.Reader, req *pb.RangeRequest, rev, headerRev int64) (*pb.RangeResponse, error) {
	limit := req.Limit
	if !isDefaultOrder(req) || hasRevisionFilters(req) {
		limit = 0
	}
	if limit > 0 && limit < math.MaxInt64 {
		limit++ // one more, to know whether there is more
	}
	keysOnly := req.KeysOnly && req.SortTarget != pb.RangeRequest_VALUE
	kvs, count, err := scan(ctx, r, req.Key, req.RangeEnd, scanOptions{
		rev: rev, limit: limit, countAll: true, countOnly: req.CountOnly, keysOnly: keysOnly,
	})
	if err != nil {
		return nil, err
	}
	kvs = filterKVs(kvs, req)
	sortKVs(kvs, req)
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: headerRev}, Count: count}
	if req.Limit > 0 && int64(len(kvs)) > req.Limit {
		kvs = kvs[:req.Limit]
		resp.More = true
	}
	if req.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	return resp, nil
}

func filterKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) []*mvccpb.KeyValue {
	if !hasRevisionFilters(r) {
		return kvs
	}
	out := kvs[:0]
	for _, kv := range kvs {
		switch {
		case r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision:
		case r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision:
		case r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision:
		case r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision:
		default:
			out = append(out, kv)
		}
	}
	return out
}

func sortKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) {
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if order == pb.RangeRequest_NONE || (r.SortTarget == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND) {
		return
	}
	var less func(a, b *mvccpb.KeyValue) bool
	switch r.SortTarget {
	case pb.RangeRequest_KEY:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }
	case pb.RangeRequest_VERSION:
		less = func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version }
	case pb.RangeRequest_CREATE:
		less = func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision }
	case pb.RangeRequest_MOD:
		less = func(a, b *mvccpb.KeyValue) bool { return a.ModRevision < b.ModRevision }
	case pb.RangeRequest_VALUE:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 }
	default:
		return
	}
	if order == pb.RangeRequest_DESCEND {
		asc := less
		less = func(a, b *mvccpb.KeyValue) bool { return asc(b, a) }
	}
	// Stable, so equal elements keep key order: deterministic output.
	sort.SliceStable(kvs, func(i, j int) bool { return less(kvs[i], kvs[j]) })
}

// Range reads the store as of req.Revision (0: the newest). The response
// header carries the store's current revision, as etcd's does.
func (s *Store) Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	s.restoreMu.RLock()
	defer s.restoreMu.RUnlock()
	cur := s.rev.Load()
	rev, err := checkRev(req.Revision, cur, s.compactRev.Load())
	if err != nil {
		return nil, err
	}
	resp, err := rangeAt(ctx, s.eng, req, rev, cur)
	if err != nil {
		return nil, err
	}
	return resp, s.stillReadable(rev)
}

// A Chunker sizes the messages of a RangeStream. Next is told how many
// keys the message just sent carried and their bytes (keys plus values),
// or 0, 0 before the first, and returns how many keys the next may carry.
type Chunker interface {
	Next(keys, bytes int) int64
}

// RangeStream sends the result of req in chunks whose number of keys chunk
// decides, each chunk read at the same revision, so a huge result never
// sits in memory whole. The last chunk carries the header revision, more
// and count, as etcd 3.7 does. Sorting and revision filters are not supported (the api
// package rejects them first).
func (s *Store) RangeStream(ctx context.Context, req *pb.RangeRequest, chunk Chunker, send func(*pb.RangeResponse) error) error {
	s.restoreMu.RLock()
	defer s.restoreMu.RUnlock()
	cur := s.rev.Load()
	rev, err := checkRev(req.Revision, cur, s.compactRev.Load())
	if err != nil {
		return err
	}
	if req.CountOnly {
		_, count, err := scan(ctx, s.eng, req.Key, req.RangeEnd, scanOptions{rev: rev, countOnly: true})
		if err == nil {
			err = s.stillReadable(rev)
		}
		if err != nil {
			return err
		}
		return send(&pb.RangeResponse{Header: &pb.ResponseHeader{Revision: cur}, Count: count})
	}
	total := req.Limit
	if total <= 0 {
		total = math.MaxInt64
	}
	key := req.Key
	var sent int64
	want := chunk.Next(0, 0)
	for {
		want = min(max(want, 1), total-sent)
		kvs, _, err := scan(ctx, s.eng, key, req.RangeEnd, scanOptions{rev: rev, limit: want + 1, keysOnly: req.KeysOnly})
		if err == nil {
			err = s.stillReadable(rev)
		}
		if err != nil {
			return err
		}
		more := int64(len(kvs)) > want
		if more {
			kvs = kvs[:want]
		}
		sent += int64(len(kvs))
		out := &pb.RangeResponse{Kvs: kvs}
		if !more || sent == total {
			out.Header = &pb.ResponseHeader{Revision: cur}
			out.More = more
			out.Count = sent
			if more {
				next := append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
				_, rest, err := scan(ctx, s.eng, next, req.RangeEnd, scanOptions{rev: rev, countOnly: true})
				if err == nil {
					err = s.stillReadable(rev)
				}
				if err != nil {
					return err
				}
				out.Count += rest
			}
			return send(out)
		}
		if err := send(out); err != nil {
			return err
		}
		size := 0
		for _, kv := range kvs {
			size += len(kv.Key) + len(kv.Value)
		}
		want = chunk.Next(len(kvs), size)
		key = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
		if len(req.RangeEnd) == 0 {
			return nil // single key: cannot have more
		}
	}
}

// ReadView reads the store at one pinned revision.
type ReadView struct {
	s   *Store
	rev int64
}

// ReadView pins the current revision.
func (s *Store) ReadView() ReadView { return ReadView{s: s, rev: s.rev.Load()} }

// Rev is the pinned revision.
func (v ReadView) Rev() int64 { return v.rev }

// Range reads at req.Revision, or at the pinned revision when it is 0.
func (v ReadView) Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	v.s.restoreMu.RLock()
	defer v.s.restoreMu.RUnlock()
	rev, err := checkRev(req.Revision, v.rev, v.s.compactRev.Load())
	if err != nil {
		return nil, err
	}
	resp, err := rangeAt(ctx, v.s.eng, req, rev, v.rev)
	if err != nil {
		return nil, err
	}
	return resp, v.s.stillReadable(rev)
}
