package apply_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/apply"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/storage"
)

// member is the state machine of one member, fed entries by the test.
type member struct {
	t      *testing.T
	store  *mvcc.Store
	lessor *lease.Lessor
	a      *apply.Applier
	index  uint64
}

func newMember(t *testing.T) *member {
	t.Helper()
	eng, err := storage.OpenPebble("", storage.PebbleOptions{InMemory: true, Split: mvcc.SplitKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	store, err := mvcc.Open(eng, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	lessor, err := lease.New(eng, 1)
	if err != nil {
		t.Fatal(err)
	}
	alarms, err := apply.LoadAlarms(eng)
	if err != nil {
		t.Fatal(err)
	}
	return &member{t: t, store: store, lessor: lessor, a: apply.New(store, lessor, alarms, nil, nil)}
}

// apply applies one entry; an error return (the member must stop) fails
// the test.
func (m *member) apply(req *pb.InternalRaftRequest) *apply.Result {
	m.t.Helper()
	m.index++
	res, err := m.a.Apply(m.index, req)
	if err != nil {
		m.t.Fatalf("Apply(%v): %v", req, err)
	}
	if m.store.AppliedIndex() != m.index {
		m.t.Fatalf("applied index %d after applying %d", m.store.AppliedIndex(), m.index)
	}
	return res
}

func (m *member) put(key, val string, leaseID int64) {
	m.t.Helper()
	if res := m.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(val), Lease: leaseID}}); res.Err != nil {
		m.t.Fatalf("put %q: %v", key, res.Err)
	}
}

func (m *member) grant(id, ttl int64) {
	m.t.Helper()
	if res := m.apply(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: id, TTL: ttl}}); res.Err != nil {
		m.t.Fatalf("grant %d: %v", id, res.Err)
	}
}

func (m *member) txn(rt *pb.TxnRequest) (*pb.TxnResponse, error) {
	m.t.Helper()
	res := m.apply(&pb.InternalRaftRequest{Txn: rt})
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Resp.(*pb.TxnResponse), nil
}

// get reads key at the current revision: "" and false when missing.
func (m *member) get(key string) (string, int64, bool) {
	m.t.Helper()
	rr, err := m.store.Range(context.Background(), &pb.RangeRequest{Key: []byte(key)})
	if err != nil {
		m.t.Fatal(err)
	}
	if len(rr.Kvs) == 0 {
		return "", 0, false
	}
	return string(rr.Kvs[0].Value), rr.Kvs[0].Lease, true
}

func (m *member) leaseKeys(id int64) []string {
	m.t.Helper()
	ks, err := m.lessor.Keys(m.store.Engine(), id)
	if err != nil {
		m.t.Fatal(err)
	}
	out := []string{}
	for _, k := range ks {
		out = append(out, string(k))
	}
	return out
}

// Request builders.

func put(key, val string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte(val)}}}
}

func putOp(p *pb.PutRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: p}}
}

func get(key string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(key)}}}
}

func rangeOp(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func del(key, end string) *pb.RequestOp {
	d := &pb.DeleteRangeRequest{Key: []byte(key)}
	if end != "" {
		d.RangeEnd = []byte(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: d}}
}

func nested(rt *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: rt}}
}

func cmpValue(key string, r pb.Compare_CompareResult, v string) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_VALUE, Result: r, TargetUnion: &pb.Compare_Value{Value: []byte(v)}}
}

func cmpOf(key, end string, target pb.Compare_CompareTarget, r pb.Compare_CompareResult, operand int64) *pb.Compare {
	c := &pb.Compare{Key: []byte(key), Target: target, Result: r}
	if end != "" {
		c.RangeEnd = []byte(end)
	}
	switch target {
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: operand}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: operand}
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: operand}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: operand}
	case pb.Compare_VALUE:
		c.TargetUnion = &pb.Compare_Value{Value: []byte(fmt.Sprint(operand))}
	}
	return c
}

// holds reports whether "actual <result> operand" is true.
func holds(r pb.Compare_CompareResult, actual, operand int64) bool {
	switch r {
	case pb.Compare_EQUAL:
		return actual == operand
	case pb.Compare_NOT_EQUAL:
		return actual != operand
	case pb.Compare_GREATER:
		return actual > operand
	case pb.Compare_LESS:
		return actual < operand
	}
	panic(r)
}

