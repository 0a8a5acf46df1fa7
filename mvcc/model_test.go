package mvcc

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/storage"
)

// This file holds the model the store is checked against: etcd's MVCC
// semantics read as plainly as possible, every version of every key kept in
// memory. It never compacts anything away; it only refuses reads below the
// compaction revision, which is all a client may observe.

// mVersion is one version of a key in the model.
type mVersion struct {
	main, sub int64
	tombstone bool
	create    int64
	version   int64
	lease     int64
	value     string
}

type model struct {
	rev     int64 // newest committed revision
	compact int64 // compaction revision (0: none)
	hist    map[string][]mVersion
	// subs counts the changes of the open write transaction.
	subs int64
}

func newModel() *model { return &model{rev: 1, hist: map[string][]mVersion{}} }

// cur is the revision a read inside the open transaction sees.
func (m *model) cur() int64 {
	if m.subs > 0 {
		return m.rev + 1
	}
	return m.rev
}

func (m *model) latest(k string) (mVersion, bool) {
	h := m.hist[k]
	if len(h) == 0 || h[len(h)-1].tombstone {
		return mVersion{}, false
	}
	return h[len(h)-1], true
}

func (m *model) add(k string, v mVersion) {
	v.main, v.sub = m.rev+1, m.subs
	m.subs++
	m.hist[k] = append(m.hist[k], v)
}

// put returns the previous live key-value, as TxnWrite.Put does.
func (m *model) put(k, val string, lease int64) *mvccpb.KeyValue {
	old, ok := m.latest(k)
	v := mVersion{create: m.rev + 1, version: 1, lease: lease, value: val}
	var prev *mvccpb.KeyValue
	if ok {
		v.create, v.version = old.create, old.version+1
		prev = old.kv(k, false)
	}
	m.add(k, v)
	return prev
}

// deleteRange returns the deleted key-values in key order.
func (m *model) deleteRange(key, end []byte) []*mvccpb.KeyValue {
	var out []*mvccpb.KeyValue
	for _, k := range m.keys() {
		if !inRange([]byte(k), key, end) {
			continue
		}
		if old, ok := m.latest(k); ok {
			out = append(out, old.kv(k, false))
			m.add(k, mVersion{tombstone: true})
		}
	}
	return out
}

func (m *model) endTxn() {
	if m.subs > 0 {
		m.rev++
	}
	m.subs = 0
}

func (m *model) compactTo(rev int64) error {
	switch {
	case rev <= m.compact:
		return ErrCompacted
	case rev > m.rev:
		return ErrFutureRev
	}
	m.compact = rev
	return nil
}

func (m *model) keys() []string {
	ks := make([]string, 0, len(m.hist))
	for k := range m.hist {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// visible is the version of k a read at rev sees.
func (m *model) visible(k string, rev int64) (mVersion, bool) {
	h := m.hist[k]
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].main <= rev {
			return h[i], !h[i].tombstone
		}
	}
	return mVersion{}, false
}

func (v mVersion) kv(k string, keysOnly bool) *mvccpb.KeyValue {
	kv := &mvccpb.KeyValue{Key: []byte(k), CreateRevision: v.create, ModRevision: v.main, Version: v.version, Lease: v.lease}
	if !keysOnly {
		kv.Value = []byte(v.value)
	}
	return kv
}

// inRange follows etcd: empty end is the single key, "\x00" every key >= key.
func inRange(k, key, end []byte) bool {
	switch {
	case len(end) == 0:
		return bytes.Equal(k, key)
	case len(end) == 1 && end[0] == 0:
		return bytes.Compare(k, key) >= 0
	default:
		return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0
	}
}

