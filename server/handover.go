package server

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3/raftpb"
)

// transferLeadershipOnStop hands leadership, before this member stops, to
// the voter whose stream has been up longest, as etcd does on SIGTERM: a
// rolling restart then costs the cluster no election timeout, because
// the others never wait for a leader that went away.
func (s *Server) transferLeadershipOnStop() {
	local := fmt.Sprintf("%x", s.info.MemberID)
	if s.node == nil || s.node.Lead() != s.info.MemberID {
		return
	}
	select {
	case <-s.node.Done():
		return // the node failed: no one to hand over to
	default:
	}
	var target uint64
	var oldest time.Time
	voters := 0
	for _, m := range s.members.Members() {
		if m.IsLearner {
			continue
		}
		voters++
		if m.ID == s.info.MemberID {
			continue
		}
		if since := s.transport.ActiveSince(m.ID); !since.IsZero() && (oldest.IsZero() || since.Before(oldest)) {
			target, oldest = m.ID, since
		}
	}
	if voters < 2 {
		s.lg.Info("skipped leadership transfer for single voting member cluster", "local-member-id", local)
		return
	}
	if target == 0 {
		s.lg.Warn("leadership transfer failed", "local-member-id", local, "error", rpctypes.ErrorDesc(rpctypes.ErrGRPCUnhealthy))
		return
	}
	// Raft drops the proposals followers forward while leadership moves,
	// and the followers cannot tell: their clients would wait out the
	// request timeout. So from now on they are held here, and handed to
	// whoever leads once the transfer is over. Raft never saw them, so
	// they cannot be applied twice.
	s.handingOver.Store(true)
	for deadline := time.Now().Add(100 * time.Millisecond); len(s.propSem) > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // those already on their way into raft
	}
	err := s.MoveLeader(context.Background(), target)
	if err != nil {
		s.lg.Warn("leadership transfer failed", "local-member-id", local, "error", err.Error())
	}
	s.releaseHeld()
}

// holdProposal keeps a forwarded proposal that arrived during a
// leadership hand-over; false if the hand-over is already over.
func (s *Server) holdProposal(m *raftpb.Message) bool {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	if !s.handingOver.Load() {
		return false
	}
	s.held = append(s.held, m)
	return true
}

// releaseHeld ends the hand-over: the held proposals go into the local
// raft node, which forwards them to the new leader (or takes them, if
// the transfer failed and this member still leads), and the member
// waits a little for them to leave before it stops.
func (s *Server) releaseHeld() {
	s.heldMu.Lock()
	held := s.held
	s.held = nil
	s.handingOver.Store(false)
	s.heldMu.Unlock()
	if len(held) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ElectionTimeout)
	defer cancel()
	n := 0
	for _, m := range held {
		for _, e := range m.GetEntries() {
			if e.GetType() != raftpb.EntryType_EntryNormal {
				continue // conf changes are proposed by the leader itself
			}
			data := e.GetData()
			if s.handToRaft(ctx, func(ctx context.Context) error { return s.node.Propose(ctx, data) }) == nil {
				n++
			}
		}
	}
	time.Sleep(2 * s.cfg.HeartbeatInterval)
	s.lg.Info("handed proposals received during the leadership transfer to the new leader", "count", n)
}
