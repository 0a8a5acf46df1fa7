package server

import (
	"context"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// applyLoop feeds committed entries to the state machine in log order and
// answers the proposals waiting on them.
func (s *Server) applyLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stopc:
			return
		case ap := <-s.node.Apply():
			if ap.Snapshot != nil && ap.Snapshot.GetMetadata().GetIndex() > s.store.AppliedIndex() {
				if err := s.restoreSnapshot(ap.Snapshot); err != nil {
					s.fail(err)
					return
				}
				s.applied.set(s.store.AppliedIndex())
			}
			for _, e := range ap.Entries {
				if err := s.applyEntry(e); err != nil {
					s.fail(err)
					return
				}
			}
			if n := len(ap.Entries); n > 0 {
				last := ap.Entries[n-1].GetIndex()
				s.applied.set(last)
				s.node.MaybeSnapshot(last)
			}
		}
	}
}

func (s *Server) applyEntry(e *raftpb.Entry) error {
	index := e.GetIndex()
	done := index <= s.store.AppliedIndex() // replayed after a restart
	switch e.GetType() {
	case raftpb.EntryType_EntryNormal:
		if done {
			return nil
		}
		if len(e.Data) == 0 {
			return s.applier.ApplyNoop(index)
		}
		var req pb.InternalRaftRequest
		if err := proto.Unmarshal(e.Data, &req); err != nil {
			return fmt.Errorf("server: decode entry %d: %w", index, err)
		}
		start := time.Now()
		res, err := s.applier.Apply(index, &req)
		if err != nil {
			return err
		}
		s.observeApply(&req, res, start)
		s.waits.trigger(req.GetHeader().GetID(), res)
	case raftpb.EntryType_EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.Data, &cc); err != nil {
			return fmt.Errorf("server: decode conf change %d: %w", index, err)
		}
		return s.applyConfChange(index, &cc, done)
	case raftpb.EntryType_EntryConfChangeV2:
		// Cairn proposes only V1 changes; a V2 entry can only come from a
		// newer version and is refused rather than half-understood.
		return fmt.Errorf("server: entry %d is a joint-consensus membership change, which this version cannot apply", index)
	}
	return nil
}

// leaderLoop makes the lessor primary while this member leads.
func (s *Server) leaderLoop() {
	defer s.wg.Done()
	var prev uint64
	for {
		select {
		case <-s.stopc:
			return
		case lead := <-s.node.LeaderChanges():
			if lead != 0 {
				s.leaderElectedAt.Store(int64(time.Since(monoEpoch)))
				s.metrics.LeaderChanges.Inc()
			}
			from := fmt.Sprintf("%x", prev)
			if prev == 0 {
				from = "none"
			}
			if lead == s.info.MemberID {
				// Like etcd, extend every lease by an election timeout so
				// a leader change does not expire leases in a burst.
				s.lessor.Promote(s.cfg.ElectionTimeout)
				s.lg.Info("server: became leader", "previous-leader", from, "term", s.node.Term())
			} else if lead == 0 {
				s.lessor.Demote()
				s.lg.Warn("server: lost leader", "previous-leader", from, "term", s.node.Term())
			} else {
				s.lessor.Demote()
				s.lg.Info("server: leader changed", "previous-leader", from, "leader", fmt.Sprintf("%x", lead), "term", s.node.Term())
			}
			prev = lead
		}
	}
}

// leaseExpiryLoop proposes the revocation of expired leases (leader only).
func (s *Server) leaseExpiryLoop() {
	defer s.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	sem := make(chan struct{}, 16)
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
		for _, id := range s.lessor.Expired(3*time.Second, 1000) {
			select {
			case sem <- struct{}{}:
			case <-s.stopc:
				return
			}
			go func(id int64) {
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
				defer cancel()
				// As root, as etcd does: with auth on, an expired lease goes
				// whoever may write its keys.
				req := &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}, Header: s.asRoot()}
				if _, err := s.Propose(ctx, req); err != nil {
					s.lg.Warn("server: revoke expired lease", "lease", fmt.Sprintf("%x", id), "err", err)
				}
			}(id)
		}
	}
}