var (
	targets = []pb.Compare_CompareTarget{pb.Compare_VALUE, pb.Compare_CREATE, pb.Compare_MOD, pb.Compare_VERSION, pb.Compare_LEASE}
	results = []pb.Compare_CompareResult{pb.Compare_EQUAL, pb.Compare_NOT_EQUAL, pb.Compare_GREATER, pb.Compare_LESS}
)

// Every compare target against every result, with the operand below, at
// and above the key's actual value; and the same against a missing key,
// which compares as a zero key-value except that a VALUE compare fails.
func TestTxnCompareEveryTargetAndResult(t *testing.T) {
	m := newMember(t)
	m.grant(5, 100)
	m.put("k", "3", 0) // rev 2: create 2
	m.put("x", "x", 0) // rev 3
	m.put("k", "5", 5) // rev 4: mod 4, version 2, lease 5, value "5"
	actual := map[pb.Compare_CompareTarget]int64{
		pb.Compare_VALUE: 5, pb.Compare_CREATE: 2, pb.Compare_MOD: 4, pb.Compare_VERSION: 2, pb.Compare_LEASE: 5,
	}
	for _, target := range targets {
		for _, result := range results {
			for _, delta := range []int64{-1, 0, 1} {
				for _, key := range []string{"k", "missing"} {
					operand := actual[target] + delta
					want := holds(result, actual[target], operand)
					if key == "missing" {
						operand = delta // around the zero key-value
						want = target != pb.Compare_VALUE && holds(result, 0, operand)
					}
					c := cmpOf(key, "", target, result, operand)
					name := fmt.Sprintf("%s %v %v %d", key, target, result, operand)
					resp, err := m.txn(&pb.TxnRequest{Compare: []*pb.Compare{c}, Success: []*pb.RequestOp{get("k")}})
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if resp.Succeeded != want {
						t.Errorf("%s: succeeded = %v, want %v", name, resp.Succeeded, want)
					}
				}
			}
		}
	}
	if m.store.Rev() != 4 {
		t.Fatalf("read-only transactions moved the revision to %d", m.store.Rev())
	}
}

