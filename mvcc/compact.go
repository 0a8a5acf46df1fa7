package mvcc

import (
	"bytes"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Compaction happens in two steps. Logically, at apply time: Compact
// records the new compaction revision in the entry's batch, and from then
// on reads and watches below it fail with ErrCompacted. Physically, in the
// background: the compactor walks the revision log up to that revision and
// deletes every version that no read at or above it can see (a version
// superseded by a newer one at or below the compaction revision, or a
// tombstone older than it). The engine's own compactions then reclaim the
// space online; there is no defragment step.
//
// The compactor deletes in small batches so no write waits behind it; it
// only ever deletes versions that reads at allowed revisions skip, so it
// needs no coordination with readers or with the apply loop. Its progress
// is not replicated or deterministic and does not need to be: hashes
// (HashKV) ignore versions it may or may not have removed yet. After a
// restart it resumes from the revision log, which still holds whatever it
// had not finished.

// Compact sets the compaction revision to rev as part of the transaction.
// It returns a channel closed once the space is physically reclaimed.
func (t *TxnWrite) Compact(rev int64) (<-chan struct{}, error) {
	if rev <= t.s.compactRev.Load() {
		return nil, ErrCompacted
	}
	if rev > t.Rev() {
		return nil, ErrFutureRev
	}
	if err := putMetaInt(t.b, metaCompact, rev); err != nil {
		return nil, err
	}
	t.compact = rev
	return t.s.compactor.waitFor(rev), nil
}

// CompactionObserver is told how the physical compaction goes, for
// metrics and logs. Its methods run on the compactor's goroutine and must
// not block.
type CompactionObserver interface {
	// Batch is one engine batch of the walk: how long it took and how
	// many revision-log entries it handled.
	Batch(d time.Duration, entries int)
	// Done is a finished compaction at rev and how long it took.
	Done(rev int64, d time.Duration)
}

// SetCompactionObserver sets the observer of physical compactions (nil
// for none). It may be called while the store runs.
func (s *Store) SetCompactionObserver(o CompactionObserver) {
	if o == nil {
		s.compactor.obs.Store(nil)
		return
	}
	s.compactor.obs.Store(&o)
}

type compactor struct {
	obs     atomic.Pointer[CompactionObserver]
	s       *Store
	mu      sync.Mutex
	target  int64
	done    int64
	waiters map[int64][]chan struct{}
	kick    chan struct{}
	quit    chan struct{}
	wg      sync.WaitGroup
	// batchSize bounds the revisions handled per engine batch.
	batchSize int
	// pause between batches, so compaction yields to writes.
	pause time.Duration
}

func newCompactor(s *Store) *compactor {
	c := &compactor{
		s: s, waiters: map[int64][]chan struct{}{},
		kick: make(chan struct{}, 1), quit: make(chan struct{}),
		batchSize: 1000, pause: time.Millisecond,
	}
	done, err := s.metaInt(metaCompactDone)
	if err != nil {
		s.lg.Error("mvcc: read compaction progress", "err", err)
	}
	c.done = done
	c.target = s.compactRev.Load()
	c.wg.Add(1)
	go c.run()
	if c.target > c.done {
		c.trigger()
	}
	return c
}

func (c *compactor) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// waitFor returns a channel closed when compaction up to rev is done.
func (c *compactor) waitFor(rev int64) <-chan struct{} {
	ch := make(chan struct{})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done >= rev {
		close(ch)
		return ch
	}
	c.waiters[rev] = append(c.waiters[rev], ch)
	return ch
}

// schedule is called after the compaction revision is committed.
func (c *compactor) schedule(rev int64) {
	c.mu.Lock()
	if rev > c.target {
		c.target = rev
	}
	c.mu.Unlock()
	c.trigger()
}

func (c *compactor) stop() {
	close(c.quit)
	c.wg.Wait()
}

func (c *compactor) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.quit:
			return
		case <-c.kick:
		}
		c.mu.Lock()
		target := c.target
		c.mu.Unlock()
		if target <= c.done {
			continue
		}
		start := time.Now()
		if err := c.compact(target); err != nil {
			c.s.lg.Error("mvcc: compaction failed", "rev", target, "err", err)
			continue
		}
		c.mu.Lock()
		c.done = target
		for rev, chs := range c.waiters {
			if rev <= target {
				for _, ch := range chs {
					close(ch)
				}
				delete(c.waiters, rev)
			}
		}
		c.mu.Unlock()
		// Flush the tombstones into the engine's tables, so its
		// estimate of the space they free (what the store reports as
		// no longer in use) counts them now, not whenever the memtable
		// next fills.
		if err := c.s.eng.Flush(); err != nil {
			c.s.lg.Warn("mvcc: flush after compaction failed", "rev", target, "err", err)
		}
		took := time.Since(start)
		if o := c.obs.Load(); o != nil {
			(*o).Done(target, took)
		}
		c.s.lg.Info("mvcc: finished compaction", "rev", target, "took", took)
	}
}

