package mvcc

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/internal/failpoint"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Watch fan-out.
//
// Every watcher is in one of three states:
//
//   - synced: it has seen every revision up to the store's current one,
//     and receives new events as the apply loop commits them;
//   - a victim: it holds a response it could not put on its stream's
//     channel (pending), and receives nothing through the channel until
//     the syncer has delivered it. While the pending response is small
//     (maxPendingEvents, maxPendingBytes) a victim stays synced and the
//     events of later revisions are appended to it; past those bounds it
//     stops being synced and catches up as unsynced;
//   - unsynced: it is behind, and the syncer replays its events from the
//     revision log in the engine.
//
// A write never waits for a watcher: events go to a stream's bounded
// channel with a non-blocking send. When a response does not fit, the
// stream is overloaded: its client (or the network) is slower than the
// writes. Each response costs a gRPC message on both sides whatever it
// holds, so from then on every watcher of the stream gathers its events
// into one held response, and the syncer delivers the held responses once
// per batchInterval. The stream leaves that mode when an interval passes
// with nothing held back, or when for calmIntervals intervals in a row its
// consumer was waiting for more (C empty) and never had to wait for its
// client (Stalled). A client that keeps up is soon served at once again;
// one that does not gets fewer, fuller responses instead of falling
// further behind. A progress request sends the held responses first.
//
// All deliveries happen under one mutex, so each watcher receives its
// events in revision order, each revision's events arrive together, and a
// progress notification never overtakes an event.

// Errors of Watch.
var (
	ErrWatcherDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	ErrEmptyWatcherRange  = errors.New("mvcc: watcher range is empty")
	ErrStreamClosed       = errors.New("mvcc: watch stream closed")
)

// ProgressWatchID is the watch ID of a progress notification that covers
// every watcher of a stream (etcd's clientv3.InvalidWatchID).
const ProgressWatchID = -1

// WatchResponse is one delivery on a WatchStream.
type WatchResponse struct {
	WatchID int64
	Events  []*mvccpb.Event
	// Revision is the revision the response brings the watcher up to.
	Revision int64
	// CompactRevision, when set, means the watcher's start revision was
	// compacted; the watcher has been removed.
	CompactRevision int64
}

// WatchStream groups the watchers of one client stream; they share one
// bounded channel.
type WatchStream struct {
	hub *watchHub
	// C delivers responses. It is never closed.
	C chan WatchResponse

	// starved is set when a response did not fit in C; the consumer's
	// Freed then wakes the syncer.
	starved atomic.Bool
	// stalled is set by the consumer when passing a response on to its
	// client had to wait (Stalled): the client is not keeping up.
	stalled atomic.Bool
	// guarded by hub.mu: overloaded is set from the moment a response did
	// not fit in C until a whole batch interval passes with nothing held
	// back or the client keeps up again. Meanwhile every watcher of the stream gathers its events into
	// one held response, and the syncer sends the held responses at most
	// once per interval (nextRetry); victims counts the watchers holding
	// one.
	overloaded bool
	nextRetry  time.Time
	due        bool
	victims    int
	// drained records that, when the held responses fell due, C was
	// empty and the consumer had not stalled since the last time: its
	// client keeps up. calm counts the intervals in a row that ended so,
	// with every held response delivered; after calmIntervals of them the
	// stream leaves batching mode.
	drained bool
	calm    int

	// guarded by hub.mu
	watchers map[int64]*watcher
	nextID   int64
	closed   bool
}

type watcher struct {
	id       int64
	key, end []byte
	noPut    bool
	noDelete bool
	prevKV   bool
	stream   *WatchStream
	// startRev: a synced watcher ignores revisions below it (a watch that
	// starts in the future).
	startRev int64
	// nextRev is the next revision an unsynced watcher or a victim needs
	// (after its pending response).
	nextRev int64
	synced  bool
	// pending is a victim's undelivered response. While the victim is
	// synced, later revisions' events are appended to it; ownEvents
	// records that pending.Events is the watcher's own copy (the first
	// response shares its slice with the other watchers of the key), and
	// pendingBytes approximates its size.
	pending      *WatchResponse
	ownEvents    bool
	pendingBytes int
}

