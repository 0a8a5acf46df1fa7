package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairnkv/cairn/api/v3lockpb"
)

// lockTTL is the TTL, in seconds, of the lock clients' sessions and of
// the leases the Lock RPC and election clients keep alive.
const lockTTL = 3

// hold is one time a lock client believed it held the lock: from a
// revision at which the server vouched for it to the deletion of its
// key (its unlock, or the end of its lease). A concurrency.Mutex client
// reads its own key linearizably right after Lock returned and counts
// the hold only if the key is there: the read's revision is Rev, and the
// key's create revision then is Create. A Lock RPC client counts every
// Lock that answered: Rev is the answer's header revision (etcd's Lock
// answers with the revision it last read the key at, once every older
// key was gone), and Create is left 0, as the answer does not carry it:
// the checker takes it from the watch history. A Lock that failed or
// timed out is no hold, as a Mutex.Lock that failed is none: the client
// does not believe it holds the lock, and gives back the key the server
// may have put for it.
type hold struct {
	Client int
	Via    string // viaMutex or viaLockRPC
	Key    string
	Lease  clientv3.LeaseID
	Rev    int64
	Create int64
	// Unlock is the revision an acknowledged Unlock RPC answered with (0:
	// none, or a Mutex, whose Unlock does not say).
	Unlock int64
}

const (
	viaMutex   = "mutex"
	viaLockRPC = "lock RPC"
)

func (h hold) who() string {
	return fmt.Sprintf("client %d (%s, key %s, lease %x)", h.Client, h.Via, h.Key, h.Lease)
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
	m := concurrency.NewMutex(s, lockName)
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
		c.holds = append(c.holds, hold{Client: c.id, Via: viaMutex, Key: m.Key(), Lease: s.Lease(), Rev: resp.Header.Revision, Create: resp.Kvs[0].CreateRevision})
		c.mu.Unlock()
	}
	sleepCtx(ctx, time.Duration(c.rng.IntN(200))*time.Millisecond)
	uctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	_ = m.Unlock(uctx)
	cancel()
}

// lockName is the lock every lock client takes, Mutex and Lock RPC
// alike; its keys are under lockPrefix.
var lockName = strings.TrimSuffix(lockPrefix, "/") // Lock and NewMutex add the slash

// lockRPCClient takes and releases the lock with the v3lock service's
// Lock and Unlock, on a lease of its own that it keeps alive.
type lockRPCClient struct {
	id  int
	cli *clientv3.Client
	lc  v3lockpb.LockClient
	rng *rand.Rand

	mu    sync.Mutex
	holds []hold
}

func newLockRPCClient(id int, cli *clientv3.Client) *lockRPCClient {
	return &lockRPCClient{id: id, cli: cli, lc: v3lockpb.NewLockClient(cli.ActiveConnection()),
		rng: rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))}
}

func (c *lockRPCClient) records() []hold {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]hold(nil), c.holds...)
}

func (c *lockRPCClient) run(ctx context.Context) { runHolder(ctx, c.cli, lockTTL, c.once) }

func (c *lockRPCClient) once(ctx context.Context, lease clientv3.LeaseID) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := c.lc.Lock(lctx, &v3lockpb.LockRequest{Name: []byte(lockName), Lease: int64(lease)})
	cancel()
	if err != nil {
		// Not a hold; but the server may have put our key (and may yet
		// give it the lock), so give it back, as Mutex.Lock does when it
		// fails. The server gives it back itself when the caller goes
		// away, but not with auth on (its clean-up call carries no
		// identity: etcd 3.7.3's neither), nor when a member dies. If
		// the Unlock fails too, the next Lock on this lease takes the key
		// over.
		c.unlock(keyOf(lockPrefix, lease))
		if ctx.Err() == nil {
			sleepCtx(ctx, 50*time.Millisecond)
		}
		return
	}
	c.mu.Lock()
	c.holds = append(c.holds, hold{Client: c.id, Via: viaLockRPC, Key: string(resp.Key), Lease: lease, Rev: resp.Header.Revision})
	i := len(c.holds) - 1
	c.mu.Unlock()
	sleepCtx(ctx, time.Duration(c.rng.IntN(200))*time.Millisecond)
	if rev := c.unlock(string(resp.Key)); rev != 0 {
		c.mu.Lock()
		c.holds[i].Unlock = rev
		c.mu.Unlock()
	}
}

// unlock sends Unlock for key, even once the load has stopped, and
// returns the revision it was acknowledged with (0: it was not).
func (c *lockRPCClient) unlock(key string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := c.lc.Unlock(ctx, &v3lockpb.UnlockRequest{Key: []byte(key)})
	if err != nil {
		return 0
	}
	return resp.Header.Revision
}

// checkLocks checks every hold against the lives of the lock's keys in
// the watch history: the holder's key existed at the hold's revision
// (with the create revision the holder read, if it read one) and was
// the oldest key under lockPrefix then, so the lock was its turn; a
// Lock RPC answered the key etcd gives the lease; an acknowledged
// Unlock deleted the key at its revision or before; and no two holds
// overlap, each lasting from its revision to its key's deletion.
func checkLocks(holds []hold, idx eventIndex) []string {
	ls := keyLives(idx, lockPrefix)
	var violations []string
	var ts []tenure
	for _, h := range holds {
		l := ls.at(h.Key, h.Rev)
		switch {
		case l == nil:
			violations = append(violations, fmt.Sprintf("%s held the lock at revision %d, when the watch history has no such key", h.who(), h.Rev))
			continue
		case h.Create != 0 && h.Create != l.Create:
			violations = append(violations, fmt.Sprintf("%s read its key created at %d at revision %d; the watch history has %v", h.who(), h.Create, h.Rev, l))
			continue
		}
		if o := ls.owner(h.Rev); o != l {
			violations = append(violations, fmt.Sprintf("%s held the lock at revision %d out of turn: %v was older and still there", h.who(), h.Rev, o))
		}
		if want := keyOf(lockPrefix, h.Lease); h.Via == viaLockRPC && h.Key != want {
			violations = append(violations, fmt.Sprintf("%s: Lock answered key %s; etcd's key for the lease is %s", h.who(), h.Key, want))
		}
		if h.Unlock != 0 && l.end() > h.Unlock {
			violations = append(violations, fmt.Sprintf("%s: Unlock acknowledged at revision %d, but %v", h.who(), h.Unlock, l))
		}
		ts = append(ts, tenure{who: h.who(), life: l, from: h.Rev, to: l.end()})
	}
	return append(violations, overlaps(ts, "lock held twice")...)
}
