package e2e

import (
	"fmt"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestTxnCompares(t *testing.T) {
	_, cli, ctx := start(t)
	l, err := cli.Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "k", "m")                           // 2
	put(t, ctx, cli, "k", "m", clientv3.WithLease(l.ID)) // 3: k is c2 m3 v2 with the lease
	lease := int64(l.ID)

	type cmp = clientv3.Cmp
	cases := []struct {
		name string
		cmp  cmp
		want bool
	}{
		{"value =", clientv3.Compare(clientv3.Value("k"), "=", "m"), true},
		{"value = other", clientv3.Compare(clientv3.Value("k"), "=", "n"), false},
		{"value !=", clientv3.Compare(clientv3.Value("k"), "!=", "n"), true},
		{"value >", clientv3.Compare(clientv3.Value("k"), ">", "l"), true},
		{"value > longer", clientv3.Compare(clientv3.Value("k"), ">", "m0"), false},
		{"value <", clientv3.Compare(clientv3.Value("k"), "<", "n"), true},
		{"value < equal", clientv3.Compare(clientv3.Value("k"), "<", "m"), false},
		{"version =", clientv3.Compare(clientv3.Version("k"), "=", 2), true},
		{"version !=", clientv3.Compare(clientv3.Version("k"), "!=", 2), false},
		{"version >", clientv3.Compare(clientv3.Version("k"), ">", 1), true},
		{"version <", clientv3.Compare(clientv3.Version("k"), "<", 2), false},
		{"create =", clientv3.Compare(clientv3.CreateRevision("k"), "=", 2), true},
		{"create >", clientv3.Compare(clientv3.CreateRevision("k"), ">", 2), false},
		{"create <", clientv3.Compare(clientv3.CreateRevision("k"), "<", 3), true},
		{"mod =", clientv3.Compare(clientv3.ModRevision("k"), "=", 3), true},
		{"mod !=", clientv3.Compare(clientv3.ModRevision("k"), "!=", 3), false},
		{"mod >", clientv3.Compare(clientv3.ModRevision("k"), ">", 2), true},
		{"mod <", clientv3.Compare(clientv3.ModRevision("k"), "<", 3), false},
		{"lease =", clientv3.Compare(clientv3.LeaseValue("k"), "=", lease), true},
		{"lease !=", clientv3.Compare(clientv3.LeaseValue("k"), "!=", lease), false},
		{"lease >", clientv3.Compare(clientv3.LeaseValue("k"), ">", 0), true},
		{"lease <", clientv3.Compare(clientv3.LeaseValue("k"), "<", lease), false},
		// A missing key has version, revisions and lease 0...
		{"missing version = 0", clientv3.Compare(clientv3.Version("nope"), "=", 0), true},
		{"missing create = 0", clientv3.Compare(clientv3.CreateRevision("nope"), "=", 0), true},
		{"missing mod < 1", clientv3.Compare(clientv3.ModRevision("nope"), "<", 1), true},
		{"missing lease = 0", clientv3.Compare(clientv3.LeaseValue("nope"), "=", 0), true},
		// ...but no value: every value compare on it fails, even !=.
		{"missing value =", clientv3.Compare(clientv3.Value("nope"), "=", ""), false},
		{"missing value !=", clientv3.Compare(clientv3.Value("nope"), "!=", "x"), false},
	}
	for _, c := range cases {
		resp, err := cli.Txn(ctx).If(c.cmp).Then(clientv3.OpGet("k")).Else(clientv3.OpGet("nope")).Commit()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if resp.Succeeded != c.want {
			t.Errorf("%s: succeeded=%v; want %v", c.name, resp.Succeeded, c.want)
		}
		// The responses are those of the branch taken.
		r := resp.Responses[0].GetResponseRange()
		if r == nil || (len(r.Kvs) == 1) != c.want {
			t.Errorf("%s: branch responses %v", c.name, resp.Responses)
		}
		checkHeader(t, resp.Header, 3)
	}

	// Several compares all have to hold.
	resp, err := cli.Txn(ctx).If(
		clientv3.Compare(clientv3.Value("k"), "=", "m"),
		clientv3.Compare(clientv3.Version("k"), "=", 1),
	).Commit()
	if err != nil || resp.Succeeded {
		t.Fatalf("one false compare of two: succeeded=%v err=%v; want false", resp.Succeeded, err)
	}
	// No compare at all succeeds.
	if resp, err = cli.Txn(ctx).Then(clientv3.OpGet("k")).Commit(); err != nil || !resp.Succeeded {
		t.Fatalf("empty compare: succeeded=%v err=%v; want true", resp.Succeeded, err)
	}
}

