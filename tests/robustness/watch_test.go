package robustness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchEvent is one event as a watcher received it.
type watchEvent struct {
	Key   string
	Rev   int64
	Put   bool // else a delete
	Value string
	Lease int64
	// At is when the watcher received it, on the history's clock: the
	// change was committed no later.
	At int64
}

// same reports whether two watchers saw the same change.
func (e watchEvent) same(o watchEvent) bool {
	e.At, o.At = 0, 0
	return e == o
}

func (e watchEvent) String() string {
	if e.Put {
		return fmt.Sprintf("put %s=%q@%d", e.Key, e.Value, e.Rev)
	}
	return fmt.Sprintf("delete %s@%d", e.Key, e.Rev)
}

// watchResponse is one response a watcher received: events, or a
// progress notification (Progress is its revision).
type watchResponse struct {
	Events   []watchEvent
	Progress int64
}

// watchStream is one Watch call of a watcher: where it started and
// what ended it.
type watchStream struct {
	From int64
	// Err ended the stream ("" when the watcher stopped it).
	Err string
	// Compacted is the compact revision of an ErrCompacted refusal.
	Compacted int64
	// Responses is how many of the watcher's responses came before this
	// stream began.
	Responses int
}

// watcher follows a key or a prefix from a revision on, keeping every
// response as it came. When its stream ends (the member lost its
// leader, say) it watches again from the revision after the last it
// knows it has seen, as any careful etcd client would. With progress,
// it asks for progress notifications every progressEvery.
type watcher struct {
	name     string
	key      string
	prefix   bool
	from     int64
	progress bool
	// once makes a historical watcher: one stream, stopped by its
	// context or a refusal, never resumed.
	once  bool
	clock func() int64

	// resume is the revision the next stream would start from: every
	// revision before it has been delivered.
	resume atomic.Int64

	mu        sync.Mutex
	responses []watchResponse
	streams   []watchStream
}

const progressEvery = 300 * time.Millisecond

func newWatcher(name, key string, prefix bool, from int64, clock func() int64) *watcher {
	w := &watcher{name: name, key: key, prefix: prefix, from: from, clock: clock}
	w.resume.Store(from)
	return w
}

