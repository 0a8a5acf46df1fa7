package robustness

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Locks and elections are built alike, by etcd and so by Cairn: a
// candidate puts a key with its lease under the name's prefix
// (name/<lease in hex>) and waits until every key created before its
// own is gone. At each revision the holder of the lock, or the leader
// of the election, is the key under the prefix with the lowest create
// revision then; it holds until its key is deleted (unlocked, resigned,
// or its lease ran out). Both checks rebuild those keys' lives from the
// watch of rootPrefix and hold the clients' claims against them.

// life is one existence of a key: from the put that created it to the
// delete that ended it, as the watch of rootPrefix saw them.
type life struct {
	Key    string
	Create int64
	// Delete is the revision that deleted the key; 0 when it was still
	// there at the end of the watch.
	Delete int64
	Lease  int64
	// Puts are the key's puts in revision order, its creation first.
	Puts []watchEvent
}

func (l *life) String() string {
	end := "never deleted"
	if l.Delete != 0 {
		end = fmt.Sprintf("deleted at %d", l.Delete)
	}
	return fmt.Sprintf("%s (created at %d, lease %x, %s)", l.Key, l.Create, l.Lease, end)
}

// exists reports whether the key lived at revision rev.
func (l *life) exists(rev int64) bool {
	return l.Create <= rev && (l.Delete == 0 || rev < l.Delete)
}

// end is the revision the key's life ended at, +∞ if it never did.
func (l *life) end() int64 {
	if l.Delete == 0 {
		return math.MaxInt64
	}
	return l.Delete
}

// putAt is the key's put in force at revision rev: its last at or
// before rev.
func (l *life) putAt(rev int64) (watchEvent, bool) {
	var last watchEvent
	found := false
	for _, p := range l.Puts {
		if p.Rev > rev {
			break
		}
		last, found = p, true
	}
	return last, found
}

// lives is every life of the keys under one prefix, by key, each key's
// in revision order.
type lives map[string][]*life

// keyLives rebuilds the lives of the keys under prefix from the watch
// of rootPrefix. The run starts on a fresh cluster, so none of them
// existed before the watch began.
func keyLives(idx eventIndex, prefix string) lives {
	revs := make([]int64, 0, len(idx))
	for rev := range idx {
		revs = append(revs, rev)
	}
	slices.Sort(revs)
	ls := make(lives)
	for _, rev := range revs {
		for _, e := range idx[rev] {
			if !strings.HasPrefix(e.Key, prefix) {
				continue
			}
			var cur *life
			if n := len(ls[e.Key]); n > 0 && ls[e.Key][n-1].Delete == 0 {
				cur = ls[e.Key][n-1]
			}
			switch {
			case e.Put && cur == nil:
				ls[e.Key] = append(ls[e.Key], &life{Key: e.Key, Create: e.Rev, Lease: e.Lease, Puts: []watchEvent{e}})
			case e.Put:
				cur.Puts = append(cur.Puts, e)
			case cur != nil:
				cur.Delete = e.Rev
			}
		}
	}
	return ls
}

// of is the life of key created at create, or nil.
func (ls lives) of(key string, create int64) *life {
	for _, l := range ls[key] {
		if l.Create == create {
			return l
		}
	}
	return nil
}

// at is the life of key at revision rev, or nil if it did not exist
// then.
func (ls lives) at(key string, rev int64) *life {
	for _, l := range ls[key] {
		if l.exists(rev) {
			return l
		}
	}
	return nil
}

// owner is the key that held the lock or led the election at revision
// rev: of the keys that existed then, the one created first. Nil when
// none did.
func (ls lives) owner(rev int64) *life {
	var o *life
	for _, kl := range ls {
		for _, l := range kl {
			if l.exists(rev) && (o == nil || l.Create < o.Create) {
				o = l
			}
		}
	}
	return o
}

// tenure is one time a client believed it held a lock or led an
// election, over the revisions [from, to): from one the server vouched
// it held at to the end of its key's life. While the key exists its
// lease is alive, so two tenures that overlap are two clients that
// believed they held with leases both alive.
type tenure struct {
	who      string // the client, for a violation
	life     *life
	from, to int64
}

// overlaps reports every tenure that begins before an earlier one of
// another key's life has ended. Tenures of one life are one holding: a
// client that locks or campaigns again with the same lease while its
// key still exists (its unlock or resign timed out, say) takes its own
// key over and holds on.
func overlaps(ts []tenure, what string) []string {
	ts = slices.Clone(ts)
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].from < ts[j].from })
	var violations []string
	// Sorted by start, a tenure overlaps an earlier one exactly when it
	// starts before the latest end so far.
	for i, last := 1, 0; i < len(ts); i++ {
		a, b := ts[last], ts[i]
		if b.from < a.to && a.life != b.life {
			violations = append(violations, fmt.Sprintf("%s: %s from revision %d to %d, and %s from %d",
				what, a.who, a.from, a.to, b.who, b.from))
		}
		if b.to > a.to {
			last = i
		}
	}
	return violations
}

// keyOf is the key etcd's concurrency package (and so Lock and
// Campaign) gives a lease under prefix.
func keyOf(prefix string, lease clientv3.LeaseID) string {
	return fmt.Sprintf("%s%x", prefix, int64(lease))
}

// keptLease is a lease that clientv3 keeps alive until it is closed or
// lost, as a concurrency.Session keeps its own: the Lock and Campaign
// RPCs take a lease and leave keeping it alive to the caller.
type keptLease struct {
	id     clientv3.LeaseID
	cli    *clientv3.Client
	cancel context.CancelFunc
	done   chan struct{} // closed when the keep-alives stopped
}

// grantKept grants a lease of ttl seconds and keeps it alive.
func grantKept(ctx context.Context, cli *clientv3.Client, ttl int64) (*keptLease, error) {
	gctx, cancel := context.WithTimeout(ctx, opTimeout)
	g, err := cli.Grant(gctx, ttl)
	cancel()
	if err != nil {
		return nil, err
	}
	kctx, kcancel := context.WithCancel(context.Background())
	ch, err := cli.KeepAlive(kctx, g.ID)
	if err != nil {
		kcancel()
		return nil, err
	}
	l := &keptLease{id: g.ID, cli: cli, cancel: kcancel, done: make(chan struct{})}
	go func() {
		// The channel closes when the lease expires as the client sees
		// it (no renewal for a TTL), or when the lease is closed.
		for range ch {
		}
		close(l.done)
	}()
	return l, nil
}

// lost reports whether the keep-alives stopped: the lease expired, or
// may have.
func (l *keptLease) lost() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// close stops the keep-alives and revokes the lease, which deletes any
// key still attached to it; a revoke that fails leaves the lease to run
// out.
func (l *keptLease) close() {
	l.cancel()
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, _ = l.cli.Revoke(ctx, l.id)
}

// runHolder runs once in a loop until ctx ends, each time on a lease of
// ttl seconds kept alive, taking a new one when the last is lost, and
// revoking the last at the end.
func runHolder(ctx context.Context, cli *clientv3.Client, ttl int64, once func(context.Context, clientv3.LeaseID)) {
	var l *keptLease
	defer func() {
		if l != nil {
			l.close()
		}
	}()
	for ctx.Err() == nil {
		if l != nil && l.lost() {
			l.close()
			l = nil
		}
		if l == nil {
			var err error
			if l, err = grantKept(ctx, cli, ttl); err != nil {
				l = nil
				sleepCtx(ctx, 200*time.Millisecond)
				continue
			}
		}
		once(ctx, l.id)
	}
}
