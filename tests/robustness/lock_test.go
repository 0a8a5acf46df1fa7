package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// lockTTL is the session TTL of the lock clients, in seconds.
const lockTTL = 3

// hold is one time a lock client believed it held the lock: from the
// revision of a linearizable read of its own lock key, made right after
// Mutex.Lock returned, to the deletion of that key (its unlock, or the
// end of its session's lease). While the key exists its lease is alive,
// so two holds whose revision ranges overlap are two clients that
// believed they held the lock with leases both alive.
type hold struct {
	Client int
	Key    string
	Lease  clientv3.LeaseID
	// Rev is the revision the client read its key at; Create the key's
	// create revision then.
	Rev    int64
	Create int64
}

// lockClient takes and releases a concurrency.Mutex in a loop.
type lockClient struct {
	id  int
	cli *clientv3.Client
	rng *rand.Rand

	mu    sync.Mutex
	holds []hold
}

func newLockClient(id int, cli *clientv3.Client) *lockClient {
	return &lockClient{id: id, cli: cli, rng: rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))}
}

func (c *lockClient) records() []hold {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]hold(nil), c.holds...)
}

func (c *lockClient) run(ctx context.Context) {
	var s *concurrency.Session
	defer func() {
		if s != nil {
			s.Close() // revokes its lease, deleting any key it still holds
		}
	}()
	for ctx.Err() == nil {
		if s != nil {
			select {
			case <-s.Done(): // its lease is gone
				s.Close()
				s = nil
			default:
			}
		}
		if s == nil {
			var err error
			if s, err = concurrency.NewSession(c.cli, concurrency.WithTTL(lockTTL), concurrency.WithContext(ctx)); err != nil {
				s = nil
				sleepCtx(ctx, 200*time.Millisecond)
				continue
			}
		}
		c.once(ctx, s)
	}
}

func (c *lockClient) once(ctx context.Context, s *concurrency.Session) {
	m := concurrency.NewMutex(s, strings.TrimSuffix(lockPrefix, "/")) // it adds the slash
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := m.Lock(lctx)
	cancel()
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			sleepCtx(ctx, 50*time.Millisecond)
		}
		return
	}
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	resp, err := c.cli.Get(rctx, m.Key())
	cancel()
	if err == nil && len(resp.Kvs) == 1 {
		c.mu.Lock()
		c.holds = append(c.holds, hold{Client: c.id, Key: m.Key(), Lease: s.Lease(), Rev: resp.Header.Revision, Create: resp.Kvs[0].CreateRevision})
		c.mu.Unlock()
	}
	sleepCtx(ctx, time.Duration(c.rng.IntN(200))*time.Millisecond)
	uctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	_ = m.Unlock(uctx)
	cancel()
}

// checkLocks checks that no two holds overlap: each lasts from its
// read's revision to the revision that deleted its key, which the watch
// of rootPrefix gives (a key never deleted lasts to the end).
func checkLocks(holds []hold, idx eventIndex) []string {
	deleted := make(map[string][]int64) // key → revisions that deleted it
	for rev, evs := range idx {
		for _, e := range evs {
			if !e.Put {
				deleted[e.Key] = append(deleted[e.Key], rev)
			}
		}
	}
	type span struct {
		h        hold
		from, to int64 // [from, to)
	}
	spans := make([]span, 0, len(holds))
	for _, h := range holds {
		to := int64(1<<63 - 1)
		for _, d := range deleted[h.Key] {
			if d > h.Create && d < to {
				to = d
			}
		}
		spans = append(spans, span{h, h.Rev, to})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
	var violations []string
	// Sorted by start, a hold overlaps an earlier one exactly when it
	// starts before the latest end so far. A session that locks again
	// while its key still exists (its unlock timed out) holds the lock
	// on, reentrantly: the same key, created once, is one hold.
	for i, last := 1, 0; i < len(spans); i++ {
		a, b := spans[last], spans[i]
		if b.from < a.to && (a.h.Key != b.h.Key || a.h.Create != b.h.Create) {
			violations = append(violations, fmt.Sprintf("lock held twice: client %d (key %s, lease %x) from revision %d to %d, and client %d (key %s, lease %x) from %d",
				a.h.Client, a.h.Key, a.h.Lease, a.from, a.to, b.h.Client, b.h.Key, b.h.Lease, b.from))
		}
		if b.to > a.to {
			last = i
		}
	}
	return violations
}
