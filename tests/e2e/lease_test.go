package e2e

import (
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLeaseGrantIDs(t *testing.T) {
	_, cli, ctx := start(t)
	a, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || b.ID == 0 || a.ID == b.ID || a.TTL != 60 {
		t.Fatalf("server-chosen leases %x (TTL %d) and %x", a.ID, a.TTL, b.ID)
	}
	checkHeader(t, a.ResponseHeader, 0)

	lc := pb.NewLeaseClient(cli.ActiveConnection())
	c, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 0x7eed, TTL: 30})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != 0x7eed || c.TTL != 30 {
		t.Fatalf("client-chosen lease: %x TTL %d; want 7eed TTL 30", c.ID, c.TTL)
	}
	put(t, ctx, cli, "k", "v", clientv3.WithLease(0x7eed))

	ls, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, l := range ls.Leases {
		ids = append(ids, int64(l.ID))
	}
	slices.Sort(ids)
	want := []int64{int64(a.ID), int64(b.ID), 0x7eed}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("Leases lists %x; want %x", ids, want)
	}

	// A grant goes through the log but, as in etcd, takes no revision.
	before := rev(t, ctx, cli)
	if _, err := cli.Grant(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if after := rev(t, ctx, cli); after != before {
		t.Fatalf("a grant moved the revision from %d to %d", before, after)
	}
}

