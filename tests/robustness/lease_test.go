package robustness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// leaseTTL is the TTL the lease clients ask for, in seconds: above the
// server's minimum (one and a half election timeouts) and short enough
// for several leases to expire in a bounded run.
const leaseTTL = 3

// leaseRecord is one lease of a lease client and its one key, with when
// the client learnt the lease alive (times on the history's clock).
type leaseRecord struct {
	Client int
	ID     clientv3.LeaseID
	Key    string
	Value  string
	// Grant is when the grant was sent; TTL what it granted.
	Grant int64
	TTL   int64
	// Renewals are when each keep-alive that the server answered with a
	// TTL was sent, and that TTL.
	Renewals []renewal
	// Revoke is when a revoke was first sent (0: never), RevokeRev the
	// revision of its answer (0: none).
	Revoke    int64
	RevokeRev int64
	// PutRev is the revision an acknowledged put of Key had.
	PutRev int64
	// Lost is when a keep-alive sent while the client was still
	// renewing the lease was answered "lease not found" (0: never): the
	// lease expired although its holder kept renewing it.
	Lost int64
	// Failed is the first keep-alive error that was not one of etcd's
	// (code Unknown: clients treat it as fatal), "" for none.
	Failed string
}

type renewal struct {
	Call int64
	TTL  int64
}

// aliveUntil is the latest time the lease is known to live until: a
// lease granted or renewed with TTL t when the client sent the request
// at c expires no earlier than c+t, whatever leader holds it (a new
// leader extends every lease by its full TTL).
func (l *leaseRecord) aliveUntil() int64 {
	until := l.Grant + l.TTL*int64(time.Second)
	for _, r := range l.Renewals {
		until = max(until, r.Call+r.TTL*int64(time.Second))
	}
	return until
}

// leaseClient grants leases, attaches a key to each, and then either
// keeps the lease alive a while and revokes it, or lets it expire.
type leaseClient struct {
	id  int
	cli *clientv3.Client
	h   *history
	rng *rand.Rand

	mu     sync.Mutex
	leases []*leaseRecord
}

func newLeaseClient(id int, cli *clientv3.Client, h *history) *leaseClient {
	return &leaseClient{id: id, cli: cli, h: h, rng: rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))}
}

func (c *leaseClient) records() []leaseRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]leaseRecord, len(c.leases))
	for i, l := range c.leases {
		out[i] = *l
	}
	return out
}

// update changes a record under the client's lock, as records() reads
// them while the client runs.
func (c *leaseClient) update(f func()) {
	c.mu.Lock()
	f()
	c.mu.Unlock()
}

func (c *leaseClient) run(ctx context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		c.one(ctx, n)
	}
}