func (w *watcher) matches(key []byte) bool {
	switch {
	case len(w.end) == 0:
		return bytes.Equal(key, w.key)
	case len(w.end) == 1 && w.end[0] == 0:
		return bytes.Compare(key, w.key) >= 0
	default:
		return bytes.Compare(key, w.key) >= 0 && bytes.Compare(key, w.end) < 0
	}
}

// flags numbers the combinations of the options filter looks at besides
// the key.
func (w *watcher) flags() int {
	f := 0
	if w.noPut {
		f |= 1
	}
	if w.noDelete {
		f |= 2
	}
	if w.prevKV {
		f |= 4
	}
	return f
}

func (w *watcher) filter(evs []*mvccpb.Event) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, ev := range evs {
		if !w.matches(ev.Kv.Key) {
			continue
		}
		if (ev.Type == mvccpb.PUT && w.noPut) || (ev.Type == mvccpb.DELETE && w.noDelete) {
			continue
		}
		if !w.prevKV && ev.PrevKv != nil {
			ev = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
		}
		out = append(out, ev)
	}
	return out
}

type watchHub struct {
	s  *Store
	mu sync.Mutex
	// synced single-key watchers by key, and synced range watchers.
	keyed    map[string]map[*watcher]struct{}
	ranged   map[*watcher]struct{}
	unsynced map[*watcher]struct{}
	victims  map[*watcher]struct{}
	kick     chan struct{}
	quit     chan struct{}
	wg       sync.WaitGroup
	// maxReplay bounds the revision-log entries read per sync pass.
	maxReplay int
	// maxPendingEvents and maxPendingBytes bound what a synced victim
	// gathers in its pending response before it drops to unsynced.
	maxPendingEvents, maxPendingBytes int
	// overloaded holds the streams in batching mode; batchInterval is how
	// long their victims gather between two deliveries.
	overloaded    map[*WatchStream]struct{}
	batchInterval time.Duration
	// streams, watchers and events count open streams, their watchers
	// and the events sent, for metrics.
	streams, watchers int
	events            int64
}

// WatchStats is a snapshot of the watch hub, for metrics.
type WatchStats struct {
	Streams, Watchers int
	// Slow is the number of watchers not caught up: replaying history
	// or holding a response their stream had no room for.
	Slow int
	// Batching is the number of streams in batching mode (their client
	// cannot keep up, so they get fewer, fuller responses).
	Batching int
	// Events is the number of events sent since the store opened.
	Events int64
}

// WatchStats reports the watch hub's counts. It takes the hub's lock
// briefly; call it at scrape time, not per event.
func (s *Store) WatchStats() WatchStats {
	h := s.watch
	h.mu.Lock()
	defer h.mu.Unlock()
	slow := len(h.unsynced)
	for w := range h.victims {
		if !h.isUnsynced(w) {
			slow++
		}
	}
	return WatchStats{Streams: h.streams, Watchers: h.watchers, Slow: slow, Batching: len(h.overloaded), Events: h.events}
}

func (h *watchHub) isUnsynced(w *watcher) bool {
	_, ok := h.unsynced[w]
	return ok
}

// Defaults of the bounds on a victim's gathered response: a thousand
// small events, and far below any gRPC message limit.
const (
	defaultMaxPendingEvents = 1000
	defaultMaxPendingBytes  = 1 << 20
)

// batchInterval is how long the watchers of an overloaded stream gather
// events between two deliveries. Each response costs the server a gRPC
// message and the client a receive, decode and dispatch whatever it
// holds, so a client that cannot keep up gets fewer, fuller responses.
// etcd batches the same way, with retries every 10 ms and catch-up passes
// every 100 ms.
const batchInterval = 50 * time.Millisecond

// calmIntervals is how many batch intervals in a row an overloaded
// stream's consumer must have been waiting, with nothing left held, for
// the stream to leave batching mode.
const calmIntervals = 2

func newWatchHub(s *Store) *watchHub {
	h := &watchHub{
		s: s, keyed: map[string]map[*watcher]struct{}{}, ranged: map[*watcher]struct{}{},
		unsynced: map[*watcher]struct{}{}, victims: map[*watcher]struct{}{}, kick: make(chan struct{}, 1), quit: make(chan struct{}),
		maxReplay: 1000, maxPendingEvents: defaultMaxPendingEvents, maxPendingBytes: defaultMaxPendingBytes,
		overloaded: map[*WatchStream]struct{}{}, batchInterval: batchInterval,
	}
	h.wg.Add(1)
	go h.syncLoop()
	return h
}

