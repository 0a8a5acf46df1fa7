package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestRevisionsStartAtOneAndFirstPutIsTwo(t *testing.T) {
	_, cli, ctx := start(t)
	resp := get(t, ctx, cli, "k")
	checkHeader(t, resp.Header, 1)
	if len(resp.Kvs) != 0 || resp.Count != 0 {
		t.Fatalf("fresh store has %v", resp.Kvs)
	}

	p, err := cli.Put(ctx, "k", "v1")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, p.Header, 2)
	p2, err := cli.Put(ctx, "k", "v2")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, p2.Header, 3)
	if p.Header.ClusterId != p2.Header.ClusterId || p.Header.MemberId != p2.Header.MemberId {
		t.Fatalf("headers name different members: %v, %v", p.Header, p2.Header)
	}

	kv := get(t, ctx, cli, "k").Kvs[0]
	if string(kv.Value) != "v2" || kv.CreateRevision != 2 || kv.ModRevision != 3 || kv.Version != 2 || kv.Lease != 0 {
		t.Fatalf("got %s; want \"k\"=\"v2\" c2 m3 v2 l0", kvString(kv))
	}
}

func TestReadsDoNotBumpRevision(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "a", "1")
	before := rev(t, ctx, cli)
	get(t, ctx, cli, "a", clientv3.WithPrefix())
	get(t, ctx, cli, "a", clientv3.WithSerializable())
	if _, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "1")).Then(clientv3.OpGet("a")).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Status(ctx, cli.Endpoints()[0]); err != nil {
		t.Fatal(err)
	}
	// A delete of nothing changes nothing, so it takes no revision either.
	if d, err := cli.Delete(ctx, "missing"); err != nil || d.Deleted != 0 {
		t.Fatalf("delete missing: %v %v", d, err)
	}
	// Nor does a txn whose chosen branch only reads.
	if _, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "x")).Then(clientv3.OpPut("a", "2")).Else(clientv3.OpGet("a")).Commit(); err != nil {
		t.Fatal(err)
	}
	if after := rev(t, ctx, cli); after != before {
		t.Fatalf("revision moved from %d to %d with reads only", before, after)
	}
}

// seed writes the keys in order, one revision each, and returns the
// revision of each.
func seed(t *testing.T, ctx context.Context, cli *clientv3.Client, kvs ...string) map[string]int64 {
	t.Helper()
	revs := map[string]int64{}
	for i := 0; i < len(kvs); i += 2 {
		revs[kvs[i]] = put(t, ctx, cli, kvs[i], kvs[i+1])
	}
	return revs
}