// one is the life of one lease.
func (c *leaseClient) one(ctx context.Context, n int) {
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	call := c.h.now()
	g, err := c.cli.Grant(rctx, leaseTTL)
	cancel()
	if err != nil {
		sleepCtx(ctx, 100*time.Millisecond)
		return
	}
	l := &leaseRecord{Client: c.id, ID: g.ID, Key: fmt.Sprintf("%sl%d-%d", leasePrefix, c.id, n),
		Value: fmt.Sprintf("l%d-%d", c.id, n), Grant: call, TTL: g.TTL}
	c.update(func() { c.leases = append(c.leases, l) })

	rctx, cancel = context.WithTimeout(ctx, opTimeout)
	p, err := c.cli.Put(rctx, l.Key, l.Value, clientv3.WithLease(g.ID))
	cancel()
	if err == nil {
		c.update(func() { l.PutRev = p.Header.Revision })
	}

	if c.rng.IntN(3) == 0 {
		return // left to expire
	}
	// Keep it alive for up to a TTL and a half, then revoke it.
	until := time.Now().Add(time.Duration(c.rng.Int64N(leaseTTL*int64(time.Second))) + 500*time.Millisecond)
	for time.Now().Before(until) && ctx.Err() == nil {
		sleepCtx(ctx, time.Duration(leaseTTL)*time.Second/4)
		rctx, cancel := context.WithTimeout(ctx, opTimeout)
		call := c.h.now()
		ka, err := c.cli.KeepAliveOnce(rctx, g.ID)
		cancel()
		if err == nil && ka.TTL > 0 {
			c.update(func() { l.Renewals = append(l.Renewals, renewal{Call: call, TTL: ka.TTL}) })
		}
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			c.update(func() { l.Lost = call })
			return
		}
		if err != nil && status.Code(err) == codes.Unknown && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			c.update(func() { l.Failed = cmp.Or(l.Failed, err.Error()) })
		}
	}
	if ctx.Err() != nil {
		return
	}
	rctx, cancel = context.WithTimeout(ctx, opTimeout)
	defer cancel()
	c.update(func() { l.Revoke = c.h.now() })
	if r, err := c.cli.Revoke(rctx, g.ID); err == nil {
		c.update(func() { l.RevokeRev = r.Header.Revision })
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// checkLeases checks the lease clients' records against the watch of
// rootPrefix: a lease key is put at the revision its put was
// acknowledged with; it is deleted neither before the client revoked
// the lease nor while the lease was known alive (the watcher received
// the delete before the lease's last grant or renewal could have run
// out); a revoke acknowledged at revision r deleted the key at r or
// before. That every lease key is deleted once its lease expires is
// checked at the end of the run, when no lease is kept alive any more.
func checkLeases(leases []leaseRecord, idx eventIndex) []string {
	type life struct{ put, del *watchEvent }
	lives := make(map[string]*life)
	for rev := range idx {
		for i, e := range idx[rev] {
			if len(e.Key) < len(leasePrefix) || e.Key[:len(leasePrefix)] != leasePrefix {
				continue
			}
			l := lives[e.Key]
			if l == nil {
				l = &life{}
				lives[e.Key] = l
			}
			ev := &idx[rev][i]
			if e.Put {
				l.put = ev
			} else if l.del == nil || ev.Rev < l.del.Rev {
				l.del = ev
			}
		}
	}
	var violations []string
	for _, l := range leases {
		life := lives[l.Key]
		if l.PutRev != 0 && (life == nil || life.put == nil || life.put.Rev != l.PutRev) {
			violations = append(violations, fmt.Sprintf("lease %x: put of %s acknowledged at revision %d, not in the watch history", l.ID, l.Key, l.PutRev))
			continue
		}
		if life == nil || life.put == nil {
			continue // never written
		}
		if life.put.Lease != int64(l.ID) {
			violations = append(violations, fmt.Sprintf("lease %x: %v is attached to lease %x", l.ID, *life.put, life.put.Lease))
		}
		if life.del == nil {
			continue // still there at the end: checked by then
		}
		d := life.del
		if d.Rev < life.put.Rev {
			violations = append(violations, fmt.Sprintf("lease %x: %v before its put at %d", l.ID, *d, life.put.Rev))
		}
		revoked := l.Revoke != 0 && l.Revoke <= d.At
		if until := l.aliveUntil(); !revoked && d.At < until {
			violations = append(violations, fmt.Sprintf("lease %x (TTL %ds, %d renewals): %v seen %v after the run began, while the lease was alive until at least %v and not revoked",
				l.ID, l.TTL, len(l.Renewals), *d, time.Duration(d.At).Round(time.Millisecond), time.Duration(until).Round(time.Millisecond)))
		}
		if l.RevokeRev != 0 && d.Rev > l.RevokeRev {
			violations = append(violations, fmt.Sprintf("lease %x: revoke acknowledged at revision %d, but %s was deleted at %d", l.ID, l.RevokeRev, l.Key, d.Rev))
		}
	}
	return violations
}

// checkLeasesKeptAlive reports every lease that expired although its
// holder kept renewing it, and every keep-alive that failed with a
// non-etcd error (code Unknown), once a TTL/4, through the scenario's faults:
// a leader that dies or an election that runs must not cost a lease
// holder its lease (a new leader extends every lease by its TTL, and a
// follower forwards renewals to whichever leader comes next).
func checkLeasesKeptAlive(leases []leaseRecord) []string {
	var violations []string
	for _, l := range leases {
		if l.Lost != 0 {
			violations = append(violations, fmt.Sprintf("lease %x (TTL %d s) expired while its holder was renewing it: a keep-alive sent %v after the grant (%d renewals acknowledged before) was answered lease not found",
				l.ID, l.TTL, time.Duration(l.Lost-l.Grant).Round(time.Millisecond), len(l.Renewals)))
		}
		if l.Failed != "" {
			violations = append(violations, fmt.Sprintf("lease %x: a keep-alive failed with code Unknown, which clients treat as fatal: %s", l.ID, l.Failed))
		}
	}
	return violations
}
