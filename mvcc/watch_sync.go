package mvcc

import (
	"bytes"
	"context"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// syncInterval is how often the syncer retries watchers whose stream was
// full.
const syncInterval = 100 * time.Millisecond

func (h *watchHub) syncLoop() {
	defer h.wg.Done()
	t := time.NewTicker(syncInterval)
	defer t.Stop()
	// retry fires when an overloaded stream's held responses are due.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-t.C:
		case <-h.kick:
		case <-retry.C:
		}
		for {
			more, next := h.syncOnce()
			if !next.IsZero() {
				retry.Reset(time.Until(next))
			}
			if !more {
				break
			}
			select {
			case <-h.quit:
				return
			default:
			}
		}
	}
}

// syncOnce delivers the held responses that are due, then moves unsynced
// watchers forward by one bounded read of the revision log. It reports
// whether another pass would make progress now, and when held responses
// are next due (zero if none are held).
func (h *watchHub) syncOnce() (more bool, next time.Time) {
	h.mu.Lock()
	next = h.retryVictims(time.Now())
	if len(h.unsynced) == 0 {
		h.mu.Unlock()
		return false, next
	}
	cur := h.s.rev.Load()
	compactRev := h.s.compactRev.Load()
	minRev := int64(math.MaxInt64)
	wantPrev := false
	for w := range h.unsynced {
		if w.nextRev < compactRev {
			if w.stream.trySend(WatchResponse{WatchID: w.id, CompactRevision: compactRev, Revision: cur}) {
				h.remove(w)
			}
			continue
		}
		if w.nextRev > cur {
			delete(h.unsynced, w)
			h.addSynced(w)
			w.startRev = w.nextRev
			continue
		}
		minRev = min(minRev, w.nextRev)
		wantPrev = wantPrev || w.prevKV
	}
	h.mu.Unlock()
	if minRev == math.MaxInt64 {
		return false, next
	}

	events, upTo, err := h.s.readEvents(minRev, cur, h.maxReplay, wantPrev)
	if err != nil {
		h.s.lg.Error("mvcc: watch replay failed", "from", minRev, "err", err)
		return false, next
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.s.compactRev.Load(); c != compactRev && c > minRev {
		// A compaction ran while we read: what we read may have holes.
		// Start over; the watchers below it get a compaction response.
		return true, next
	}
	progress := false
	for w := range h.unsynced {
		if w.nextRev < minRev || w.nextRev > upTo || (w.prevKV && !wantPrev) {
			continue // compacted, or created after the read started
		}
		var evs []*mvccpb.Event
		for _, ev := range events {
			if ev.Kv.ModRevision >= w.nextRev {
				evs = append(evs, ev)
			}
		}
		evs = w.filter(evs)
		progress = true
		if r := (WatchResponse{WatchID: w.id, Events: evs, Revision: upTo}); len(evs) > 0 && !w.stream.trySend(r) {
			h.makeVictim(w, r, upTo+1)
			continue
		}
		w.nextRev = upTo + 1
		if w.nextRev > h.s.rev.Load() {
			delete(h.unsynced, w)
			w.startRev = w.nextRev
			h.addSynced(w)
		}
	}
	return progress && len(h.unsynced) > 0, next
}

// readEvents reads the events of revisions [from, to], stopping after
// about max revision-log entries but never inside a revision. It returns
// the events and the last revision fully read.
func (s *Store) readEvents(from, to int64, max int, withPrev bool) ([]*mvccpb.Event, int64, error) {
	s.restoreMu.RLock()
	defer s.restoreMu.RUnlock()
	it, err := s.eng.NewIter(revKey(revision{main: from}), revKey(revision{main: to + 1}))
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	var events []*mvccpb.Event
	upTo := to
	for ok := it.First(); ok; ok = it.Next() {
		r, err := decodeRevKey(it.Key())
		if err != nil {
			return nil, 0, err
		}
		if len(events) >= max && r.main != events[len(events)-1].Kv.ModRevision {
			upTo = r.main - 1
			break
		}
		user := bytes.Clone(it.Value())
		ev, err := s.eventAt(user, r, withPrev)
		if err != nil {
			return nil, 0, err
		}
		if ev != nil {
			events = append(events, ev)
		}
	}
	return events, upTo, it.Error()
}

// eventAt rebuilds the event that wrote user at r.
func (s *Store) eventAt(user []byte, r revision, withPrev bool) (*mvccpb.Event, error) {
	v, ok, err := s.eng.Get(encodeKey(user, r))
	if err != nil || !ok {
		return nil, err // compacted away under us: the syncer will see the compaction
	}
	rec, err := decodeValue(v)
	if err != nil {
		return nil, err
	}
	ev := &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: user, ModRevision: r.main}}
	if rec.tombstone {
		ev.Type = mvccpb.DELETE
	} else {
		ev.Type = mvccpb.PUT
		ev.Kv.CreateRevision, ev.Kv.Version, ev.Kv.Lease, ev.Kv.Value = rec.create, rec.version, rec.lease, rec.value
	}
	if withPrev {
		prevs, _, err := scan(context.Background(), s.eng, user, nil, scanOptions{rev: r.main - 1})
		if err != nil {
			return nil, err
		}
		if len(prevs) == 1 {
			ev.PrevKv = prevs[0]
		}
	}
	return ev, nil
}