// A compare over a range holds only if it holds for every key in it; an
// empty range compares like a missing key.
func TestTxnCompareOverRange(t *testing.T) {
	m := newMember(t)
	m.put("r1", "same", 0)
	m.put("r2", "same", 0)
	m.put("r3", "other", 0)
	m.put("s", "same", 0)
	for _, c := range []struct {
		c    *pb.Compare
		want bool
	}{
		{&pb.Compare{Key: []byte("r1"), RangeEnd: []byte("r3"), Target: pb.Compare_VALUE, TargetUnion: &pb.Compare_Value{Value: []byte("same")}}, true},
		{&pb.Compare{Key: []byte("r1"), RangeEnd: []byte("r4"), Target: pb.Compare_VALUE, TargetUnion: &pb.Compare_Value{Value: []byte("same")}}, false},
		{&pb.Compare{Key: []byte("r"), RangeEnd: []byte{0}, Target: pb.Compare_VALUE, Result: pb.Compare_NOT_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("x")}}, true},
		{cmpOf("r", "s", pb.Compare_VERSION, pb.Compare_GREATER, 0), true},
		{cmpOf("r", "s", pb.Compare_CREATE, pb.Compare_LESS, 5), true},
		{cmpOf("r", "s", pb.Compare_CREATE, pb.Compare_LESS, 4), false},
		{cmpOf("t", "u", pb.Compare_CREATE, pb.Compare_EQUAL, 0), true},                                                           // empty range
		{&pb.Compare{Key: []byte("t"), RangeEnd: []byte("u"), Target: pb.Compare_VALUE, TargetUnion: &pb.Compare_Value{}}, false}, // value on nothing
		// A target whose operand is of another kind compares against zero.
		{&pb.Compare{Key: []byte("s"), Target: pb.Compare_VERSION, TargetUnion: &pb.Compare_Value{Value: []byte("x")}, Result: pb.Compare_GREATER}, true},
	} {
		resp, err := m.txn(&pb.TxnRequest{Compare: []*pb.Compare{c.c}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Succeeded != c.want {
			t.Errorf("compare %v: succeeded = %v, want %v", c.c, resp.Succeeded, c.want)
		}
	}
	// All compares of a transaction must hold.
	resp, err := m.txn(&pb.TxnRequest{Compare: []*pb.Compare{
		cmpValue("r1", pb.Compare_EQUAL, "same"), cmpValue("r3", pb.Compare_EQUAL, "same"),
	}})
	if err != nil || resp.Succeeded {
		t.Fatalf("one failing compare of two: %v, %v", resp, err)
	}
}

// Nested transactions choose their branch by the state before the outer
// transaction wrote anything (as etcd does), and only the chosen branches
// run.
func TestNestedTxnComparesSeeStateBeforeTheTxn(t *testing.T) {
	m := newMember(t)
	m.put("a", "old", 0) // rev 2
	resp, err := m.txn(&pb.TxnRequest{
		Success: []*pb.RequestOp{
			put("a", "new"),
			get("a"), // a read after a write in the same txn sees it
			nested(&pb.TxnRequest{
				Compare: []*pb.Compare{cmpValue("a", pb.Compare_EQUAL, "old")},
				Success: []*pb.RequestOp{put("b", "saw-old")},
				Failure: []*pb.RequestOp{put("b", "saw-new")},
			}),
		},
		Failure: []*pb.RequestOp{put("never", "")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || len(resp.Responses) != 3 {
		t.Fatalf("outer: %v", resp)
	}
	if rr := resp.Responses[1].GetResponseRange(); rr == nil || len(rr.Kvs) != 1 || string(rr.Kvs[0].Value) != "new" {
		t.Fatalf("range after put in the same txn: %v", resp.Responses[1])
	}
	if n := resp.Responses[2].GetResponseTxn(); n == nil || !n.Succeeded {
		t.Fatalf("nested txn compared against the txn's own write: %v", resp.Responses[2])
	}
	if v, _, _ := m.get("b"); v != "saw-old" {
		t.Fatalf("b = %q, want saw-old", v)
	}
	if _, _, ok := m.get("never"); ok {
		t.Fatal("the failure branch ran")
	}
	// As in etcd, writes report the transaction's revision, and a nested
	// transaction's own header stays empty.
	if resp.Header.GetRevision() != 3 {
		t.Errorf("txn header revision %d, want 3", resp.Header.GetRevision())
	}
	for i, r := range resp.Responses {
		switch v := r.Response.(type) {
		case *pb.ResponseOp_ResponsePut:
			if got := v.ResponsePut.Header.GetRevision(); got != 3 {
				t.Errorf("response %d: put header revision %d, want 3", i, got)
			}
		case *pb.ResponseOp_ResponseTxn:
			if got := v.ResponseTxn.Header.GetRevision(); got != 0 {
				t.Errorf("response %d: nested txn header revision %d, want 0 (empty)", i, got)
			}
		}
	}
}

// Path bookkeeping: nested transactions on branches that do not run must
// not shift which branch later nested transactions take.
func TestNestedTxnPathWithSkippedBranches(t *testing.T) {
	m := newMember(t)
	m.put("t", "1", 0)
	yes := cmpValue("t", pb.Compare_EQUAL, "1")
	no := cmpValue("t", pb.Compare_EQUAL, "2")
	trap := nested(&pb.TxnRequest{Compare: []*pb.Compare{yes}, Success: []*pb.RequestOp{put("trap", "")}})
	resp, err := m.txn(&pb.TxnRequest{
		Compare: []*pb.Compare{no},
		Success: []*pb.RequestOp{trap, trap},
		Failure: []*pb.RequestOp{
			nested(&pb.TxnRequest{ // runs Failure: n1=f
				Compare: []*pb.Compare{no},
				Success: []*pb.RequestOp{trap, put("n1", "s")},
				Failure: []*pb.RequestOp{put("n1", "f"), nested(&pb.TxnRequest{ // runs Success: n2=s
					Compare: []*pb.Compare{yes},
					Success: []*pb.RequestOp{put("n2", "s")},
					Failure: []*pb.RequestOp{trap, put("n2", "f")},
				})},
			}),
			nested(&pb.TxnRequest{ // runs Success: n3=s
				Compare: []*pb.Compare{yes},
				Success: []*pb.RequestOp{put("n3", "s")},
				Failure: []*pb.RequestOp{trap, trap, put("n3", "f")},
			}),
			nested(&pb.TxnRequest{ // runs Failure: n4=f
				Compare: []*pb.Compare{no},
				Failure: []*pb.RequestOp{put("n4", "f")},
			}),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Succeeded {
		t.Fatal("outer compare held")
	}
	for k, want := range map[string]string{"n1": "f", "n2": "s", "n3": "s", "n4": "f"} {
		if v, _, _ := m.get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if _, _, ok := m.get("trap"); ok {
		t.Error("a transaction on a branch that did not run wrote")
	}
}

// A transaction whose chosen path holds a request that cannot run fails
// whole, before writing anything; the same request on the branch not taken
// is no obstacle.
func TestTxnCheckFailureLeavesNoWrites(t *testing.T) {
	m := newMember(t)
	m.put("a", "1", 0) // rev 2
	m.put("a", "2", 0) // rev 3
	m.put("z", "", 0)  // rev 4
	if res := m.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 3}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	bad := []struct {
		name string
		op   *pb.RequestOp
		want error
	}{
		{"unknown lease", putOp(&pb.PutRequest{Key: []byte("b"), Lease: 99}), lease.ErrNotFound},
		{"ignore_value on a missing key", putOp(&pb.PutRequest{Key: []byte("missing"), IgnoreValue: true}), apply.ErrKeyNotFound},
		{"ignore_lease on a missing key", putOp(&pb.PutRequest{Key: []byte("missing"), IgnoreLease: true}), apply.ErrKeyNotFound},
		{"future revision", rangeOp(&pb.RangeRequest{Key: []byte("a"), Revision: 5}), mvcc.ErrFutureRev},
		{"compacted revision", rangeOp(&pb.RangeRequest{Key: []byte("a"), Revision: 2}), mvcc.ErrCompacted},
		{"deep in a nested txn", nested(&pb.TxnRequest{Success: []*pb.RequestOp{put("n", ""), nested(&pb.TxnRequest{
			Success: []*pb.RequestOp{putOp(&pb.PutRequest{Key: []byte("c"), Lease: 42})}})}}), lease.ErrNotFound},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			rev := m.store.Rev()
			_, err := m.txn(&pb.TxnRequest{Success: []*pb.RequestOp{put("first", "x"), del("z", ""), c.op, put("last", "x")}})
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if m.store.Rev() != rev {
				t.Fatalf("a failed txn moved the revision from %d to %d", rev, m.store.Rev())
			}
			for _, k := range []string{"first", "last", "n"} {
				if _, _, ok := m.get(k); ok {
					t.Fatalf("a failed txn wrote %q", k)
				}
			}
			if _, _, ok := m.get("z"); !ok {
				t.Fatal("a failed txn deleted z")
			}
			// On the branch not taken the request does not matter.
			resp, err := m.txn(&pb.TxnRequest{
				Compare: []*pb.Compare{cmpValue("a", pb.Compare_EQUAL, "2")},
				Failure: []*pb.RequestOp{c.op},
			})
			if err != nil || !resp.Succeeded {
				t.Fatalf("with the request on the failure branch: %v, %v", resp, err)
			}
		})
	}
}

func TestPutIgnoreValueAndIgnoreLease(t *testing.T) {
	m := newMember(t)
	m.grant(1, 100)
	m.grant(2, 100)
	m.put("k", "v", 1)

	// ignore_value keeps the value; the lease is the request's.
	m.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 2}})
	if v, l, _ := m.get("k"); v != "v" || l != 2 {
		t.Fatalf("after ignore_value put: %q lease %d, want v lease 2", v, l)
	}
	if !slices.Equal(m.leaseKeys(1), []string{}) || !slices.Equal(m.leaseKeys(2), []string{"k"}) {
		t.Fatalf("attachments: lease 1 %q, lease 2 %q", m.leaseKeys(1), m.leaseKeys(2))
	}
	// ignore_lease keeps the lease; the value is the request's.
	m.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("w"), IgnoreLease: true}})
	if v, l, _ := m.get("k"); v != "w" || l != 2 {
		t.Fatalf("after ignore_lease put: %q lease %d, want w lease 2", v, l)
	}
	// Both: nothing changes but the revision and version.
	res := m.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), IgnoreValue: true, IgnoreLease: true, PrevKv: true}})
	if pr := res.Resp.(*pb.PutResponse); res.Err != nil || pr.PrevKv == nil || string(pr.PrevKv.Value) != "w" || pr.PrevKv.Lease != 2 {
		t.Fatalf("put with both ignores: %v, %v", res.Resp, res.Err)
	}
	if v, l, _ := m.get("k"); v != "w" || l != 2 {
		t.Fatalf("after put with both ignores: %q lease %d", v, l)
	}
	// On a missing key both fail without writing.
	rev := m.store.Rev()
	for _, p := range []*pb.PutRequest{{Key: []byte("nope"), IgnoreValue: true}, {Key: []byte("nope"), Value: []byte("x"), IgnoreLease: true}} {
		if res := m.apply(&pb.InternalRaftRequest{Put: p}); !errors.Is(res.Err, apply.ErrKeyNotFound) {
			t.Fatalf("%v on a missing key: %v", p, res.Err)
		}
	}
	if m.store.Rev() != rev {
		t.Fatal("failed puts moved the revision")
	}
	// Put without prev_kv does not return it.
	res = m.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("x")}})
	if pr := res.Resp.(*pb.PutResponse); pr.PrevKv != nil || pr.Header.Revision != m.store.Rev() {
		t.Fatalf("put response %v", pr)
	}
}

