package e2e

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairnkv/cairn/api/v3lockpb"
)

func TestLockRPCHoldsUntilUnlock(t *testing.T) {
	_, cli, ctx := start(t)
	lc := v3lockpb.NewLockClient(cli.ActiveConnection())
	l1, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("job"), Lease: int64(l1.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if want := "job/"; string(resp.Key[:len(want)]) != want {
		t.Fatalf("lock key %q; want it under %q", resp.Key, want)
	}
	if g := get(t, ctx, cli, string(resp.Key)); len(g.Kvs) != 1 || g.Kvs[0].Lease != int64(l1.ID) {
		t.Fatalf("lock key %q: %v; want it with lease %x", resp.Key, g.Kvs, l1.ID)
	}

	// A second caller waits until the first unlocks.
	l2, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *v3lockpb.LockResponse, 1)
	go func() {
		r, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("job"), Lease: int64(l2.ID)})
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("second Lock returned while the first holds the lock")
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := lc.Unlock(ctx, &v3lockpb.UnlockRequest{Key: resp.Key}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r == nil || r.Header.Revision <= resp.Header.Revision {
			t.Fatalf("second Lock: %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second Lock did not return after Unlock")
	}
	// Unlocking a key that is no longer held is not an error.
	if _, err := lc.Unlock(ctx, &v3lockpb.UnlockRequest{Key: resp.Key}); err != nil {
		t.Fatalf("unlock of a released key: %v", err)
	}
}

// A concurrency.Mutex and the Lock RPC use the same keys, so each waits
// for the other.
func TestLockRPCContendsWithMutex(t *testing.T) {
	_, cli, ctx := start(t)
	lc := v3lockpb.NewLockClient(cli.ActiveConnection())
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mu := concurrency.NewMutex(s, "shared")
	if err := mu.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	_, err = lc.Lock(short, &v3lockpb.LockRequest{Name: []byte("shared")})
	cancel()
	if err == nil {
		t.Fatal("Lock RPC acquired a lock a concurrency.Mutex holds")
	}
	if err := mu.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("shared")})
	if err != nil {
		t.Fatal(err)
	}
	// Now the mutex waits for the RPC holder.
	short, cancel = context.WithTimeout(ctx, 700*time.Millisecond)
	err = mu.Lock(short)
	cancel()
	if err == nil {
		t.Fatal("concurrency.Mutex acquired a lock the Lock RPC holds")
	}
	if _, err := lc.Unlock(ctx, &v3lockpb.UnlockRequest{Key: resp.Key}); err != nil {
		t.Fatal(err)
	}
	if err := mu.Lock(ctx); err != nil {
		t.Fatal(err)
	}
}

// The holding ends with the holder's lease: the waiter gets the lock
// without anyone calling Unlock.
func TestLockRPCReleasedWhenLeaseExpires(t *testing.T) {
	_, cli, ctx := start(t)
	lc := v3lockpb.NewLockClient(cli.ActiveConnection())
	l1, err := cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	first, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("exp"), Lease: int64(l1.ID)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("exp")})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < time.Second {
		t.Fatalf("second Lock took %v; the first lease (2s) cannot have expired", time.Since(start))
	}
	if g := get(t, ctx, cli, string(first.Key)); len(g.Kvs) != 0 {
		t.Fatalf("expired holder's key %q still there", first.Key)
	}
	if g := get(t, ctx, cli, "exp/", clientv3.WithPrefix()); len(g.Kvs) != 1 || string(g.Kvs[0].Key) != string(second.Key) {
		t.Fatalf("keys under exp/: %v; want only %q", keys(g.Kvs), second.Key)
	}
}

// Lock on a lease that does not exist fails with etcd's lease error and
// leaves no key.
func TestLockRPCUnknownLease(t *testing.T) {
	_, cli, ctx := start(t)
	lc := v3lockpb.NewLockClient(cli.ActiveConnection())
	_, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("nolease"), Lease: 12345})
	if err == nil {
		t.Fatal("Lock with an unknown lease succeeded")
	}
	if _, msg := errCodeMsg(err); msg != "etcdserver: requested lease not found" {
		t.Fatalf("Lock with an unknown lease: %v", err)
	}
	if g := get(t, ctx, cli, "nolease", clientv3.WithPrefix()); len(g.Kvs) != 0 {
		t.Fatalf("failed Lock left %v", keys(g.Kvs))
	}
}