func TestLeaseMinimumTTL(t *testing.T) {
	_, cli, ctx := start(t)
	// With the default 1s election timeout the minimum TTL is 1.5 election
	// timeouts, rounded up: 2 seconds.
	l, err := cli.Grant(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if l.TTL != 2 {
		t.Fatalf("grant of TTL 1: TTL %d; want the minimum, 2", l.TTL)
	}
	ttl, err := cli.TimeToLive(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.GrantedTTL != 2 || ttl.TTL > 2 || ttl.TTL < 0 {
		t.Fatalf("TimeToLive of a TTL-1 grant: granted %d remaining %d; want granted 2", ttl.GrantedTTL, ttl.TTL)
	}
}

func TestLeaseKeepAlive(t *testing.T) {
	_, cli, ctx := start(t)
	l, err := cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "kept", "v", clientv3.WithLease(l.ID))

	ka, err := cli.KeepAliveOnce(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ka.ID != l.ID || ka.TTL != 2 {
		t.Fatalf("keep-alive once: %x TTL %d; want %x TTL 2", ka.ID, ka.TTL, l.ID)
	}

	ch, err := cli.KeepAlive(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Keep it alive for twice its TTL: the key must survive.
	deadline := time.After(4 * time.Second)
	for done := false; !done; {
		select {
		case r, ok := <-ch:
			if !ok {
				t.Fatal("keep-alive channel closed")
			}
			if r.TTL != 2 {
				t.Fatalf("keep-alive response TTL %d; want 2", r.TTL)
			}
		case <-deadline:
			done = true
		}
	}
	if n := get(t, ctx, cli, "kept", clientv3.WithCountOnly()).Count; n != 1 {
		t.Fatal("a key on a lease kept alive expired")
	}
	// etcd rounds the remaining time down, so a 2 s lease whose renewal
	// is a little late on a busy machine may show 0: alive is what counts.
	ttl, err := cli.TimeToLive(ctx, l.ID)
	if err != nil || ttl.TTL < 0 || ttl.GrantedTTL != 2 {
		t.Fatalf("TimeToLive of a kept-alive lease: %v %v", ttl, err)
	}
}

func TestLeaseTimeToLive(t *testing.T) {
	_, cli, ctx := start(t)
	l, err := cli.Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b", "a", "c"} {
		put(t, ctx, cli, k, "v", clientv3.WithLease(l.ID))
	}
	ttl, err := cli.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, k := range ttl.Keys {
		ks = append(ks, string(k))
	}
	slices.Sort(ks)
	if ttl.ID != l.ID || ttl.GrantedTTL != 100 || ttl.TTL < 98 || ttl.TTL > 100 || !slices.Equal(ks, []string{"a", "b", "c"}) {
		t.Fatalf("TimeToLive: id %x granted %d remaining %d keys %q", ttl.ID, ttl.GrantedTTL, ttl.TTL, ks)
	}
	checkHeader(t, ttl.ResponseHeader, 0)
	if ttl, err = cli.TimeToLive(ctx, l.ID); err != nil || len(ttl.Keys) != 0 {
		t.Fatalf("TimeToLive without keys: %v %v", ttl, err)
	}

	// An unknown lease is no error: TTL -1.
	unknown, err := cli.TimeToLive(ctx, 0x5151, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	if unknown.TTL != -1 || unknown.ID != 0x5151 || unknown.GrantedTTL != 0 || len(unknown.Keys) != 0 {
		t.Fatalf("TimeToLive of an unknown lease: %+v; want TTL -1", unknown)
	}
}

func TestLeaseRevokeDeletesKeysInOneRevision(t *testing.T) {
	_, cli, ctx := start(t)
	l, err := cli.Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"l/a", "l/b", "l/c"} {
		put(t, ctx, cli, k, "v", clientv3.WithLease(l.ID))
	}
	put(t, ctx, cli, "l/free", "v")
	wc := cli.Watch(ctx, "l/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	before := rev(t, ctx, cli)

	r, err := cli.Revoke(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, r.Header, before+1)
	evs := collect(t, wc, 3, 10*time.Second)
	for _, ev := range evs {
		if ev.Type != clientv3.EventTypeDelete || ev.Kv.ModRevision != before+1 || ev.PrevKv == nil || ev.PrevKv.Lease != int64(l.ID) {
			t.Fatalf("revoke event %v %s prev %s; want deletes at %d", ev.Type, kvString(ev.Kv), kvString(ev.PrevKv), before+1)
		}
	}
	resp := get(t, ctx, cli, "l/", clientv3.WithPrefix())
	if got := keys(resp.Kvs); !slices.Equal(got, []string{"l/free"}) || resp.Header.Revision != before+1 {
		t.Fatalf("after revoke: %v at %d; want [l/free] at %d", got, resp.Header.Revision, before+1)
	}
	if ttl, err := cli.TimeToLive(ctx, l.ID); err != nil || ttl.TTL != -1 {
		t.Fatalf("TimeToLive of a revoked lease: %v %v; want TTL -1", ttl, err)
	}

	// Revoking a lease with no keys deletes nothing and takes no revision.
	empty, err := cli.Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx, empty.ID); err != nil {
		t.Fatal(err)
	}
	if after := rev(t, ctx, cli); after != before+1 {
		t.Fatalf("revoking an empty lease moved the revision to %d; want %d", after, before+1)
	}
}

func TestLeaseExpiryDeletesKeys(t *testing.T) {
	_, cli, ctx := start(t)
	l, err := cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "e/a", "v", clientv3.WithLease(l.ID))
	put(t, ctx, cli, "e/b", "v", clientv3.WithLease(l.ID))
	wc := cli.Watch(ctx, "e/", clientv3.WithPrefix())
	granted := time.Now()
	before := rev(t, ctx, cli)

	evs := collect(t, wc, 2, 15*time.Second)
	elapsed := time.Since(granted)
	if elapsed < 1500*time.Millisecond {
		t.Fatalf("keys of a 2s lease deleted after %v", elapsed)
	}
	for _, ev := range evs {
		if ev.Type != clientv3.EventTypeDelete || ev.Kv.ModRevision != before+1 {
			t.Fatalf("expiry event %v at %d; want deletes in one revision, %d", ev.Type, ev.Kv.ModRevision, before+1)
		}
	}
	if n := get(t, ctx, cli, "e/", clientv3.WithPrefix(), clientv3.WithCountOnly()).Count; n != 0 {
		t.Fatalf("%d keys left after expiry", n)
	}
	ttl, err := cli.TimeToLive(ctx, l.ID)
	if err != nil || ttl.TTL != -1 {
		t.Fatalf("TimeToLive of an expired lease: %v %v; want TTL -1", ttl, err)
	}
	if _, err := cli.KeepAliveOnce(ctx, l.ID); err == nil {
		t.Fatal("keep-alive of an expired lease succeeded")
	}
}

func TestLeaseKeysFollowTheirWrites(t *testing.T) {
	_, cli, ctx := start(t)
	l, err := cli.Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "a", "v", clientv3.WithLease(l.ID))
	put(t, ctx, cli, "b", "v", clientv3.WithLease(l.ID))
	other, err := cli.Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	// Deleting a key, or moving it to another lease, detaches it.
	if _, err := cli.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "b", "v2", clientv3.WithLease(other.ID))
	ttl, err := cli.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != 0 {
		t.Fatalf("keys of the first lease after delete and move: %q (%v); want none", ttl.Keys, err)
	}
	// So revoking the first lease deletes nothing and takes no revision...
	before := rev(t, ctx, cli)
	if _, err := cli.Revoke(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if after := rev(t, ctx, cli); after != before {
		t.Fatalf("revoking a lease whose keys moved on: revision %d -> %d", before, after)
	}
	// ...and revoking the second deletes the moved key.
	if _, err := cli.Revoke(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if n := get(t, ctx, cli, "b", clientv3.WithCountOnly()).Count; n != 0 {
		t.Fatal("revoking the lease a key moved to left the key")
	}
}