func TestLeaseAttachmentsFollowPutsDeletesAndRevoke(t *testing.T) {
	m := newMember(t)
	m.grant(1, 100)
	m.grant(2, 100)
	m.put("a", "", 1)
	if got := m.leaseKeys(1); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("lease 1 keys %q", got)
	}
	m.put("a", "", 2) // moves to lease 2
	if !slices.Equal(m.leaseKeys(1), []string{}) || !slices.Equal(m.leaseKeys(2), []string{"a"}) {
		t.Fatalf("after moving a: %q %q", m.leaseKeys(1), m.leaseKeys(2))
	}
	m.put("a", "", 0) // detaches
	if got := m.leaseKeys(2); len(got) != 0 {
		t.Fatalf("after put without lease, lease 2 keys %q", got)
	}
	m.put("b", "", 1)
	m.apply(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("b")}})
	if got := m.leaseKeys(1); len(got) != 0 {
		t.Fatalf("after delete, lease 1 keys %q", got)
	}
	// Inside a transaction too.
	if _, err := m.txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp(&pb.PutRequest{Key: []byte("c"), Lease: 2}),
		putOp(&pb.PutRequest{Key: []byte("d"), Lease: 2}), putOp(&pb.PutRequest{Key: []byte("e"), Lease: 1})}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.txn(&pb.TxnRequest{Success: []*pb.RequestOp{del("e", "")}}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.leaseKeys(2), []string{"c", "d"}) || len(m.leaseKeys(1)) != 0 {
		t.Fatalf("after txn: lease 1 %q, lease 2 %q", m.leaseKeys(1), m.leaseKeys(2))
	}
	// Unknown lease: refused, nothing written.
	rev := m.store.Rev()
	if res := m.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("x"), Lease: 9}}); !errors.Is(res.Err, lease.ErrNotFound) {
		t.Fatalf("put with an unknown lease: %v", res.Err)
	}
	if m.store.Rev() != rev {
		t.Fatal("refused put moved the revision")
	}

	// Revoke deletes the attached keys in one revision and only those.
	m.put("a", "", 0)
	rev = m.store.Rev()
	if res := m.apply(&pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 2}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if m.store.Rev() != rev+1 {
		t.Fatalf("revoking a lease with two keys moved the revision by %d, want 1", m.store.Rev()-rev)
	}
	for _, k := range []string{"c", "d"} {
		if _, _, ok := m.get(k); ok {
			t.Fatalf("key %q of a revoked lease survives", k)
		}
	}
	if _, _, ok := m.get("a"); !ok {
		t.Fatal("revoke deleted a key not attached to the lease")
	}
	if m.lessor.Exists(2) || len(m.leaseKeys(2)) != 0 {
		t.Fatal("revoked lease remains")
	}
	if res := m.apply(&pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 2}}); !errors.Is(res.Err, lease.ErrNotFound) {
		t.Fatalf("second revoke: %v", res.Err)
	}
	// Revoking a lease with no keys changes no revision.
	rev = m.store.Rev()
	if res := m.apply(&pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 1}}); res.Err != nil || m.store.Rev() != rev {
		t.Fatalf("revoke of an empty lease: %v, revision %d -> %d", res.Err, rev, m.store.Rev())
	}
}