func (h *watchHub) stop() {
	close(h.quit)
	h.wg.Wait()
}

func (h *watchHub) trigger() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// NewWatchStream opens a stream whose channel holds up to buf responses.
func (s *Store) NewWatchStream(buf int) *WatchStream {
	s.watch.mu.Lock()
	s.watch.streams++
	s.watch.mu.Unlock()
	return &WatchStream{hub: s.watch, C: make(chan WatchResponse, buf), watchers: map[int64]*watcher{}}
}

// WatchOptions describe one watcher.
type WatchOptions struct {
	// ID is the client's chosen watch ID; 0 asks the stream to choose.
	ID int64
	// Key and End follow etcd's range rule: empty End is one key, "\x00"
	// every key >= Key.
	Key, End []byte
	// StartRev is the first revision to deliver; 0 means the next one.
	StartRev        int64
	NoPut, NoDelete bool
	PrevKV          bool
}

// Watch adds a watcher and returns its ID.
func (ws *WatchStream) Watch(o WatchOptions) (int64, error) {
	if len(o.End) != 0 && !(len(o.End) == 1 && o.End[0] == 0) && bytes.Compare(o.Key, o.End) >= 0 {
		return -1, ErrEmptyWatcherRange
	}
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if ws.closed {
		return -1, ErrStreamClosed
	}
	id := o.ID
	if id == 0 {
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
		ws.nextID++
	} else if ws.watchers[id] != nil {
		return -1, ErrWatcherDuplicateID
	}
	w := &watcher{
		id: id, key: bytes.Clone(o.Key), end: bytes.Clone(o.End),
		noPut: o.NoPut, noDelete: o.NoDelete, prevKV: o.PrevKV, stream: ws,
	}
	ws.watchers[id] = w
	h.watchers++
	cur := h.s.rev.Load()
	if o.StartRev == 0 || o.StartRev > cur {
		w.startRev = max(o.StartRev, cur+1)
		h.addSynced(w)
	} else {
		w.nextRev = o.StartRev
		h.unsynced[w] = struct{}{}
		h.trigger()
	}
	return id, nil
}

// Cancel removes watcher id; it reports whether it existed.
func (ws *WatchStream) Cancel(id int64) bool {
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	w := ws.watchers[id]
	if w == nil {
		return false
	}
	h.remove(w)
	return true
}

// RequestProgress sends a progress notification (watch ID -1) with the
// current revision if every watcher of the stream is synced; otherwise it
// does nothing, as etcd does, because an unsynced watcher's events below
// that revision are still to come.
func (ws *WatchStream) RequestProgress() {
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	// Held responses go first, if they fit: they are each watcher's next
	// undelivered events, so sending them now keeps every order.
	for _, w := range ws.watchers {
		if w.pending != nil && !h.deliverHeld(w) {
			return
		}
	}
	for _, w := range ws.watchers {
		if !w.synced || w.pending != nil {
			return
		}
	}
	ws.trySend(WatchResponse{WatchID: ProgressWatchID, Revision: h.s.rev.Load()})
}

// NotifyProgress sends each synced watcher of the stream an empty response
// carrying the current revision (periodic progress_notify).
func (ws *WatchStream) NotifyProgress(ids map[int64]bool) {
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	rev := h.s.rev.Load()
	for id := range ids {
		if w := ws.watchers[id]; w != nil && w.synced && w.pending == nil && rev >= w.startRev-1 {
			ws.trySend(WatchResponse{WatchID: id, Revision: rev})
		}
	}
}

// Close removes every watcher of the stream.
func (ws *WatchStream) Close() {
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range ws.watchers {
		h.remove(w)
	}
	if !ws.closed {
		h.streams--
	}
	ws.closed = true
}

func (ws *WatchStream) trySend(r WatchResponse) bool {
	select {
	case ws.C <- r:
		ws.hub.events += int64(len(r.Events))
		return true
	default:
		ws.starved.Store(true)
		return false
	}
}