func TestTxnCompareOverRange(t *testing.T) {
	_, cli, ctx := start(t)
	seed(t, ctx, cli, "r/a", "1", "r/b", "1", "r/c", "2") // 2, 3, 4

	cases := []struct {
		name string
		cmp  clientv3.Cmp
		want bool
	}{
		{"every value = 1 in [a, c)", clientv3.Compare(clientv3.Value("r/a"), "=", "1").WithRange("r/c"), true},
		{"every value = 1 in prefix", clientv3.Compare(clientv3.Value("r/"), "=", "1").WithPrefix(), false},
		{"every value < 3 in prefix", clientv3.Compare(clientv3.Value("r/"), "<", "3").WithPrefix(), true},
		{"every mod > 2 in prefix", clientv3.Compare(clientv3.ModRevision("r/"), ">", 2).WithPrefix(), false},
		{"every mod > 1 in prefix", clientv3.Compare(clientv3.ModRevision("r/"), ">", 1).WithPrefix(), true},
		{"every create < 5 from key", clientv3.Compare(clientv3.CreateRevision("r/"), "<", 5).WithRange("\x00"), true},
		{"every version = 1 in prefix", clientv3.Compare(clientv3.Version("r/"), "=", 1).WithPrefix(), true},
		// An empty range compares like a missing key.
		{"empty range version = 0", clientv3.Compare(clientv3.Version("s/"), "=", 0).WithPrefix(), true},
		{"empty range value", clientv3.Compare(clientv3.Value("s/"), "!=", "x").WithPrefix(), false},
	}
	for _, c := range cases {
		resp, err := cli.Txn(ctx).If(c.cmp).Commit()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if resp.Succeeded != c.want {
			t.Errorf("%s: succeeded=%v; want %v", c.name, resp.Succeeded, c.want)
		}
	}
}

func TestTxnWritesShareOneRevision(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "gone", "x") // 2
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpPut("a", "1"),
		clientv3.OpPut("b", "2", clientv3.WithPrevKV()),
		clientv3.OpDelete("gone", clientv3.WithPrevKV()),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, resp.Header, 3)
	for _, k := range []string{"a", "b"} {
		if kv := get(t, ctx, cli, k).Kvs[0]; kv.ModRevision != 3 || kv.CreateRevision != 3 {
			t.Errorf("%s written by the txn: %s; want revision 3", k, kvString(kv))
		}
	}
	if d := resp.Responses[2].GetResponseDeleteRange(); d.Deleted != 1 || len(d.PrevKvs) != 1 || string(d.PrevKvs[0].Value) != "x" {
		t.Errorf("delete in txn: %v", d)
	}
	if p := resp.Responses[1].GetResponsePut(); p.PrevKv != nil {
		t.Errorf("prev_kv of a key new in the txn: %s", kvString(p.PrevKv))
	}
}

func TestTxnReadsItsOwnWrites(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "k", "old") // 2
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet("k"),
		clientv3.OpPut("k", "new"),
		clientv3.OpGet("k"),
		clientv3.OpPut("j", "x"),
		clientv3.OpGet("", clientv3.WithFromKey(), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
	before := resp.Responses[0].GetResponseRange()
	after := resp.Responses[2].GetResponseRange()
	if v := string(before.Kvs[0].Value); v != "old" {
		t.Errorf("get before the put saw %q", v)
	}
	if kv := after.Kvs[0]; string(kv.Value) != "new" || kv.ModRevision != 3 || kv.Version != 2 {
		t.Errorf("get after the put saw %s; want new at 3, version 2", kvString(kv))
	}
	// A range in a txn reports the revision the txn has reached so far.
	if before.Header.Revision != 2 || after.Header.Revision != 3 {
		t.Errorf("range headers in the txn at %d and %d; want 2 and 3", before.Header.Revision, after.Header.Revision)
	}
	if n := resp.Responses[4].GetResponseRange().Count; n != 2 {
		t.Errorf("count in the txn after writing j: %d; want 2", n)
	}
}