func TestReadTxnRefusesWritesOnItsPath(t *testing.T) {
	m := newMember(t)
	m.put("a", "1", 0)
	view := m.store.ReadView()
	resp, err := apply.ReadTxn(view, view.Rev(), &pb.TxnRequest{
		Compare: []*pb.Compare{cmpValue("a", pb.Compare_EQUAL, "1")},
		Success: []*pb.RequestOp{get("a")},
		Failure: []*pb.RequestOp{put("a", "2")},
	})
	if err != nil || !resp.Succeeded || resp.Header.Revision != 2 {
		t.Fatalf("read-only path: %v, %v", resp, err)
	}
	if _, err := apply.ReadTxn(view, view.Rev(), &pb.TxnRequest{Success: []*pb.RequestOp{put("a", "2")}}); err == nil {
		t.Fatal("ReadTxn ran a put")
	}
	for _, c := range []struct {
		rt               *pb.TxnRequest
		readOnly, hasPut bool
	}{
		{&pb.TxnRequest{Success: []*pb.RequestOp{get("a")}}, true, false},
		{&pb.TxnRequest{Failure: []*pb.RequestOp{del("a", "")}}, false, false},
		{&pb.TxnRequest{Success: []*pb.RequestOp{nested(&pb.TxnRequest{Failure: []*pb.RequestOp{put("a", "")}})}}, false, true},
		{&pb.TxnRequest{Success: []*pb.RequestOp{nested(&pb.TxnRequest{Success: []*pb.RequestOp{get("a")}})}}, true, false},
	} {
		if apply.IsReadOnly(c.rt) != c.readOnly || apply.HasPut(c.rt) != c.hasPut {
			t.Errorf("%v: IsReadOnly %v HasPut %v, want %v %v", c.rt, apply.IsReadOnly(c.rt), apply.HasPut(c.rt), c.readOnly, c.hasPut)
		}
	}
}