// Freed is called by the stream's consumer after it takes a response off
// C. When some response did not fit and at least half of C is free, it
// wakes the syncer, which sends what is due (an overloaded stream's held
// responses wait for the end of their interval).
func (ws *WatchStream) Freed() {
	if ws.starved.Load() && len(ws.C) <= cap(ws.C)/2 && ws.starved.CompareAndSwap(true, false) {
		ws.hub.trigger()
	}
}

// Stalled is called by the stream's consumer when handing a response to
// its client had to wait (a full transport window): the client is slower
// than the stream, so an overloaded stream stays in batching mode.
func (ws *WatchStream) Stalled() { ws.stalled.Store(true) }

// Rev is the store's current revision.
func (ws *WatchStream) Rev() int64 { return ws.hub.s.rev.Load() }

func (h *watchHub) addSynced(w *watcher) {
	w.synced = true
	if len(w.end) == 0 {
		set := h.keyed[string(w.key)]
		if set == nil {
			set = map[*watcher]struct{}{}
			h.keyed[string(w.key)] = set
		}
		set[w] = struct{}{}
		return
	}
	h.ranged[w] = struct{}{}
}

func (h *watchHub) removeSynced(w *watcher) {
	w.synced = false
	if len(w.end) == 0 {
		if set := h.keyed[string(w.key)]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(h.keyed, string(w.key))
			}
		}
		return
	}
	delete(h.ranged, w)
}

func (h *watchHub) remove(w *watcher) {
	if w.synced {
		h.removeSynced(w)
	}
	delete(h.unsynced, w)
	if w.pending != nil {
		delete(h.victims, w)
		w.stream.victims--
		w.pending = nil
	}
	if _, ok := w.stream.watchers[w.id]; ok {
		h.watchers--
	}
	delete(w.stream.watchers, w.id)
}

// makeVictim parks r, which did not fit in w's stream, as w's pending
// response. A synced watcher stays synced and gathers later revisions into
// r (deliver); an unsynced one waits, needing revision next after r.
func (h *watchHub) makeVictim(w *watcher, r WatchResponse, next int64) {
	delete(h.unsynced, w)
	w.pending, w.ownEvents, w.pendingBytes = &r, false, eventBytes(r.Events)
	w.nextRev = next
	h.victims[w] = struct{}{}
	ws := w.stream
	ws.victims++
	if !ws.overloaded {
		ws.overloaded = true
		ws.nextRetry = time.Now().Add(h.batchInterval)
		h.overloaded[ws] = struct{}{}
		h.trigger() // the syncer arms its timer for nextRetry
	}
}

// gather appends a synced victim's events of rev to its pending response,
// or, when that would pass the bounds, takes it out of the synced set: it
// then needs rev next, after the pending response.
func (h *watchHub) gather(w *watcher, rev int64, evs []*mvccpb.Event) {
	p := w.pending
	n := eventBytes(evs)
	if len(p.Events)+len(evs) > h.maxPendingEvents || w.pendingBytes+n > h.maxPendingBytes {
		h.removeSynced(w)
		w.nextRev = rev
		return
	}
	if !w.ownEvents {
		p.Events = append(make([]*mvccpb.Event, 0, 2*(len(p.Events)+len(evs))), p.Events...)
		w.ownEvents = true
	}
	p.Events = append(p.Events, evs...)
	p.Revision = rev
	w.pendingBytes += n
	w.nextRev = rev + 1
}

// eventBytes approximates the encoded size of evs.
func eventBytes(evs []*mvccpb.Event) int {
	n := 0
	for _, ev := range evs {
		n += 32 + len(ev.Kv.Key) + len(ev.Kv.Value)
		if ev.PrevKv != nil {
			n += len(ev.PrevKv.Key) + len(ev.PrevKv.Value)
		}
	}
	return n
}

// deliverHeld sends w's held response if it fits. A delivered victim that
// stayed synced carries on as synced; one that fell out becomes synced,
// or unsynced if revisions passed meanwhile.
func (h *watchHub) deliverHeld(w *watcher) bool {
	if !w.stream.trySend(*w.pending) {
		return false
	}
	w.pending, w.ownEvents, w.pendingBytes = nil, false, 0
	delete(h.victims, w)
	w.stream.victims--
	if w.synced {
		return true
	}
	if w.nextRev > h.s.rev.Load() {
		w.startRev = w.nextRev
		h.addSynced(w)
	} else {
		h.unsynced[w] = struct{}{}
	}
	return true
}

