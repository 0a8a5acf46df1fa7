package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/apply"
	"github.com/cairnkv/cairn/membership"
	"github.com/cairnkv/cairn/raftnode"
)

// raftAdapter is the member's raft node as the transport sees it. The
// transport exists before the node (the node needs it to send), so until
// the node is running the adapter drops what it is handed.
type raftAdapter Server

var errNodeNotReady = errors.New("server: raft node not started yet")

func (r *raftAdapter) raftNode() *raftnode.Node { return (*Server)(r).running.Load() }

func (r *raftAdapter) Process(ctx context.Context, m *raftpb.Message) error {
	s := (*Server)(r)
	n := r.raftNode()
	if n == nil {
		return errNodeNotReady
	}
	if s.members.IsRemoved(m.GetFrom()) {
		return fmt.Errorf("server: message from removed member %x", m.GetFrom())
	}
	if m.GetType() == raftpb.MsgProp && s.handingOver.Load() && s.holdProposal(m) {
		return nil
	}
	if m.GetType() == raftpb.MsgProp {
		// A proposal forwarded by a follower blocks in raft while this
		// member knows no leader (after a restart, say). Stepping it
		// inline would stall the peer's whole stream, heartbeats
		// included, and keep the member leaderless; so proposals step
		// on their own, briefly, and are dropped if raft cannot take
		// them (the proposer times out and the client retries), as
		// etcd's transport does.
		select {
		case s.propSem <- struct{}{}:
		default:
			return errProposalBacklog
		}
		go func() {
			defer func() { <-s.propSem }()
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ElectionTimeout)
			defer cancel()
			_ = n.Process(ctx, m)
		}()
		return nil
	}
	return n.Process(ctx, m)
}

// errProposalBacklog: too many forwarded proposals are waiting for raft.
var errProposalBacklog = errors.New("server: dropped a forwarded proposal: too many waiting")

func (r *raftAdapter) ReportUnreachable(id uint64) {
	if n := r.raftNode(); n != nil {
		n.ReportUnreachable(id)
	}
}

func (r *raftAdapter) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	if n := r.raftNode(); n != nil {
		n.ReportSnapshot(id, status)
	}
}

// syncPeers makes the transport's peers the member list's.
func (s *Server) syncPeers() {
	want := map[uint64]bool{}
	for _, m := range s.members.Members() {
		if m.ID == s.info.MemberID {
			continue
		}
		want[m.ID] = true
		s.transport.AddPeer(m.ID, m.PeerURLs)
		s.transport.UpdatePeer(m.ID, m.PeerURLs)
	}
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	for id := range s.knownPeers {
		if !want[id] {
			s.transport.RemovePeer(id)
		}
	}
	s.knownPeers = want
}

