package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/apply"
)

// idGenerator makes request IDs unique across members and restarts: the
// member ID's low 16 bits, then the start time in milliseconds (40 bits),
// then a counter (8 bits, overflowing into the time part), as etcd does.
type idGenerator struct {
	prefix uint64
	suffix atomic.Uint64
}

func newIDGenerator(member uint64, now time.Time) *idGenerator {
	g := &idGenerator{prefix: member << 48}
	ms := uint64(now.UnixMilli()) & (1<<40 - 1)
	g.suffix.Store(ms << 8)
	return g
}

func (g *idGenerator) next() uint64 {
	return g.prefix | (g.suffix.Add(1) & (1<<48 - 1))
}

// waitRegistry connects a proposal to its result from the apply loop.
type waitRegistry struct {
	mu sync.Mutex
	m  map[uint64]chan *apply.Result
}

func newWaitRegistry() *waitRegistry {
	return &waitRegistry{m: map[uint64]chan *apply.Result{}}
}

func (w *waitRegistry) register(id uint64) <-chan *apply.Result {
	ch := make(chan *apply.Result, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *waitRegistry) trigger(id uint64, r *apply.Result) {
	w.mu.Lock()
	ch := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

func (w *waitRegistry) cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

// requestTimeout bounds how long a proposal may wait to be applied, as
// etcd's (5 s plus two election timeouts).
func (s *Server) requestTimeout() time.Duration {
	return 5*time.Second + 2*s.cfg.ElectionTimeout
}

// Propose sends req through the log and waits for the state machine's
// result. The apply loop answers it on this member.
func (s *Server) Propose(ctx context.Context, req *pb.InternalRaftRequest) (*apply.Result, error) {
	id := s.ids.next()
	if req.Header == nil {
		req.Header = &pb.RequestHeader{}
	}
	req.Header.ID = id
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	if len(data) > int(s.cfg.MaxRequestBytes) {
		return nil, rpctypes.ErrGRPCRequestTooLarge
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	s.pendingProposals.Add(1)
	defer s.pendingProposals.Add(-1)
	ch := s.waits.register(id)
	if err := s.handToRaft(ctx, func(ctx context.Context) error { return s.node.Propose(ctx, data) }); err != nil {
		s.waits.cancel(id)
		return nil, s.proposeError(ctx, err, start)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		s.waits.cancel(id)
		return nil, s.proposeError(ctx, ctx.Err(), start)
	case <-s.stopc:
		s.waits.cancel(id)
		return nil, rpctypes.ErrGRPCStopped
	}
}

// handToRaft gives a proposal to raft. While raft drops it because this
// member knows no leader (an election is under way) or leadership is
// moving, it waits for a leader and proposes again, within ctx: a dropped
// proposal never left this member, so proposing it again cannot apply it
// twice. etcd answers such a drop at once with "raft proposal dropped"
// (code Unknown, which clients treat as fatal); Cairn's client waits for
// the election instead, as etcd's lease renewals do. A proposal that did
// leave (forwarded to a leader that then died) is never sent again: its
// fate is unknown, and the caller times out as in etcd.
func (s *Server) handToRaft(ctx context.Context, propose func(context.Context) error) error {
	for {
		err := propose(ctx)
		if !errors.Is(err, raft.ErrProposalDropped) {
			return err
		}
		if _, werr := s.waitLeader(ctx); werr != nil {
			return err
		}
		select {
		case <-time.After(forwardRetryPause):
		case <-ctx.Done():
			return err
		case <-s.stopc:
			return err
		}
	}
}

// proposeError turns a failed wait into etcd's error: the client's own
// cancellation or deadline, or a server-side timeout.
func (s *Server) proposeError(ctx context.Context, err error, start time.Time) error {
	s.metrics.ProposalsFailed.Inc()
	select {
	case <-s.stopc:
		return rpctypes.ErrGRPCStopped
	default:
	}
	if ctx.Err() == context.DeadlineExceeded {
		// etcd's rule: a request sent in the two election timeouts
		// before the current leader was elected most likely went to the
		// leader that failed.
		elected := monoEpoch.Add(time.Duration(s.leaderElectedAt.Load()))
		if start.After(elected.Add(-2*s.cfg.ElectionTimeout)) && start.Before(elected) {
			return rpctypes.ErrGRPCTimeoutDueToLeaderFail
		}
		if s.node.Lead() == 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		return rpctypes.ErrGRPCTimeout
	}
	if ctx.Err() == context.Canceled {
		return rpctypes.ErrGRPCCanceled
	}
	if errors.Is(err, raft.ErrProposalDropped) {
		// Raft drops proposals while there is no leader or leadership is
		// moving; both are Unavailable, so clients retry.
		if s.node.Lead() == 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		return rpctypes.ErrGRPCLeaderChanged
	}
	return err
}