// run watches until ctx ends.
func (w *watcher) run(ctx context.Context, cli *clientv3.Client) {
	for ctx.Err() == nil {
		if !w.stream(ctx, cli) || w.once {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stream runs one Watch call; false means the watcher must stop (its
// start revision was compacted).
func (w *watcher) stream(ctx context.Context, cli *clientv3.Client) bool {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	from := w.resume.Load()
	w.mu.Lock()
	w.streams = append(w.streams, watchStream{From: from, Responses: len(w.responses)})
	si := len(w.streams) - 1
	w.mu.Unlock()
	end := func(err error, compacted int64) {
		w.mu.Lock()
		w.streams[si].Err, w.streams[si].Compacted = err.Error(), compacted
		w.mu.Unlock()
	}

	opts := []clientv3.OpOption{clientv3.WithRev(from)}
	if w.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if w.progress {
		opts = append(opts, clientv3.WithProgressNotify())
		go func() {
			for {
				select {
				case <-wctx.Done():
					return
				case <-time.After(progressEvery):
					_ = cli.RequestProgress(wctx)
				}
			}
		}()
	}
	for resp := range cli.Watch(wctx, w.key, opts...) {
		if err := resp.Err(); err != nil {
			end(err, resp.CompactRevision)
			return !errors.Is(err, rpctypes.ErrCompacted)
		}
		if resp.IsProgressNotify() {
			w.mu.Lock()
			w.responses = append(w.responses, watchResponse{Progress: resp.Header.Revision})
			w.mu.Unlock()
			if r := resp.Header.Revision + 1; r > w.resume.Load() {
				w.resume.Store(r)
			}
			continue
		}
		if len(resp.Events) == 0 {
			continue
		}
		at := w.clock()
		evs := make([]watchEvent, len(resp.Events))
		for i, e := range resp.Events {
			evs[i] = watchEvent{Key: string(e.Kv.Key), Rev: e.Kv.ModRevision, Put: e.Type == mvccpb.PUT,
				Value: string(e.Kv.Value), Lease: e.Kv.Lease, At: at}
		}
		w.mu.Lock()
		w.responses = append(w.responses, watchResponse{Events: evs})
		w.mu.Unlock()
		if r := evs[len(evs)-1].Rev + 1; r > w.resume.Load() {
			w.resume.Store(r)
		}
	}
	if ctx.Err() == nil {
		end(errors.New("stream closed"), 0)
	}
	return true
}

// waitFor waits until the watcher has delivered every revision up to
// rev.
func (w *watcher) waitFor(ctx context.Context, rev int64) error {
	for w.resume.Load() <= rev {
		select {
		case <-ctx.Done():
			return fmt.Errorf("watch %s: delivered revisions up to %d, not %d: %w", w.name, w.resume.Load()-1, rev, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// log returns what the watcher received.
func (w *watcher) log() watchLog {
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchLog{Name: w.name, Key: w.key, Prefix: w.prefix, From: w.from,
		Responses: slices.Clone(w.responses), Streams: slices.Clone(w.streams)}
}

// watchLog is one watcher's responses.
type watchLog struct {
	Name      string
	Key       string
	Prefix    bool
	From      int64
	Responses []watchResponse
	Streams   []watchStream
}

// matches reports whether the watch covers key.
func (l watchLog) matches(key string) bool {
	if l.Prefix {
		return strings.HasPrefix(key, l.Key)
	}
	return key == l.Key
}

// covered is the last revision the watcher is known to have been given
// everything of: its last event's or progress notification's.
func (l watchLog) covered() int64 {
	c := l.From - 1
	for _, r := range l.Responses {
		c = max(c, r.Progress)
		for _, e := range r.Events {
			c = max(c, e.Rev)
		}
	}
	return c
}

// keyIndex is the model's index of key, or -1 for a key outside the
// model.
func keyIndex(key string) int {
	for i := range keyCount {
		if keyName(i) == key {
			return i
		}
	}
	return -1
}

// checkWatchStream checks one watcher's responses by themselves:
// events of the watched keys only; revisions never going back; no
// event twice; all events of one revision in one response; no event at
// or below a revision a progress notification already vouched for; and
// a refusal as compacted only of a start revision below compactedTo,
// the highest revision the run asked to compact.
func checkWatchStream(l watchLog, compactedTo int64) []string {
	var violations []string
	prev, prevResp := int64(0), -1
	seen := make(map[string]bool) // keys of revision prev
	progress := int64(0)
	for ri, resp := range l.Responses {
		if resp.Progress != 0 {
			progress = max(progress, resp.Progress)
			continue
		}
		for _, e := range resp.Events {
			if !l.matches(e.Key) {
				violations = append(violations, fmt.Sprintf("watch %s: response %d holds %v, outside the watched keys", l.Name, ri, e))
			}
			if e.Rev <= progress {
				violations = append(violations, fmt.Sprintf("watch %s: response %d: %v after a progress notification at revision %d", l.Name, ri, e, progress))
			}
			switch {
			case e.Rev < prev:
				violations = append(violations, fmt.Sprintf("watch %s: response %d: %v after revision %d", l.Name, ri, e, prev))
			case e.Rev == prev && ri != prevResp:
				violations = append(violations, fmt.Sprintf("watch %s: response %d: %v, a revision an earlier response already delivered (duplicated, or split across responses)", l.Name, ri, e))
			case e.Rev == prev && seen[e.Key]:
				violations = append(violations, fmt.Sprintf("watch %s: response %d: %v delivered twice", l.Name, ri, e))
			case e.Rev > prev:
				clear(seen)
			}
			if e.Rev >= prev {
				prev, prevResp = e.Rev, ri
				seen[e.Key] = true
			}
		}
	}
	for _, s := range l.Streams {
		if s.Err == "" || !strings.Contains(s.Err, rpctypes.ErrCompacted.Error()) {
			continue
		}
		if s.From >= compactedTo || s.Compacted > compactedTo {
			violations = append(violations, fmt.Sprintf("watch %s: a watch from revision %d was refused as compacted (compact revision %d), but the run compacted at most to %d",
				l.Name, s.From, s.Compacted, compactedTo))
		}
	}
	return violations
}

// eventIndex is every event of the watch of rootPrefix, by revision.
type eventIndex map[int64][]watchEvent

func indexEvents(l watchLog) eventIndex {
	idx := make(eventIndex)
	for _, resp := range l.Responses {
		for _, e := range resp.Events {
			if !slices.ContainsFunc(idx[e.Rev], e.same) {
				idx[e.Rev] = append(idx[e.Rev], e)
			}
		}
	}
	return idx
}

// foreign is the set of revisions that changed no key of the model.
func (idx eventIndex) foreign() foreignRevs {
	f := make(foreignRevs)
	for rev, evs := range idx {
		if !slices.ContainsFunc(evs, func(e watchEvent) bool { return keyIndex(e.Key) >= 0 }) {
			f[rev] = true
		}
	}
	return f
}

// checkWatchAgrees checks one watcher against the watch of rootPrefix:
// over the revisions it covered, from its start, it got exactly the
// events of its keys that the other saw. That is what makes a watch
// resumable from any revision not compacted.
func checkWatchAgrees(l watchLog, idx eventIndex) []string {
	var violations []string
	got := make(map[int64][]watchEvent)
	for _, resp := range l.Responses {
		for _, e := range resp.Events {
			got[e.Rev] = append(got[e.Rev], e)
		}
	}
	to := l.covered()
	for rev := l.From; rev <= to; rev++ {
		var want []watchEvent
		for _, e := range idx[rev] {
			if l.matches(e.Key) {
				want = append(want, e)
			}
		}
		for _, e := range want {
			if !slices.ContainsFunc(got[rev], e.same) {
				violations = append(violations, fmt.Sprintf("watch %s (from %d, covered to %d): missing %v, which the watch of %s saw", l.Name, l.From, to, e, rootPrefix))
			}
		}
		for _, e := range got[rev] {
			if !slices.ContainsFunc(want, e.same) {
				violations = append(violations, fmt.Sprintf("watch %s: %v, which the watch of %s did not see", l.Name, e, rootPrefix))
			}
		}
	}
	return violations
}

// checkWatchHistory checks the watch of rootPrefix against the
// clients' records and the final read. Every revision of the run
// changed a key under rootPrefix, so the watch must hold each revision
// from init.Rev+1 to final.Rev: a missing one is a gap. A revision
// changes keys of the model or foreign keys, never both. Each
// acknowledged write must be there at the revision it was acknowledged
// with, which is what makes it durable; each put value is unique, so
// one seen at two revisions was applied twice and one no client sent is
// invented. Replaying the events of the model's keys over init must
// give the final read.
func checkWatchHistory(init, final kvState, idx eventIndex, recs []record, sent map[string]bool) []string {
	var violations []string
	valueRev := make(map[string]int64)
	for rev := init.Rev + 1; rev <= final.Rev; rev++ {
		evs, ok := idx[rev]
		if !ok {
			violations = append(violations, fmt.Sprintf("the watch of %s never delivered revision %d (of %d..%d)", rootPrefix, rev, init.Rev+1, final.Rev))
			continue
		}
		model := 0
		for _, e := range evs {
			if keyIndex(e.Key) >= 0 {
				model++
			}
			if e.Put && !strings.HasPrefix(e.Key, lockPrefix) {
				if r, ok := valueRev[e.Value]; ok && r != e.Rev {
					violations = append(violations, fmt.Sprintf("value %q written twice: at revisions %d and %d", e.Value, r, e.Rev))
				}
				valueRev[e.Value] = e.Rev
				if !sent[e.Value] {
					violations = append(violations, fmt.Sprintf("%v: a value no client wrote", e))
				}
			}
		}
		if model != 0 && model != len(evs) {
			violations = append(violations, fmt.Sprintf("revision %d changed keys of the model and others at once: %v", rev, evs))
		}
	}
	for rev, evs := range idx {
		if rev <= init.Rev || rev > final.Rev {
			violations = append(violations, fmt.Sprintf("the watch of %s delivered %v, outside the run's revisions %d..%d", rootPrefix, evs, init.Rev+1, final.Rev))
		}
	}

	for _, r := range recs {
		if r.Output.Unknown {
			continue
		}
		var want []watchEvent
		switch {
		case r.Input.Kind == opPut, r.Input.Kind == opCAS && r.Output.Succeeded:
			want = []watchEvent{{Key: keyName(r.Input.Key), Rev: r.Output.Rev, Put: true, Value: r.Input.Value}}
		case r.Input.Kind == opDelete && r.Output.Deleted == 1:
			want = []watchEvent{{Key: keyName(r.Input.Key), Rev: r.Output.Rev}}
		case r.Input.Kind == opDeleteRange && r.Output.Deleted > 0:
			got := idx[r.Output.Rev]
			deletes := 0
			for _, e := range got {
				if !e.Put && keyIndex(e.Key) >= 0 {
					deletes++
				}
			}
			if deletes != len(got) || int64(deletes) != r.Output.Deleted {
				violations = append(violations, fmt.Sprintf("acknowledged %s (client %d): revision %d holds %v",
					describeOp(r.Input, r.Output), r.Client, r.Output.Rev, got))
			}
			continue
		default:
			continue
		}
		got := idx[r.Output.Rev]
		if len(got) != 1 || !got[0].same(watchEvent{Key: want[0].Key, Rev: want[0].Rev, Put: want[0].Put, Value: want[0].Value, Lease: got[0].Lease}) || got[0].Lease != 0 {
			violations = append(violations, fmt.Sprintf("acknowledged write %s (client %d) missing from the watch history: revision %d holds %v",
				describeOp(r.Input, r.Output), r.Client, r.Output.Rev, got))
		}
	}

	replayed := init
	for rev := init.Rev + 1; rev <= final.Rev; rev++ {
		for _, e := range idx[rev] {
			k := keyIndex(e.Key)
			if k < 0 {
				continue
			}
			if e.Put {
				replayed.Keys[k] = keyState{Value: e.Value, ModRev: e.Rev}
			} else {
				replayed.Keys[k] = keyState{}
			}
		}
	}
	replayed.Rev = final.Rev
	if replayed != final {
		violations = append(violations, fmt.Sprintf("replaying the watch events gives %+v; the final read gave %+v", replayed, final))
	}
	return violations
}
