package cluster

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestLeaseThroughAFollower: keep-alives and TimeToLive sent to a
// follower reach the leader, which alone tracks deadlines; a lease kept
// alive through a follower outlives its TTL, and expires (deleting its
// key) once the keep-alives stop.
func TestLeaseThroughAFollower(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := c.WaitLeader(t)
	follower := others(c, leader)[0]
	cli := clientOf(t, follower)

	lease, err := cli.Grant(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "leased", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	kctx, stop := context.WithCancel(ctx)
	ka, err := cli.KeepAlive(kctx, lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ka {
		}
	}()
	time.Sleep(5 * time.Second) // past the TTL
	ttl, err := cli.TimeToLive(ctx, lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL < 0 || ttl.GrantedTTL != 3 {
		t.Fatalf("kept alive through a follower, TimeToLive says TTL %d of %d; want it alive", ttl.TTL, ttl.GrantedTTL)
	}
	if resp, err := cli.Get(ctx, "leased"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("leased key gone while kept alive: %v %v", resp, err)
	}
	stop()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := cli.Get(ctx, "leased")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("leased key still there 15s after keep-alives stopped")
		}
		time.Sleep(200 * time.Millisecond)
	}
	ttl, err = cli.TimeToLive(ctx, lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL != -1 {
		t.Fatalf("expired lease: TimeToLive TTL %d, want -1", ttl.TTL)
	}
}
