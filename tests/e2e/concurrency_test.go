package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func newSession(t *testing.T, cli *clientv3.Client, opts ...concurrency.SessionOption) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(cli, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMutexExcludes(t *testing.T) {
	m, cli, ctx := start(t)
	const sessions, rounds = 5, 8
	var holders atomic.Int32
	var overlap atomic.Bool
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range sessions {
		// Each contender has a client of its own, as separate processes would.
		s := newSession(t, m.Client(t))
		wg.Go(func() {
			mx := concurrency.NewMutex(s, "/lock/")
			for range rounds {
				if err := mx.Lock(ctx); err != nil {
					t.Error(err)
					return
				}
				if holders.Add(1) > 1 {
					overlap.Store(true)
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				holders.Add(-1)
				if err := mx.Unlock(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if overlap.Load() {
		t.Fatal("two sessions held the mutex at once")
	}
	if len(order) != sessions*rounds {
		t.Fatalf("%d acquisitions; want %d", len(order), sessions*rounds)
	}
	// Every lock key is gone once all are unlocked.
	if n := get(t, ctx, cli, "/lock/", clientv3.WithPrefix(), clientv3.WithCountOnly()).Count; n != 0 {
		t.Fatalf("%d lock keys left", n)
	}

	// TryLock fails fast while another session holds the lock, and a
	// holder's lock goes when its session's lease is revoked.
	a, b := newSession(t, cli), newSession(t, cli)
	ma, mb := concurrency.NewMutex(a, "/lock/"), concurrency.NewMutex(b, "/lock/")
	if err := ma.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mb.TryLock(ctx); err != concurrency.ErrLocked {
		t.Fatalf("TryLock while held: %v; want ErrLocked", err)
	}
	if _, err := cli.Revoke(ctx, a.Lease()); err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := mb.Lock(lctx); err != nil {
		t.Fatalf("Lock after the holder's lease was revoked: %v", err)
	}
}

func TestElection(t *testing.T) {
	_, cli, ctx := start(t)
	s1, s2 := newSession(t, cli), newSession(t, cli)
	e1, e2 := concurrency.NewElection(s1, "/elect/"), concurrency.NewElection(s2, "/elect/")

	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	obs := concurrency.NewElection(newSession(t, cli), "/elect/").Observe(octx)

	if err := e1.Campaign(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(ctx, "two") }()
	select {
	case err := <-won:
		t.Fatalf("second candidate won while the first leads (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	l, err := e1.Leader(ctx)
	if err != nil || string(l.Kvs[0].Value) != "one" {
		t.Fatalf("leader %v %v; want one", l, err)
	}
	if err := e1.Proclaim(ctx, "one again"); err != nil {
		t.Fatal(err)
	}
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-won:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second candidate did not win after the first resigned")
	}
	if l, err = e2.Leader(ctx); err != nil || string(l.Kvs[0].Value) != "two" {
		t.Fatalf("leader %v %v; want two", l, err)
	}

	// The observer saw each leader value in turn.
	want := []string{"one", "one again", "two"}
	for _, w := range want {
		select {
		case r := <-obs:
			if got := string(r.Kvs[0].Value); got != w {
				t.Fatalf("observed %q; want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("did not observe %q", w)
		}
	}
}

func TestSTMTransfersPreserveSum(t *testing.T) {
	_, cli, ctx := start(t)
	const accounts, initial, workers, transfers = 5, 100, 6, 25
	for i := range accounts {
		put(t, ctx, cli, fmt.Sprintf("acct/%d", i), strconv.Itoa(initial))
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range transfers {
				from, to := r.IntN(accounts), r.IntN(accounts)
				if from == to {
					continue
				}
				amount := r.IntN(20)
				_, err := concurrency.NewSTM(cli, func(stm concurrency.STM) error {
					fk, tk := fmt.Sprintf("acct/%d", from), fmt.Sprintf("acct/%d", to)
					fv, _ := strconv.Atoi(stm.Get(fk))
					tv, _ := strconv.Atoi(stm.Get(tk))
					if fv < amount {
						return nil
					}
					stm.Put(fk, strconv.Itoa(fv-amount))
					stm.Put(tk, strconv.Itoa(tv+amount))
					return nil
				}, concurrency.WithAbortContext(ctx))
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	sum := 0
	for _, kv := range get(t, ctx, cli, "acct/", clientv3.WithPrefix()).Kvs {
		v, err := strconv.Atoi(string(kv.Value))
		if err != nil || v < 0 {
			t.Fatalf("account %s = %q", kv.Key, kv.Value)
		}
		sum += v
	}
	if sum != accounts*initial {
		t.Fatalf("sum %d after concurrent transfers; want %d", sum, accounts*initial)
	}
}