func TestRangeForms(t *testing.T) {
	_, cli, ctx := start(t)
	seed(t, ctx, cli, "a", "1", "b/1", "2", "b/2", "3", "b/3", "4", "c", "5", "d", "6")

	cases := []struct {
		name      string
		key       string
		opts      []clientv3.OpOption
		want      []string
		wantCount int64
		wantMore  bool
	}{
		{"single", "b/2", nil, []string{"b/2"}, 1, false},
		{"missing", "b", nil, []string{}, 0, false},
		{"prefix", "b/", []clientv3.OpOption{clientv3.WithPrefix()}, []string{"b/1", "b/2", "b/3"}, 3, false},
		{"range", "b/2", []clientv3.OpOption{clientv3.WithRange("d")}, []string{"b/2", "b/3", "c"}, 3, false},
		{"from key", "c", []clientv3.OpOption{clientv3.WithFromKey()}, []string{"c", "d"}, 2, false},
		{"all from \\x00", "\x00", []clientv3.OpOption{clientv3.WithFromKey()}, []string{"a", "b/1", "b/2", "b/3", "c", "d"}, 6, false},
		{"limit", "b/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(2)}, []string{"b/1", "b/2"}, 3, true},
		{"limit exact", "b/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(3)}, []string{"b/1", "b/2", "b/3"}, 3, false},
		{"limit from key", "a", []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithLimit(1)}, []string{"a"}, 6, true},
		{"empty range", "c", []clientv3.OpOption{clientv3.WithRange("c")}, []string{}, 0, false},
		{"serializable", "b/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSerializable()}, []string{"b/1", "b/2", "b/3"}, 3, false},
	}
	for _, c := range cases {
		resp := get(t, ctx, cli, c.key, c.opts...)
		if got := keys(resp.Kvs); !slices.Equal(got, c.want) || resp.Count != c.wantCount || resp.More != c.wantMore {
			t.Errorf("%s: got %v count=%d more=%v; want %v count=%d more=%v", c.name, got, resp.Count, resp.More, c.want, c.wantCount, c.wantMore)
		}
		checkHeader(t, resp.Header, 7)
	}
}

func TestRangeKeysOnlyAndCountOnly(t *testing.T) {
	_, cli, ctx := start(t)
	revs := seed(t, ctx, cli, "p/a", "1", "p/b", "2", "p/c", "3")
	put(t, ctx, cli, "p/b", "22")

	resp := get(t, ctx, cli, "p/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if got := keys(resp.Kvs); !slices.Equal(got, []string{"p/a", "p/b", "p/c"}) || resp.Count != 3 {
		t.Fatalf("keys only: %v count %d", got, resp.Count)
	}
	for _, kv := range resp.Kvs {
		if len(kv.Value) != 0 {
			t.Errorf("keys only returned a value: %s", kvString(kv))
		}
		if kv.CreateRevision != revs[string(kv.Key)] || kv.ModRevision == 0 || kv.Version == 0 {
			t.Errorf("keys only lost metadata: %s", kvString(kv))
		}
	}
	if b := resp.Kvs[1]; b.Version != 2 || b.ModRevision != 5 {
		t.Errorf("keys only p/b: %s; want version 2 mod 5", kvString(b))
	}

	resp = get(t, ctx, cli, "p/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if len(resp.Kvs) != 0 || resp.Count != 3 || resp.More {
		t.Fatalf("count only: kvs %v count %d more %v; want none, 3, false", resp.Kvs, resp.Count, resp.More)
	}
	resp = get(t, ctx, cli, "p/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithLimit(1))
	if len(resp.Kvs) != 0 || resp.Count != 3 {
		t.Fatalf("count only with limit: kvs %v count %d; want none, 3", resp.Kvs, resp.Count)
	}
}

func TestRangeAtRevision(t *testing.T) {
	_, cli, ctx := start(t)
	r1 := put(t, ctx, cli, "k", "v1") // 2
	r2 := put(t, ctx, cli, "k", "v2") // 3
	put(t, ctx, cli, "other", "x")    // 4
	d, err := cli.Delete(ctx, "k")    // 5
	if err != nil {
		t.Fatal(err)
	}
	r4 := d.Header.Revision
	put(t, ctx, cli, "k", "v3") // 6: a new incarnation

	cases := []struct {
		at   int64
		want string // "" means absent
		ver  int64
	}{{1, "", 0}, {r1, "v1", 1}, {r2, "v2", 2}, {r2 + 1, "v2", 2}, {r4, "", 0}, {0, "v3", 1}}
	for _, c := range cases {
		resp := get(t, ctx, cli, "k", clientv3.WithRev(c.at))
		// The header carries the store's current revision, not the one read.
		checkHeader(t, resp.Header, 6)
		switch {
		case c.want == "" && len(resp.Kvs) != 0:
			t.Errorf("at %d: got %s; want nothing", c.at, kvString(resp.Kvs[0]))
		case c.want != "" && (len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != c.want || resp.Kvs[0].Version != c.ver):
			t.Errorf("at %d: got %v; want %s version %d", c.at, resp.Kvs, c.want, c.ver)
		}
	}
	if kv := get(t, ctx, cli, "k").Kvs[0]; kv.CreateRevision != 6 {
		t.Errorf("recreated key: %s; want create revision 6", kvString(kv))
	}
	_, err = cli.Get(ctx, "k", clientv3.WithRev(7))
	wantErr(t, err, rpctypes.ErrGRPCFutureRev)
}

func TestRangeSort(t *testing.T) {
	_, cli, ctx := start(t)
	// Each target orders these four keys differently, without ties.
	put(t, ctx, cli, "c", "y")  // 2
	put(t, ctx, cli, "a", "z")  // 3
	put(t, ctx, cli, "d", "w")  // 4
	put(t, ctx, cli, "b", "x")  // 5
	put(t, ctx, cli, "d", "w2") // 6
	put(t, ctx, cli, "d", "w3") // 7
	put(t, ctx, cli, "a", "z2") // 8
	all := []clientv3.OpOption{clientv3.WithFromKey()}
	byKey := []string{"a", "b", "c", "d"}
	byCreate := []string{"c", "a", "d", "b"}
	byMod := []string{"c", "b", "d", "a"}   // c2 b5 d7 a8
	byValue := []string{"d", "b", "c", "a"} // w3 x y z2

	cases := []struct {
		target clientv3.SortTarget
		order  clientv3.SortOrder
		want   []string
	}{
		{clientv3.SortByKey, clientv3.SortAscend, byKey},
		{clientv3.SortByKey, clientv3.SortDescend, reversed(byKey)},
		{clientv3.SortByKey, clientv3.SortNone, byKey},
		{clientv3.SortByCreateRevision, clientv3.SortAscend, byCreate},
		{clientv3.SortByCreateRevision, clientv3.SortDescend, reversed(byCreate)},
		{clientv3.SortByModRevision, clientv3.SortAscend, byMod},
		{clientv3.SortByModRevision, clientv3.SortDescend, reversed(byMod)},
		// A target other than the key with no order sorts ascending.
		{clientv3.SortByModRevision, clientv3.SortNone, byMod},
		{clientv3.SortByValue, clientv3.SortAscend, byValue},
		{clientv3.SortByValue, clientv3.SortDescend, reversed(byValue)},
	}
	for _, c := range cases {
		resp := get(t, ctx, cli, "\x00", append(all, clientv3.WithSort(c.target, c.order))...)
		if got := keys(resp.Kvs); !slices.Equal(got, c.want) {
			t.Errorf("sort by %v %v: got %v; want %v", c.target, c.order, got, c.want)
		}
		// Sorting happens before the limit: the first of the sorted order
		// comes back, with more and the full count. (Not with order NONE:
		// etcd then takes limit+1 keys in key order and sorts only those.)
		if c.order == clientv3.SortNone {
			continue
		}
		resp = get(t, ctx, cli, "\x00", append(all, clientv3.WithSort(c.target, c.order), clientv3.WithLimit(1))...)
		if got := keys(resp.Kvs); !slices.Equal(got, c.want[:1]) || !resp.More || resp.Count != 4 {
			t.Errorf("sort by %v %v limit 1: got %v more=%v count=%d; want %v more=true count=4", c.target, c.order, got, resp.More, resp.Count, c.want[:1])
		}
	}

	// etcd's quirk for a non-key target with order NONE and a limit: the
	// limit+1 first keys (a, b) are sorted (b5 before a8) and cut to one.
	resp := get(t, ctx, cli, "\x00", clientv3.WithFromKey(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortNone), clientv3.WithLimit(1))
	if got := keys(resp.Kvs); !slices.Equal(got, []string{"b"}) || !resp.More || resp.Count != 4 {
		t.Errorf("sort by mod, order none, limit 1: got %v more=%v count=%d; want [b] more=true count=4", got, resp.More, resp.Count)
	}

	// Version: a has 2, d has 3, b and c have 1 (a tie, whose order is
	// not defined), so only the ends are checked.
	resp = get(t, ctx, cli, "\x00", clientv3.WithFromKey(), clientv3.WithSort(clientv3.SortByVersion, clientv3.SortDescend))
	if got := keys(resp.Kvs); len(got) != 4 || got[0] != "d" || got[1] != "a" {
		t.Errorf("sort by version descending: got %v; want d, a, then b and c", got)
	}

	// A sort order or target the protocol does not define is refused.
	kvc := pb.NewKVClient(cli.ActiveConnection())
	_, err := kvc.Range(ctx, &pb.RangeRequest{Key: []byte("a"), SortOrder: 7})
	wantErr(t, err, rpctypes.ErrGRPCInvalidSortOption)
	_, err = kvc.Range(ctx, &pb.RangeRequest{Key: []byte("a"), SortTarget: 9})
	wantErr(t, err, rpctypes.ErrGRPCInvalidSortOption)
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func TestRangeRevisionFilters(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "f/a", "1") // 2
	put(t, ctx, cli, "f/b", "1") // 3
	put(t, ctx, cli, "f/c", "1") // 4
	put(t, ctx, cli, "f/a", "2") // 5: a is c2 m5
	put(t, ctx, cli, "f/d", "1") // 6
	// create: a2 b3 c4 d6; mod: a5 b3 c4 d6

	cases := []struct {
		name string
		opts []clientv3.OpOption
		want []string
	}{
		{"min mod", []clientv3.OpOption{clientv3.WithMinModRev(5)}, []string{"f/a", "f/d"}},
		{"max mod", []clientv3.OpOption{clientv3.WithMaxModRev(4)}, []string{"f/b", "f/c"}},
		{"min create", []clientv3.OpOption{clientv3.WithMinCreateRev(4)}, []string{"f/c", "f/d"}},
		{"max create", []clientv3.OpOption{clientv3.WithMaxCreateRev(3)}, []string{"f/a", "f/b"}},
		{"mod window", []clientv3.OpOption{clientv3.WithMinModRev(4), clientv3.WithMaxModRev(5)}, []string{"f/a", "f/c"}},
		{"all four", []clientv3.OpOption{clientv3.WithMinModRev(3), clientv3.WithMaxModRev(6), clientv3.WithMinCreateRev(3), clientv3.WithMaxCreateRev(4)}, []string{"f/b", "f/c"}},
	}
	for _, c := range cases {
		resp := get(t, ctx, cli, "f/", append(c.opts, clientv3.WithPrefix())...)
		if got := keys(resp.Kvs); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v; want %v", c.name, got, c.want)
		}
		// etcd counts the keys in the range before filtering.
		if resp.Count != 4 {
			t.Errorf("%s: count %d; want 4 (the unfiltered count)", c.name, resp.Count)
		}
	}
	// The limit applies after filtering.
	resp := get(t, ctx, cli, "f/", clientv3.WithPrefix(), clientv3.WithMinModRev(4), clientv3.WithLimit(1))
	if got := keys(resp.Kvs); !slices.Equal(got, []string{"f/a"}) || !resp.More {
		t.Errorf("min mod 4 limit 1: got %v more=%v; want [f/a] more=true", got, resp.More)
	}
}

func TestPutOptions(t *testing.T) {
	_, cli, ctx := start(t)

	p, err := cli.Put(ctx, "k", "v1", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if p.PrevKv != nil {
		t.Fatalf("prev_kv of a new key: %s; want none", kvString(p.PrevKv))
	}
	p, err = cli.Put(ctx, "k", "v2", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if pk := p.PrevKv; pk == nil || string(pk.Value) != "v1" || pk.ModRevision != 2 || pk.Version != 1 {
		t.Fatalf("prev_kv: %s; want v1 at 2, version 1", kvString(pk))
	}
	p, err = cli.Put(ctx, "k", "v3")
	if err != nil {
		t.Fatal(err)
	}
	if p.PrevKv != nil {
		t.Fatalf("prev_kv given though not asked: %s", kvString(p.PrevKv))
	}

	l, err := cli.Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "k", "v4", clientv3.WithLease(l.ID)) // 5

	// ignore_value with ignore_lease keeps both, as a new revision.
	p, err = cli.Put(ctx, "k", "", clientv3.WithIgnoreValue(), clientv3.WithIgnoreLease(), clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if p.PrevKv == nil || string(p.PrevKv.Value) != "v4" {
		t.Fatalf("ignore_value prev_kv %s", kvString(p.PrevKv))
	}
	kv := get(t, ctx, cli, "k").Kvs[0]
	if string(kv.Value) != "v4" || kv.ModRevision != 6 || kv.Version != 5 || kv.Lease != int64(l.ID) {
		t.Fatalf("after ignore_value and ignore_lease: %s; want v4 m6 v5 with the lease", kvString(kv))
	}
	// ignore_value alone keeps the value but, like any put without a
	// lease, detaches the key from its lease.
	put(t, ctx, cli, "k", "", clientv3.WithIgnoreValue())
	kv = get(t, ctx, cli, "k").Kvs[0]
	if string(kv.Value) != "v4" || kv.Lease != 0 {
		t.Fatalf("after ignore_value alone: %s; want v4 without a lease", kvString(kv))
	}
	put(t, ctx, cli, "k", "v4", clientv3.WithLease(l.ID))

	// ignore_lease keeps the lease with a new value.
	put(t, ctx, cli, "k", "v5", clientv3.WithIgnoreLease())
	kv = get(t, ctx, cli, "k").Kvs[0]
	if string(kv.Value) != "v5" || kv.Lease != int64(l.ID) {
		t.Fatalf("after ignore_lease: %s; want v5 with lease %x", kvString(kv), l.ID)
	}
	ttl, err := cli.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != 1 {
		t.Fatalf("lease keys after ignore_lease: %v %v", ttl, err)
	}

	// A plain put detaches the lease.
	put(t, ctx, cli, "k", "v6")
	if kv = get(t, ctx, cli, "k").Kvs[0]; kv.Lease != 0 {
		t.Fatalf("plain put kept lease: %s", kvString(kv))
	}
	ttl, err = cli.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != 0 {
		t.Fatalf("lease keys after plain put: %v %v; want none", ttl, err)
	}

	// The ignore flags need an existing key, and refuse what they ignore.
	before := rev(t, ctx, cli)
	_, err = cli.Put(ctx, "missing", "", clientv3.WithIgnoreValue())
	wantErr(t, err, rpctypes.ErrGRPCKeyNotFound)
	_, err = cli.Put(ctx, "missing", "v", clientv3.WithIgnoreLease())
	wantErr(t, err, rpctypes.ErrGRPCKeyNotFound)
	_, err = cli.Put(ctx, "k", "v", clientv3.WithIgnoreValue())
	wantErr(t, err, rpctypes.ErrGRPCValueProvided)
	_, err = cli.Put(ctx, "k", "v", clientv3.WithIgnoreLease(), clientv3.WithLease(l.ID))
	wantErr(t, err, rpctypes.ErrGRPCLeaseProvided)
	if after := rev(t, ctx, cli); after != before {
		t.Fatalf("refused puts moved the revision from %d to %d", before, after)
	}
}

func TestDeleteRange(t *testing.T) {
	_, cli, ctx := start(t)
	seed(t, ctx, cli, "d/a", "1", "d/b", "2", "d/c", "3", "e", "4") // 2..5

	d, err := cli.Delete(ctx, "d/a", clientv3.WithRange("d/c"), clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, d.Header, 6)
	if d.Deleted != 2 || len(d.PrevKvs) != 2 || string(d.PrevKvs[0].Value) != "1" || string(d.PrevKvs[1].Value) != "2" {
		t.Fatalf("delete [d/a, d/c): deleted %d prev %v; want 2 with values 1, 2", d.Deleted, d.PrevKvs)
	}
	// Both keys went in one revision.
	resp := get(t, ctx, cli, "d/", clientv3.WithPrefix())
	if got := keys(resp.Kvs); !slices.Equal(got, []string{"d/c"}) {
		t.Fatalf("left %v; want [d/c]", got)
	}
	if got := keys(get(t, ctx, cli, "d/", clientv3.WithPrefix(), clientv3.WithRev(5)).Kvs); len(got) != 3 {
		t.Fatalf("at revision 5 %v; want all three", got)
	}

	d, err = cli.Delete(ctx, "d/", clientv3.WithPrefix())
	if err != nil || d.Deleted != 1 || d.PrevKvs != nil {
		t.Fatalf("delete prefix without prev_kv: %v %v", d, err)
	}
	d, err = cli.Delete(ctx, "\x00", clientv3.WithFromKey())
	if err != nil || d.Deleted != 1 {
		t.Fatalf("delete everything: %v %v", d, err)
	}
	if r := rev(t, ctx, cli); r != 8 {
		t.Fatalf("revision %d after three deletes; want 8", r)
	}
	_, err = cli.Delete(ctx, "")
	wantErr(t, err, rpctypes.ErrGRPCEmptyKey)
}

func TestLargeValuesAndBinaryKeys(t *testing.T) {
	_, cli, ctx := start(t)
	big := string(make([]byte, 1<<20)) // 1 MiB of zeros, under the 1.5 MiB default
	put(t, ctx, cli, "big", big)
	if kv := get(t, ctx, cli, "big").Kvs[0]; len(kv.Value) != len(big) {
		t.Fatalf("big value came back with %d bytes", len(kv.Value))
	}
	bin := "\x00\xff\x01k\x00"
	put(t, ctx, cli, bin, "\x00v")
	resp := get(t, ctx, cli, "\x00", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if got := keys(resp.Kvs); !slices.Equal(got, []string{bin, "big"}) {
		t.Fatalf("keys %q", got)
	}
	if v := get(t, ctx, cli, bin).Kvs[0].Value; string(v) != "\x00v" {
		t.Fatalf("binary value %q", v)
	}
	for i := range 3 {
		put(t, ctx, cli, fmt.Sprintf("\xff%d", i), "x")
	}
	// "\xff" has no prefix end but "\xff0".."\xff2" do; WithPrefix on
	// "\xff" reads to the end of the keyspace.
	if n := get(t, ctx, cli, "\xff", clientv3.WithPrefix()).Count; n != 3 {
		t.Fatalf("prefix \\xff count %d; want 3", n)
	}
}