func TestTxnNested(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "flag", "on") // 2

	inner := clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.Value("flag"), "=", "on")},
		[]clientv3.Op{clientv3.OpPut("inner", "then"), clientv3.OpGet("inner")},
		[]clientv3.Op{clientv3.OpPut("inner", "else")},
	)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Version("flag"), ">", 0)).
		Then(clientv3.OpPut("outer", "1"), inner).
		Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded {
		t.Fatal("outer compare failed")
	}
	nested := resp.Responses[1].GetResponseTxn()
	if nested == nil || !nested.Succeeded || len(nested.Responses) != 2 {
		t.Fatalf("nested response %v", resp.Responses[1])
	}
	if kv := nested.Responses[1].GetResponseRange().Kvs[0]; string(kv.Value) != "then" || kv.ModRevision != 3 {
		t.Errorf("nested get saw %s; want then at 3", kvString(kv))
	}
	checkHeader(t, resp.Header, 3)

	// The nested else branch, three levels down.
	deep := clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.Value("flag"), "=", "off")},
		[]clientv3.Op{clientv3.OpPut("deep", "then")},
		[]clientv3.Op{clientv3.OpPut("deep", "else")},
	)}, nil)
	resp, err = cli.Txn(ctx).Then(deep).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Responses[0].GetResponseTxn().Responses[0].GetResponseTxn(); got.Succeeded {
		t.Errorf("deep compare succeeded")
	}
	if kv := get(t, ctx, cli, "deep").Kvs[0]; string(kv.Value) != "else" || kv.ModRevision != 4 {
		t.Errorf("deep: %s; want else at 4", kvString(kv))
	}
}

func TestTxnDuplicateKeys(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "a", "0")
	before := rev(t, ctx, cli)
	dup := [][]clientv3.Op{
		{clientv3.OpPut("a", "1"), clientv3.OpPut("a", "2")},
		{clientv3.OpPut("a", "1"), clientv3.OpDelete("a")},
		{clientv3.OpDelete("a"), clientv3.OpPut("a", "1")},
		{clientv3.OpPut("b", "1"), clientv3.OpDelete("a", clientv3.WithRange("c"))},
		{clientv3.OpPut("a", "1"), clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("a", "2")}, nil)},
		{clientv3.OpPut("a", "1"), clientv3.OpTxn(nil, nil, []clientv3.Op{clientv3.OpPut("a", "2")})},
	}
	for i, ops := range dup {
		_, err := cli.Txn(ctx).Then(ops...).Commit()
		t.Run(fmt.Sprint(i), func(t *testing.T) { wantErr(t, err, rpctypes.ErrGRPCDuplicateKey) })
		// Each branch is checked on its own.
		_, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "0")).Else(ops...).Commit()
		t.Run(fmt.Sprint(i, "else"), func(t *testing.T) { wantErr(t, err, rpctypes.ErrGRPCDuplicateKey) })
	}

	allowed := [][]clientv3.Op{
		// The same key in both branches of a nested txn, where one runs.
		{clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("n", "1")}, []clientv3.Op{clientv3.OpPut("n", "2")})},
		// Reads and deletes may repeat a key.
		{clientv3.OpGet("a"), clientv3.OpGet("a"), clientv3.OpPut("a", "1")},
		{clientv3.OpDelete("a"), clientv3.OpDelete("a")},
	}
	for i, ops := range allowed {
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Errorf("allowed txn %d: %v", i, err)
		}
	}
	// The same key in then and else of the outer txn is fine too.
	if _, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("a"), ">", 100)).
		Then(clientv3.OpPut("x", "1")).Else(clientv3.OpPut("x", "2")).Commit(); err != nil {
		t.Errorf("same key in then and else: %v", err)
	}
	if after := rev(t, ctx, cli); after != before+4 {
		t.Errorf("revision %d; want %d: refused txns must not write", after, before+4)
	}
}

func TestTxnTooManyOps(t *testing.T) {
	_, cli, ctx := start(t, "--max-txn-ops=4")
	ops := func(n int) []clientv3.Op {
		var out []clientv3.Op
		for i := range n {
			out = append(out, clientv3.OpPut(fmt.Sprintf("k%d", i), "v"))
		}
		return out
	}
	cmps := func(n int) []clientv3.Cmp {
		var out []clientv3.Cmp
		for i := range n {
			out = append(out, clientv3.Compare(clientv3.Version(fmt.Sprintf("k%d", i)), "<", 1000))
		}
		return out
	}
	if _, err := cli.Txn(ctx).If(cmps(4)...).Then(ops(4)...).Else(ops(4)...).Commit(); err != nil {
		t.Fatalf("4 ops with --max-txn-ops=4: %v", err)
	}
	_, err := cli.Txn(ctx).Then(ops(5)...).Commit()
	wantErr(t, err, rpctypes.ErrGRPCTooManyOps)
	_, err = cli.Txn(ctx).Else(ops(5)...).Commit()
	wantErr(t, err, rpctypes.ErrGRPCTooManyOps)
	_, err = cli.Txn(ctx).If(cmps(5)...).Commit()
	wantErr(t, err, rpctypes.ErrGRPCTooManyOps)
	// A nested txn may use only what its parent branch leaves: 3 + 2 > 4.
	_, err = cli.Txn(ctx).Then(append(ops(3), clientv3.OpTxn(nil, ops(2), nil))...).Commit()
	wantErr(t, err, rpctypes.ErrGRPCTooManyOps)
}