// rangeAt answers r as etcd 3.7 does (server/etcdserver/txn/range.go):
// count covers the whole range before filters; with the default ordering
// only limit+1 keys (in key order) are fetched, then filtered, sorted and
// cut to the limit. cur is the revision the read runs against.
func (m *model) rangeAt(r *pb.RangeRequest, cur int64) (*pb.RangeResponse, error) {
	rev := r.Revision
	switch {
	case rev > cur:
		return nil, ErrFutureRev
	case rev <= 0:
		rev = cur
	case rev < m.compact:
		return nil, ErrCompacted
	}
	var all []*mvccpb.KeyValue
	for _, k := range m.keys() {
		if !inRange([]byte(k), r.Key, r.RangeEnd) {
			continue
		}
		if v, ok := m.visible(k, rev); ok {
			all = append(all, v.kv(k, false))
		}
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: cur}, Count: int64(len(all))}
	if r.CountOnly {
		return resp, nil
	}
	defaultOrder := r.SortOrder == pb.RangeRequest_NONE ||
		(r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND)
	filters := r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
	fetch := r.Limit
	if !defaultOrder || filters {
		fetch = 0
	}
	if fetch > 0 && fetch < math.MaxInt64 {
		fetch++
	}
	kvs := all
	if fetch > 0 && int64(len(kvs)) > fetch {
		kvs = kvs[:fetch]
	}
	kvs = slices.DeleteFunc(kvs, func(kv *mvccpb.KeyValue) bool {
		return (r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision) ||
			(r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision) ||
			(r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision) ||
			(r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision)
	})
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if order != pb.RangeRequest_NONE {
		key := func(kv *mvccpb.KeyValue) (int64, []byte) {
			switch r.SortTarget {
			case pb.RangeRequest_VERSION:
				return kv.Version, nil
			case pb.RangeRequest_CREATE:
				return kv.CreateRevision, nil
			case pb.RangeRequest_MOD:
				return kv.ModRevision, nil
			case pb.RangeRequest_VALUE:
				return 0, kv.Value
			}
			return 0, kv.Key
		}
		// Cairn documents a stable sort (ties keep key order); etcd leaves
		// ties unspecified, so this is the stricter of the two.
		slices.SortStableFunc(kvs, func(a, b *mvccpb.KeyValue) int {
			ai, ab := key(a)
			bi, bb := key(b)
			c := cmpI64(ai, bi)
			if c == 0 {
				c = bytes.Compare(ab, bb)
			}
			if order == pb.RangeRequest_DESCEND {
				c = -c
			}
			return c
		})
	}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
			// etcd 3.7 serves keys-only ranges from its index, which has
			// no lease, unless it had to read values to sort by them.
			if r.SortTarget != pb.RangeRequest_VALUE {
				kv.Lease = 0
			}
		}
	}
	resp.Kvs = kvs
	return resp, nil
}

func cmpI64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Rendering, so a mismatch reads as a diff of two short lines.

func fmtKV(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q(c%d m%d v%d l%d %q)", kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease, kv.Value)
}

func fmtKVs(kvs []*mvccpb.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = fmtKV(kv)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func fmtResp(r *pb.RangeResponse, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("hdr=%d count=%d more=%v kvs=%s", r.GetHeader().GetRevision(), r.Count, r.More, fmtKVs(r.Kvs))
}

func fmtReq(r *pb.RangeRequest) string {
	return fmt.Sprintf("key=%q end=%q rev=%d limit=%d keysOnly=%v countOnly=%v sort=%v/%v mod=[%d,%d] create=[%d,%d]",
		r.Key, r.RangeEnd, r.Revision, r.Limit, r.KeysOnly, r.CountOnly, r.SortTarget, r.SortOrder,
		r.MinModRevision, r.MaxModRevision, r.MinCreateRevision, r.MaxCreateRevision)
}

// Engines and stores for the tests.

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newEngine(t testing.TB) storage.Engine {
	t.Helper()
	eng, err := storage.OpenPebble("", storage.PebbleOptions{InMemory: true, Split: SplitKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func openStore(t testing.TB, eng storage.Engine) *Store {
	t.Helper()
	s, err := Open(eng, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newStore(t testing.TB) *Store { return openStore(t, newEngine(t)) }

// noReclaimEngine is an engine on which background compaction reclaims
// nothing: deletes made through write-only batches (which only the
// compactor uses) are dropped. A store on it is logically compacted but
// keeps every version, which is what a member whose compactor has not
// run yet looks like.
type noReclaimEngine struct{ storage.Engine }

func (e noReclaimEngine) NewWriteBatch() storage.Batch {
	return noDeleteBatch{e.Engine.NewWriteBatch()}
}

type noDeleteBatch struct{ storage.Batch }

func (noDeleteBatch) Delete([]byte) error           { return nil }
func (noDeleteBatch) DeleteRange(_, _ []byte) error { return nil }