func TestNoSpaceAlarmRefusesGrowth(t *testing.T) {
	m := newMember(t)
	m.put("a", "1", 0)
	m.apply(&pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: 1, Alarm: pb.AlarmType_NOSPACE}})
	for name, req := range map[string]*pb.InternalRaftRequest{
		"put":         {Put: &pb.PutRequest{Key: []byte("b")}},
		"txn put":     {Txn: &pb.TxnRequest{Failure: []*pb.RequestOp{put("b", "")}}},
		"lease grant": {LeaseGrant: &pb.LeaseGrantRequest{ID: 3, TTL: 10}},
	} {
		if res := m.apply(req); !errors.Is(res.Err, apply.ErrNoSpace) {
			t.Errorf("%s under NOSPACE: %v", name, res.Err)
		}
	}
	if res := m.apply(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a")}}); res.Err != nil {
		t.Errorf("delete under NOSPACE: %v", res.Err)
	}
	m.apply(&pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: 1, Alarm: pb.AlarmType_NOSPACE}})
	if res := m.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("b")}}); res.Err != nil {
		t.Errorf("put after the alarm is cleared: %v", res.Err)
	}
}

func TestCompactionEntry(t *testing.T) {
	m := newMember(t)
	m.put("a", "1", 0)
	m.put("a", "2", 0)
	res := m.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 3}})
	if res.Err != nil || res.Physical == nil {
		t.Fatalf("compaction: %v, physical %v", res.Err, res.Physical)
	}
	<-res.Physical
	if res := m.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 3}}); !errors.Is(res.Err, mvcc.ErrCompacted) {
		t.Fatalf("compacting again: %v", res.Err)
	}
	if res := m.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 9}}); !errors.Is(res.Err, mvcc.ErrFutureRev) {
		t.Fatalf("compacting the future: %v", res.Err)
	}
}

// A transaction that fails half-way (a put with ignore_value of a key a
// from-key delete earlier in the branch removed) must leave no trace and
// must not stop the member: every member reaches the same failure.
func TestTxnFailingAfterAWriteLeavesNoTrace(t *testing.T) {
	m := newMember(t)
	m.put("b", "1", 0)
	rev := m.store.Rev()
	_, err := m.txn(&pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), IgnoreValue: true}}},
	}})
	if !errors.Is(err, apply.ErrKeyNotFound) {
		t.Fatalf("txn = %v, want %v", err, apply.ErrKeyNotFound)
	}
	if m.store.Rev() != rev {
		t.Fatalf("revision %d after a failed txn, want %d", m.store.Rev(), rev)
	}
	if v, _, ok := m.get("b"); !ok || v != "1" {
		t.Fatalf("b = %q %v after a failed txn, want 1", v, ok)
	}
	m.put("c", "2", 0) // the member goes on applying
}