func TestTxnOpErrorFailsWholeTxn(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "k", "v") // 2
	_, err := cli.Txn(ctx).Then(
		clientv3.OpPut("written", "no"),
		clientv3.OpGet("k", clientv3.WithRev(100)),
	).Commit()
	wantErr(t, err, rpctypes.ErrGRPCFutureRev)
	// A put with a lease that does not exist fails it the same way.
	_, err = cli.Txn(ctx).Then(
		clientv3.OpPut("written", "no"),
		clientv3.OpPut("leased", "no", clientv3.WithLease(0x1234)),
	).Commit()
	wantErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
	_, err = cli.Txn(ctx).Then(
		clientv3.OpPut("written", "no"),
		clientv3.OpPut("missing", "", clientv3.WithIgnoreValue()),
	).Commit()
	wantErr(t, err, rpctypes.ErrGRPCKeyNotFound)
	// Only the branch taken is checked.
	if _, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("k"), "=", "v")).
		Then(clientv3.OpPut("written", "yes")).
		Else(clientv3.OpGet("k", clientv3.WithRev(100))).Commit(); err != nil {
		t.Fatalf("error op in the branch not taken: %v", err)
	}
	resp := get(t, ctx, cli, "written")
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "yes" || resp.Header.Revision != 3 {
		t.Fatalf("after failed txns: %v at %d; want only the last txn's write at 3", resp.Kvs, resp.Header.Revision)
	}
}

func TestTxnResponsesFollowRequestOrder(t *testing.T) {
	_, cli, ctx := start(t)
	var ops []clientv3.Op
	var want []string
	for i := range 20 {
		k := fmt.Sprintf("k%02d", 19-i)
		ops = append(ops, clientv3.OpPut(k, "v"), clientv3.OpGet(k))
		want = append(want, "put", k)
	}
	resp, err := cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range resp.Responses {
		switch v := r.Response.(type) {
		case *pb.ResponseOp_ResponsePut:
			got = append(got, "put")
		case *pb.ResponseOp_ResponseRange:
			got = append(got, string(v.ResponseRange.Kvs[0].Key))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("responses %v; want %v", got, want)
	}
}

// etcd fills only the transaction's own header; the responses inside it
// carry a header with just a revision, and a nested transaction's header
// is empty (visible in etcdctl txn -w json).
func TestTxnInnerHeadersCarryOnlyRevision(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "k", "v") // 2
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet("k"),
		clientv3.OpPut("k", "w"),
		clientv3.OpDelete("gone"),
		clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpGet("k")}, nil),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, resp.Header, 3)
	var check func(path string, rs []*pb.ResponseOp)
	check = func(path string, rs []*pb.ResponseOp) {
		for i, r := range rs {
			var h *pb.ResponseHeader
			switch v := r.Response.(type) {
			case *pb.ResponseOp_ResponseRange:
				h = v.ResponseRange.Header
			case *pb.ResponseOp_ResponsePut:
				h = v.ResponsePut.Header
			case *pb.ResponseOp_ResponseDeleteRange:
				h = v.ResponseDeleteRange.Header
			case *pb.ResponseOp_ResponseTxn:
				check(fmt.Sprintf("%s%d/", path, i), v.ResponseTxn.Responses)
				if h := v.ResponseTxn.Header; h.GetRevision() != 0 || h.GetClusterId() != 0 || h.GetMemberId() != 0 || h.GetRaftTerm() != 0 {
					t.Errorf("nested txn %s%d header %v; want an empty one", path, i, h)
				}
				continue
			}
			if h == nil || h.Revision == 0 || h.ClusterId != 0 || h.MemberId != 0 || h.RaftTerm != 0 {
				t.Errorf("response %s%d header %v; want a revision only", path, i, h)
			}
		}
	}
	check("", resp.Responses)
}