// publish records this member's name and client URLs in the member list
// through the log, once, after start (etcd does the same), retrying until
// it succeeds or the member stops.
func (s *Server) publish() {
	defer s.wg.Done()
	req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID: s.info.MemberID,
		MemberAttributes: &membershippb.Attributes{
			Name:       s.cfg.Name,
			ClientUrls: urlStrings(s.cfg.AdvertiseClientURLs),
		},
	}}
	for {
		if m := s.members.Member(s.info.MemberID); m != nil && m.Name == s.cfg.Name &&
			fmt.Sprint(m.ClientURLs) == fmt.Sprint(urlStrings(s.cfg.AdvertiseClientURLs)) {
			close(s.readyc)
			return // already recorded (a restart with the same flags)
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
		_, err := s.Propose(ctx, proto.Clone(req).(*pb.InternalRaftRequest))
		cancel()
		if err == nil {
			s.lg.Info("server: published member attributes", "name", s.cfg.Name)
			close(s.readyc)
			return
		}
		select {
		case <-s.stopc:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// proposeConfChange proposes a membership change and waits until it is
// applied.
func (s *Server) proposeConfChange(ctx context.Context, cc *raftpb.ConfChange) error {
	id := s.ids.next()
	cc.Id = proto.Uint64(id)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	ch := s.waits.register(id)
	if err := s.handToRaft(ctx, func(ctx context.Context) error { return s.node.ProposeConfChange(ctx, cc) }); err != nil {
		s.waits.cancel(id)
		return s.proposeError(ctx, err, start)
	}
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		s.waits.cancel(id)
		return s.proposeError(ctx, ctx.Err(), start)
	case <-s.stopc:
		s.waits.cancel(id)
		return rpctypes.ErrGRPCStopped
	}
}

// AddMember adds a voter or learner with peerURLs and returns it.
func (s *Server) AddMember(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, error) {
	now := time.Now()
	m := &membership.Member{ID: membership.ComputeID(peerURLs, s.cfg.InitialClusterToken, &now), PeerURLs: peerURLs, IsLearner: learner}
	if err := s.members.ValidateAdd(m); err != nil {
		return nil, err
	}
	if err := s.mayAddMember(learner); err != nil {
		return nil, err
	}
	typ := raftpb.ConfChangeType_ConfChangeAddNode
	if learner {
		typ = raftpb.ConfChangeType_ConfChangeAddLearnerNode
	}
	cc := &raftpb.ConfChange{Type: typ.Enum(), NodeId: proto.Uint64(m.ID), Context: membership.Context(m)}
	if err := s.proposeConfChange(ctx, cc); err != nil {
		return nil, err
	}
	return &pb.Member{ID: m.ID, PeerURLs: m.PeerURLs, IsLearner: learner}, nil
}

// RemoveMember removes member id.
func (s *Server) RemoveMember(ctx context.Context, id uint64) error {
	m := s.members.Member(id)
	if m == nil {
		if s.members.IsRemoved(id) {
			return membership.ErrIDRemoved
		}
		return membership.ErrIDNotFound
	}
	if !m.IsLearner {
		if err := s.mayRemoveMember(id); err != nil {
			return err
		}
	}
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)}
	return s.proposeConfChange(ctx, cc)
}

// UpdateMember changes member id's peer URLs.
func (s *Server) UpdateMember(ctx context.Context, id uint64, peerURLs []string) error {
	if err := s.members.ValidateUpdate(id, peerURLs); err != nil {
		return err
	}
	m := s.members.Member(id)
	m.PeerURLs = peerURLs
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeUpdateNode.Enum(), NodeId: proto.Uint64(id), Context: membership.Context(m)}
	return s.proposeConfChange(ctx, cc)
}

// PromoteMember turns learner id into a voter once it has caught up. Only
// the leader knows how far a learner is, so a follower forwards the
// request to it (waiting for one while there is none), as etcd does.
func (s *Server) PromoteMember(ctx context.Context, id uint64) (*pb.Member, error) {
	resp, err := s.promoteAsLeader(ctx, id)
	if !errors.Is(err, raftnode.ErrNotLeader) {
		return resp, err
	}
	err = s.forwardToLeader(ctx, func(ctx context.Context, leader *membership.Member) error {
		if leader.ID == s.info.MemberID {
			var err error
			resp, err = s.promoteAsLeader(ctx, id)
			if errors.Is(err, raftnode.ErrNotLeader) {
				return errRetry
			}
			return err
		}
		_, err := s.askLeaderOnce(ctx, leader, "/cairn/member/promote?id="+strconv.FormatUint(id, 10))
		return err
	})
	if err != nil || resp != nil {
		return resp, err
	}
	// Promoted by the leader: wait until this member has applied it too.
	if err := s.LinearizableRead(ctx); err != nil {
		return nil, err
	}
	m := s.members.Member(id)
	if m == nil {
		return nil, membership.ErrIDNotFound
	}
	return &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs}, nil
}

// promoteAsLeader promotes learner id if this member is the leader and
// the learner is ready; raftnode.ErrNotLeader otherwise.
func (s *Server) promoteAsLeader(ctx context.Context, id uint64) (*pb.Member, error) {
	m := s.members.Member(id)
	switch {
	case m == nil:
		return nil, membership.ErrIDNotFound
	case !m.IsLearner:
		return nil, membership.ErrNotLearner
	}
	st := s.node.Status()
	if st.RaftState != raft.StateLeader {
		return nil, raftnode.ErrNotLeader
	}
	pr, ok := st.Progress[id]
	leaderMatch := st.Progress[s.info.MemberID].Match
	// etcd's rule: the learner's log must be within 90% of the leader's.
	if !ok || float64(pr.Match) < float64(leaderMatch)*0.9 {
		return nil, membership.ErrLearnerNotReady
	}
	if err := s.mayPromoteMember(); err != nil {
		return nil, err
	}
	promoted := *m
	promoted.IsLearner = false
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(id), Context: membership.Context(&promoted)}
	if err := s.proposeConfChange(ctx, cc); err != nil {
		return nil, err
	}
	s.metrics.LearnerPromotes.Inc()
	return &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs}, nil
}

