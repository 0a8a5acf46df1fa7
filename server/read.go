package server

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/cairnkv/cairn/internal/failpoint"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// appliedNotifier lets readers wait until the apply loop reaches an index.
type appliedNotifier struct {
	mu      sync.Mutex
	index   uint64
	waiters map[uint64][]chan struct{}
}

func newAppliedNotifier(index uint64) *appliedNotifier {
	return &appliedNotifier{index: index, waiters: map[uint64][]chan struct{}{}}
}

func (a *appliedNotifier) set(index uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if index <= a.index {
		return
	}
	a.index = index
	for i, chs := range a.waiters {
		if i <= index {
			for _, ch := range chs {
				close(ch)
			}
			delete(a.waiters, i)
		}
	}
}

func (a *appliedNotifier) wait(index uint64) <-chan struct{} {
	ch := make(chan struct{})
	a.mu.Lock()
	defer a.mu.Unlock()
	if index <= a.index {
		close(ch)
		return ch
	}
	a.waiters[index] = append(a.waiters[index], ch)
	return ch
}

// readLoop batches linearizable reads: every reader that arrives while a
// ReadIndex round is in flight joins the next round, so one round trip to
// the leader serves many reads (as etcd's linearizableReadLoop does).
type readLoop struct {
	s     *Server
	kick  chan struct{}
	mu    sync.Mutex
	round *readRound
}

type readRound struct {
	done chan struct{}
	err  error
}

func newReadLoop(s *Server) *readLoop {
	return &readLoop{s: s, kick: make(chan struct{}, 1), round: &readRound{done: make(chan struct{})}}
}

// LinearizableRead returns once this member has applied everything
// committed before the call, so a local read that follows is linearizable.
func (s *Server) LinearizableRead(ctx context.Context) error {
	if failpoint.Enabled(failpoint.SkipReadIndex) {
		return nil // the deliberate bug: a stale read where a linearizable one was asked for
	}
	r := s.reads
	r.mu.Lock()
	round := r.round
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	select {
	case <-round.done:
		return round.err
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return rpctypes.ErrGRPCTimeout
		}
		return rpctypes.ErrGRPCCanceled
	case <-s.stopc:
		return rpctypes.ErrGRPCStopped
	}
}

func (r *readLoop) run() {
	defer r.s.wg.Done()
	var seq uint64
	for {
		select {
		case <-r.s.stopc:
			return
		case <-r.kick:
		}
		r.mu.Lock()
		round := r.round
		r.round = &readRound{done: make(chan struct{})}
		r.mu.Unlock()
		seq++
		round.err = r.readIndex(seq)
		if round.err != nil {
			r.s.metrics.ReadIndexFailed.Inc()
		}
		close(round.done)
	}
}

func (r *readLoop) readIndex(seq uint64) error {
	s := r.s
	rctx := binary.BigEndian.AppendUint64(nil, seq)
	timeout := time.NewTimer(s.requestTimeout())
	defer timeout.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
	defer cancel()
	if err := s.node.ReadIndex(ctx, rctx); err != nil {
		return rpctypes.ErrGRPCStopped
	}
	// Raft drops a ReadIndex it cannot serve (no leader); retry it.
	retry := time.NewTicker(s.cfg.ElectionTimeout / 2)
	defer retry.Stop()
	for {
		select {
		case rs := <-s.node.ReadStates():
			if len(rs.RequestCtx) != 8 || binary.BigEndian.Uint64(rs.RequestCtx) != seq {
				continue // an answer to an older, abandoned round
			}
			applied := s.applied.wait(rs.Index)
			for {
				select {
				case <-applied:
					return nil
				case <-s.node.ReadStates():
					// An answer to a re-sent request: not needed now,
					// but drained so it does not linger.
					continue
				case <-timeout.C:
					return rpctypes.ErrGRPCTimeoutWaitAppliedIndex
				case <-s.stopc:
					return rpctypes.ErrGRPCStopped
				}
			}
		case <-retry.C:
			// etcd counts a read index not answered in time as slow.
			s.metrics.SlowReadIndexes.Inc()
			_ = s.node.ReadIndex(ctx, rctx)
		case <-timeout.C:
			if s.node.Lead() == 0 {
				return rpctypes.ErrGRPCNoLeader
			}
			return rpctypes.ErrGRPCTimeout
		case <-s.stopc:
			return rpctypes.ErrGRPCStopped
		}
	}
}
