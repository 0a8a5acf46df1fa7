package robustness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchEvent is one event as a watcher received it.
type watchEvent struct {
	Key   int
	Rev   int64
	Put   bool // else a delete
	Value string
}

// watcher follows one key from a revision on, keeping every response's
// events as they came. When its stream ends (the member lost its
// leader, say) it watches again from the revision after the last event
// it has, as any careful etcd client would.
type watcher struct {
	key  int
	from int64

	last atomic.Int64 // revision of the newest event received

	mu        sync.Mutex
	responses [][]watchEvent // each non-empty response, in order
	errs      []error        // what ended each stream
}

func newWatcher(key int, from int64) *watcher {
	w := &watcher{key: key, from: from}
	w.last.Store(from - 1)
	return w
}

// run watches until ctx ends.
func (w *watcher) run(ctx context.Context, cli *clientv3.Client) {
	next := w.from
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range cli.Watch(wctx, keyName(w.key), clientv3.WithRev(next)) {
			if err := resp.Err(); err != nil {
				w.mu.Lock()
				w.errs = append(w.errs, err)
				w.mu.Unlock()
				break
			}
			if len(resp.Events) == 0 {
				continue
			}
			evs := make([]watchEvent, len(resp.Events))
			for i, e := range resp.Events {
				evs[i] = watchEvent{Key: keyIndex(string(e.Kv.Key)), Rev: e.Kv.ModRevision, Put: e.Type == mvccpb.PUT, Value: string(e.Kv.Value)}
			}
			w.mu.Lock()
			w.responses = append(w.responses, evs)
			w.mu.Unlock()
			next = evs[len(evs)-1].Rev + 1
			w.last.Store(next - 1)
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitFor waits until the watcher has an event at rev or later.
func (w *watcher) waitFor(ctx context.Context, rev int64) error {
	for w.last.Load() < rev {
		select {
		case <-ctx.Done():
			return fmt.Errorf("watcher of k%d: reached revision %d, not %d: %w", w.key, w.last.Load(), rev, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// log returns what the watcher received.
func (w *watcher) log() watchLog {
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchLog{Key: w.key, Responses: slices.Clone(w.responses), Errs: slices.Clone(w.errs)}
}

// watchLog is one watcher's responses.
type watchLog struct {
	Key       int
	Responses [][]watchEvent
	Errs      []error
}

func keyIndex(key string) int {
	for i := range keyCount {
		if keyName(i) == key {
			return i
		}
	}
	return -1
}

// checkWatchStream checks one watcher's stream by itself: events of its
// key only, revisions never going back, no event twice, and the events
// of one revision in one response. A compaction is a violation too: the
// cluster never compacts, so the stream cannot have been cut short
// legitimately.
func checkWatchStream(l watchLog) []string {
	var violations []string
	prev := int64(0)
	for ri, resp := range l.Responses {
		for _, e := range resp {
			if e.Key != l.Key {
				violations = append(violations, fmt.Sprintf("watch k%d: response %d holds an event of k%d at revision %d", l.Key, ri, e.Key, e.Rev))
			}
			switch {
			case e.Rev < prev:
				violations = append(violations, fmt.Sprintf("watch k%d: response %d: revision %d after %d", l.Key, ri, e.Rev, prev))
			case e.Rev == prev:
				// One key changes at most once per revision: a second event
				// is a duplicate, whether or not a response boundary
				// splits the two.
				violations = append(violations, fmt.Sprintf("watch k%d: response %d: revision %d delivered twice", l.Key, ri, e.Rev))
			}
			prev = max(prev, e.Rev)
		}
	}
	for _, err := range l.Errs {
		if errors.Is(err, rpctypes.ErrCompacted) {
			violations = append(violations, fmt.Sprintf("watch k%d: %v, though nothing compacts", l.Key, err))
		}
	}
	return violations
}

// checkWatchHistory checks the watchers' streams together against the
// clients' records and the final read. Every write in the workload
// changes exactly one key, so the streams together must hold each
// revision from init.Rev+1 to final.Rev exactly once: a missing one is
// a gap, a repeated one a duplicate. Each acknowledged write must be
// there at the revision it was acknowledged with, which is what makes it
// durable; each put value is unique, so one seen twice was applied twice
// and one no client sent is invented. Replaying the events over init
// must give the final read.
func checkWatchHistory(init, final kvState, logs []watchLog, recs []record) []string {
	var violations []string
	byRev := make(map[int64]watchEvent)
	valueRev := make(map[string]int64)
	for _, l := range logs {
		for _, resp := range l.Responses {
			for _, e := range resp {
				if e.Rev <= init.Rev || e.Rev > final.Rev {
					violations = append(violations, fmt.Sprintf("watch k%d: event at revision %d, outside the load's %d..%d", e.Key, e.Rev, init.Rev+1, final.Rev))
					continue
				}
				if prev, ok := byRev[e.Rev]; ok && prev != e {
					violations = append(violations, fmt.Sprintf("revision %d changed two keys: %+v and %+v", e.Rev, prev, e))
				}
				byRev[e.Rev] = e
				if e.Put {
					if r, ok := valueRev[e.Value]; ok && r != e.Rev {
						violations = append(violations, fmt.Sprintf("value %q written twice: at revisions %d and %d", e.Value, r, e.Rev))
					}
					valueRev[e.Value] = e.Rev
				}
			}
		}
	}
	for rev := init.Rev + 1; rev <= final.Rev; rev++ {
		if _, ok := byRev[rev]; !ok {
			violations = append(violations, fmt.Sprintf("no watcher saw revision %d (of %d..%d)", rev, init.Rev+1, final.Rev))
		}
	}

	sent := make(map[string]bool)
	for _, r := range recs {
		if r.Input.Kind == opPut || r.Input.Kind == opCAS {
			sent[r.Input.Value] = true
		}
		if r.Output.Unknown {
			continue
		}
		var want watchEvent
		switch {
		case r.Input.Kind == opPut, r.Input.Kind == opCAS && r.Output.Succeeded:
			want = watchEvent{Key: r.Input.Key, Rev: r.Output.Rev, Put: true, Value: r.Input.Value}
		case r.Input.Kind == opDelete && r.Output.Deleted == 1:
			want = watchEvent{Key: r.Input.Key, Rev: r.Output.Rev}
		default:
			continue
		}
		if got, ok := byRev[want.Rev]; !ok || got != want {
			violations = append(violations, fmt.Sprintf("acknowledged write %s (client %d) missing from the watch history: revision %d holds %+v",
				describeOp(r.Input, r.Output), r.Client, want.Rev, got))
		}
	}
	for v, rev := range valueRev {
		if !sent[v] {
			violations = append(violations, fmt.Sprintf("revision %d put value %q, which no client wrote", rev, v))
		}
	}

	replayed := init
	for rev := init.Rev + 1; rev <= final.Rev; rev++ {
		e, ok := byRev[rev]
		if !ok {
			continue
		}
		if e.Put {
			replayed.Keys[e.Key] = keyState{Value: e.Value, ModRev: e.Rev}
		} else {
			replayed.Keys[e.Key] = keyState{}
		}
	}
	replayed.Rev = final.Rev
	if replayed != final {
		violations = append(violations, fmt.Sprintf("replaying the watch events gives %+v; the final read gave %+v", replayed, final))
	}
	return violations
}