// MoveLeader hands leadership to target and waits until it has it.
func (s *Server) MoveLeader(ctx context.Context, target uint64) error {
	if s.node.Lead() != s.info.MemberID {
		return raftnode.ErrNotLeader
	}
	m := s.members.Member(target)
	if m == nil || m.IsLearner {
		return rpctypes.ErrGRPCBadLeaderTransferee
	}
	if target == s.info.MemberID {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	start := time.Now()
	local := fmt.Sprintf("%x", s.info.MemberID)
	s.lg.Info("leadership transfer starting", "local-member-id", local, "current-leader-member-id", local,
		"transferee-member-id", fmt.Sprintf("%x", target))
	s.node.TransferLeadership(ctx, s.info.MemberID, target)
	for s.node.Lead() != target {
		select {
		case <-ctx.Done():
			return rpctypes.ErrGRPCTimeoutDueToLeaderFail
		case <-time.After(s.cfg.HeartbeatInterval):
		}
	}
	s.lg.Info("leadership transfer finished", "local-member-id", local, "old-leader-member-id", local,
		"new-leader-member-id", fmt.Sprintf("%x", target), "took", time.Since(start))
	return nil
}

// applyConfChange applies a committed membership change and tells raft,
// the transport and the proposer.
func (s *Server) applyConfChange(index uint64, cc *raftpb.ConfChange, replayed bool) error {
	var res *apply.Result
	if !replayed {
		var before *membership.Member
		if m := s.members.Member(cc.GetNodeId()); m != nil {
			before = m.Clone()
		}
		var err error
		if res, err = s.applier.ApplyConfChange(index, cc); err != nil {
			return err
		}
		if res.Err == nil {
			s.logConfChange(cc, before)
		}
	} else if s.applier.WasRefused(index) {
		cc.NodeId = proto.Uint64(0) // refused when first applied: a no-op again
	}
	s.node.ApplyConfChange(index, cc)
	s.syncPeers()
	s.noteMembership()
	if res != nil {
		s.waits.trigger(cc.GetId(), res)
	}
	if cc.GetType() == raftpb.ConfChangeType_ConfChangeRemoveNode && cc.GetNodeId() == s.info.MemberID && !replayed {
		// Give the request that removed it (possibly served here) time to
		// be answered, then stop, as etcd does.
		s.lg.Warn("server: this member has been removed from the cluster; stopping")
		time.AfterFunc(time.Second, s.Stop)
	}
	return nil
}

// logConfChange logs an applied membership change with etcd's messages;
// before is the member as it was (nil if it was not a member).
func (s *Server) logConfChange(cc *raftpb.ConfChange, before *membership.Member) {
	id := fmt.Sprintf("%x", cc.GetNodeId())
	local := fmt.Sprintf("%x", s.info.MemberID)
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		s.lg.Info("removed member", "local-member-id", local, "removed-remote-peer-id", id)
	case raftpb.ConfChangeType_ConfChangeAddNode, raftpb.ConfChangeType_ConfChangeAddLearnerNode:
		if before != nil && before.IsLearner && cc.GetType() == raftpb.ConfChangeType_ConfChangeAddNode {
			s.lg.Info("promote member", "local-member-id", local, "promoted-member-id", id)
			return
		}
		var urls []string
		if m := s.members.Member(cc.GetNodeId()); m != nil {
			urls = m.PeerURLs
		}
		s.lg.Info("added member", "local-member-id", local, "added-peer-id", id, "added-peer-peer-urls", urls,
			"added-peer-is-learner", cc.GetType() == raftpb.ConfChangeType_ConfChangeAddLearnerNode)
	}
}

// IsLearner reports whether this member is a learner, which serves only
// serializable reads and Status, as in etcd.
func (s *Server) IsLearner() bool { return s.learner.Load() }

// noteMembership refreshes what this member caches about itself after
// the member list changed.
func (s *Server) noteMembership() {
	m := s.members.Member(s.info.MemberID)
	s.learner.Store(m != nil && m.IsLearner)
}