// retryVictims delivers, for each overloaded stream whose interval is
// over, the held responses that fit. A stream leaves batching mode when it
// held nothing back for a whole interval, or when its consumer has kept up
// for calmIntervals intervals. It returns when it next has work (zero: no
// stream is overloaded).
func (h *watchHub) retryVictims(now time.Time) (next time.Time) {
	due := false
	for ws := range h.overloaded {
		if now.Before(ws.nextRetry) {
			continue
		}
		if ws.victims == 0 || ws.closed {
			h.calmDown(ws)
			continue
		}
		ws.due, due = true, true
		ws.drained = !ws.stalled.Swap(false) && len(ws.C) == 0
		ws.nextRetry = now.Add(h.batchInterval)
	}
	if due {
		for w := range h.victims {
			if w.stream.due {
				h.deliverHeld(w)
			}
		}
	}
	for ws := range h.overloaded {
		if ws.due {
			ws.due = false
			if ws.drained && ws.victims == 0 {
				ws.calm++
			} else {
				ws.calm = 0
			}
			if ws.calm >= calmIntervals {
				h.calmDown(ws)
				continue
			}
		}
		if next.IsZero() || ws.nextRetry.Before(next) {
			next = ws.nextRetry
		}
	}
	return next
}

// calmDown takes ws out of batching mode.
func (h *watchHub) calmDown(ws *WatchStream) {
	ws.overloaded, ws.calm = false, 0
	delete(h.overloaded, ws)
}

// publish makes rev the current revision and delivers its events to the
// synced watchers.
func (h *watchHub) publish(rev int64, events []*mvccpb.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.s.rev.Store(rev)
	if failpoint.Enabled(failpoint.DropWatchEvent) && rev%100 == 0 {
		return // the deliberate bug: synced watchers never see this revision
	}
	// Single-key watchers of one key all see the same events, up to their
	// flags: filter once per key and combination of flags.
	var seen map[string]bool
	for _, ev := range events {
		set := h.keyed[string(ev.Kv.Key)]
		if set == nil {
			continue
		}
		if len(events) > 1 {
			if seen[string(ev.Kv.Key)] {
				continue
			}
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[string(ev.Kv.Key)] = true
		}
		var filtered [8][]*mvccpb.Event
		var done [8]bool
		for w := range set {
			f := w.flags()
			if !done[f] {
				filtered[f], done[f] = w.filter(events), true
			}
			h.deliver(w, rev, filtered[f])
		}
	}
	for w := range h.ranged {
		h.deliver(w, rev, w.filter(events))
	}
}

// deliver sends a synced watcher its events of rev, or parks them when
// its stream is full.
func (h *watchHub) deliver(w *watcher, rev int64, evs []*mvccpb.Event) {
	if rev < w.startRev || len(evs) == 0 {
		return
	}
	if w.pending != nil {
		h.gather(w, rev, evs)
		return
	}
	r := WatchResponse{WatchID: w.id, Events: evs, Revision: rev}
	if w.stream.overloaded || !w.stream.trySend(r) {
		h.makeVictim(w, r, rev+1)
	}
}

// resync makes rev the current revision after the store was replaced
// wholesale (a snapshot restore): every synced watcher drops to unsynced
// and replays from the new contents, or learns its revisions are
// compacted.
func (h *watchHub) resync(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.s.rev.Load()
	h.s.rev.Store(rev)
	move := func(w *watcher) {
		h.removeSynced(w)
		w.nextRev = max(w.startRev, old+1)
		if w.pending == nil {
			h.unsynced[w] = struct{}{}
		} // else a victim: retryVictims makes it unsynced after its response
	}
	for _, set := range h.keyed {
		for w := range set {
			move(w)
		}
	}
	for w := range h.ranged {
		move(w)
	}
	h.trigger()
}

// compacted is told of a new compaction revision.
func (h *watchHub) compacted(int64) { h.trigger() }