// compact deletes the versions hidden by compaction at rev. It walks the
// revision log up to and including rev in batches, resuming each batch
// where the last stopped. Entries below rev are removed with the versions
// they hide; entries at rev stay, because a watch may still replay from
// rev, but their keys' older history goes too, so a key deleted or
// overwritten exactly at rev gives its space back now.
func (c *compactor) compact(rev int64) error {
	upper := revKey(revision{main: rev + 1})
	cursor := []byte{prefixRev}
	for {
		select {
		case <-c.quit:
			return errStopped
		default:
		}
		start := time.Now()
		next, n, done, err := c.compactBatch(cursor, upper, rev)
		if err != nil {
			return err
		}
		if o := c.obs.Load(); o != nil {
			(*o).Batch(time.Since(start), n)
		}
		if done {
			return nil
		}
		cursor = next
		time.Sleep(c.pause)
	}
}

// compactBatch handles up to batchSize revision-log entries from cursor,
// and returns where the next batch starts and whether the walk is over.
func (c *compactor) compactBatch(cursor, upper []byte, rev int64) (next []byte, n int, done bool, err error) {
	eng := c.s.eng
	it, err := eng.NewIter(cursor, upper)
	if err != nil {
		return nil, 0, false, err
	}
	defer it.Close()
	b := eng.NewWriteBatch()
	defer b.Close()
	// A key is cleaned once per batch: dropIfHidden removes its whole
	// hidden history, and the batch's deletes are not visible to the
	// engine until commit, so a second visit would redo the walk.
	seen := map[string]struct{}{}
	for ok := it.First(); ok && n < c.batchSize; ok = it.Next() {
		r, err := decodeRevKey(it.Key())
		if err != nil {
			return nil, 0, false, err
		}
		if _, dup := seen[string(it.Value())]; !dup {
			user := bytes.Clone(it.Value())
			seen[string(user)] = struct{}{}
			if err := c.dropIfHidden(b, user, rev); err != nil {
				return nil, 0, false, err
			}
		}
		if r.main < rev {
			if err := b.Delete(revKey(r)); err != nil {
				return nil, 0, false, err
			}
		}
		next = append(bytes.Clone(it.Key()), 0)
		n++
	}
	if err := it.Error(); err != nil {
		return nil, 0, false, err
	}
	done = n < c.batchSize
	if done {
		if err := putMetaInt(b, metaCompactDone, rev); err != nil {
			return nil, 0, false, err
		}
	}
	if err := b.Commit(); err != nil {
		return nil, 0, false, err
	}
	return next, n, done, nil
}

// dropIfHidden deletes every version of user that no read at a revision
// >= at can see: all versions older than the newest one at or below at,
// and that newest one too if it is a tombstone older than at. It walks
// the key's whole history below at, not just version r, because versions
// kept by an earlier compaction (the live ones) no longer have a revision
// log entry of their own and would otherwise outlive a later delete.
func (c *compactor) dropIfHidden(b interface{ Delete([]byte) error }, user []byte, at int64) error {
	prefix := keyPrefix(user)
	seek := appendRevInverted(bytes.Clone(prefix), revision{main: at, sub: math.MaxInt64})
	it, err := c.s.eng.NewIter(seek, keyNext(user))
	if err != nil {
		return err
	}
	defer it.Close()
	first := true
	for ok := it.First(); ok; ok = it.Next() {
		if first {
			first = false
			rec, err := decodeValue(it.Value())
			if err != nil {
				return err
			}
			_, newest, err := decodeKey(nil, it.Key())
			if err != nil {
				return err
			}
			if !rec.tombstone || newest.main >= at {
				continue // the version reads at or above at see
			}
		}
		if err := b.Delete(bytes.Clone(it.Key())); err != nil {
			return err
		}
	}
	return it.Error()
}
