package transport

import (
	"sync"

	"go.etcd.io/raft/v3"
)

// reporter delivers failure reports to Raft from a goroutine of its own.
//
// Send runs on the Raft Ready loop, and calling back into raft from
// there can block or deadlock (raft.Node.ReportUnreachable waits for the
// node's goroutine; a RawNode behind a mutex is held by the loop
// itself). So Send only records that a peer needs reporting, and the
// reporter goroutine tells raft. Reports for the same peer coalesce: a
// thousand dropped messages become one ReportUnreachable, which is all
// raft needs to fall back to probing that peer.
type reporter struct {
	mu      sync.Mutex
	pending map[uint64]reportKind
	wake    chan struct{}
}

type reportKind uint8

const (
	reportUnreachable reportKind = 1 << iota
	reportSnapshotFailure
)

func (r *reporter) init() {
	r.pending = make(map[uint64]reportKind)
	r.wake = make(chan struct{}, 1)
}

// report queues a ReportUnreachable for id, and a
// ReportSnapshot(SnapshotFailure) too if snapshot is set. It never
// blocks.
func (t *Transport) report(id uint64, snapshot bool) {
	kind := reportUnreachable
	if snapshot {
		kind |= reportSnapshotFailure
	}
	r := &t.reports
	r.mu.Lock()
	r.pending[id] |= kind
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (t *Transport) runReporter() {
	defer t.reporter.Done()
	r := &t.reports
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-r.wake:
		}
		r.mu.Lock()
		batch := r.pending
		r.pending = make(map[uint64]reportKind, len(batch))
		r.mu.Unlock()
		for id, kind := range batch {
			if t.ctx.Err() != nil {
				return
			}
			if kind&reportUnreachable != 0 {
				t.cfg.Raft.ReportUnreachable(id)
			}
			if kind&reportSnapshotFailure != 0 {
				t.cfg.Raft.ReportSnapshot(id, raft.SnapshotFailure)
			}
		}
	}
}
