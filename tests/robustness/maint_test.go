package robustness

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maintainer does, during the load, what operators and controllers do
// beside it: compacts, saves snapshots, and opens watches from past
// revisions (some of them compacted) of the model's keys.
type maintainer struct {
	cli   *clientv3.Client
	h     *history
	start int64 // the first revision of the run
	// floor is the lowest revision a long-lived watcher may still have
	// to resume from; compactions stay below it.
	floor func() int64

	// compactedTo is the highest revision a compaction was asked for,
	// answered or not.
	compactedTo atomic.Int64
	compactions atomic.Int64 // acknowledged
	snapshots   atomic.Int64 // read to the end
	snapBytes   atomic.Int64
	snapErrs    atomic.Int64

	mu         sync.Mutex
	historical []*watcher
}

// Intervals of the maintainer's work.
const (
	compactEvery    = 1500 * time.Millisecond
	snapshotEvery   = 3 * time.Second
	historicalEvery = 700 * time.Millisecond
	// historicalFor is how long a watch from a past revision runs.
	historicalFor = time.Second
	// compactLag keeps compactions a little behind what the long-lived
	// watchers have.
	compactLag = 10
)

func (m *maintainer) run(ctx context.Context, watchCli *clientv3.Client) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { m.every(ctx, compactEvery, m.compact) })
	wg.Go(func() { m.every(ctx, snapshotEvery, m.snapshot) })
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	m.every(ctx, historicalEvery, func(ctx context.Context) {
		// A watch from anywhere between the run's start and the present:
		// some from compacted revisions, which must be refused as such.
		cur := m.floor()
		if cur <= m.start {
			return
		}
		from := m.start + rng.Int64N(cur-m.start+1)
		w := newWatcher(fmt.Sprintf("historical#%d@%d", len(m.historical), from), keyPrefix, true, from, m.h.now)
		w.once = true
		m.mu.Lock()
		m.historical = append(m.historical, w)
		m.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, historicalFor)
		wg.Go(func() { defer cancel(); w.run(wctx, watchCli) })
	})
}

func (m *maintainer) every(ctx context.Context, d time.Duration, f func(context.Context)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
			f(ctx)
		}
	}
}

func (m *maintainer) compact(ctx context.Context) {
	rev := m.floor() - compactLag
	if rev <= m.compactedTo.Load() || rev <= 1 {
		return
	}
	m.compactedTo.Store(rev) // before the request: it may take effect without an answer
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := m.cli.Compact(cctx, rev); err == nil {
		m.compactions.Add(1)
	}
}

func (m *maintainer) snapshot(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := m.cli.Snapshot(sctx)
	if err != nil {
		m.snapErrs.Add(1)
		return
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil || n == 0 {
		m.snapErrs.Add(1)
		return
	}
	m.snapshots.Add(1)
	m.snapBytes.Add(n)
}

func (m *maintainer) logs() []watchLog {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]watchLog, len(m.historical))
	for i, w := range m.historical {
		out[i] = w.log()
	}
	return out
}
