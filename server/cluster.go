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

// --strict-reconfig-check, exactly as etcd 3.7 checks it. Two counts
// matter: the voters that have started (published their name, whether or
// not they run now), and the voters this member has been connected to
// for the last healthInterval (itself included).

// healthInterval is how long a peer must have been connected to count as
// up for a membership change (etcd's HealthInterval).
const healthInterval = 5 * time.Second

// connectedVoters counts the voters this member has been connected to
// since healthInterval ago, itself included.
func (s *Server) connectedVoters(voters []*membership.Member) int {
	since := time.Now().Add(-healthInterval)
	n := 0
	for _, m := range voters {
		if t := s.transport.ActiveSince(m.ID); m.ID == s.info.MemberID || (!t.IsZero() && t.Before(since)) {
			n++
		}
	}
	return n
}

func voters(ms []*membership.Member) []*membership.Member {
	var out []*membership.Member
	for _, m := range ms {
		if !m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}

func started(ms []*membership.Member) int {
	n := 0
	for _, m := range ms {
		if m.Name != "" {
			n++
		}
	}
	return n
}

// mayAddMember: a new voter must leave a quorum of started voters (the
// second member of a one-member cluster is allowed: the restore path);
// any new member, learner or voter, counted as down, must leave the
// voters this member is connected to a quorum of the larger cluster.
func (s *Server) mayAddMember(learner bool) error {
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	vs := voters(s.members.Members())
	if !learner {
		n, up := len(vs)+1, started(vs)
		if !(up == 1 && n == 2) && up < n/2+1 {
			s.lg.Warn("rejecting member add request; not enough healthy members", "local-member-id", fmt.Sprintf("%x", s.info.MemberID))
			return membership.ErrNotEnoughStarted
		}
	}
	if len(vs) > 1 && s.connectedVoters(vs) < (len(vs)+1)/2+1 {
		s.lg.Warn("rejecting member add request; local member has not been connected to majority peers, reconfigure breaks active quorum",
			"local-member-id", fmt.Sprintf("%x", s.info.MemberID))
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// mayRemoveMember: removing a voter must leave a quorum of started
// voters among the rest; a voter that is down may go; otherwise the
// voters connected, less the one removed, must stay a quorum.
func (s *Server) mayRemoveMember(id uint64) error {
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	vs := voters(s.members.Members())
	var rest []*membership.Member
	for _, m := range vs {
		if m.ID != id {
			rest = append(rest, m)
		}
	}
	if started(rest) < len(rest)/2+1 {
		s.lg.Warn("rejecting member remove request; not enough healthy members", "local-member-id", fmt.Sprintf("%x", s.info.MemberID))
		return membership.ErrNotEnoughStarted
	}
	if id != s.info.MemberID && s.transport.ActiveSince(id).IsZero() {
		return nil
	}
	if s.connectedVoters(vs)-1 < 1+(len(vs)-1)/2 {
		s.lg.Warn("rejecting member remove request; local member has not been connected to all peers, reconfigure breaks active quorum",
			"local-member-id", fmt.Sprintf("%x", s.info.MemberID))
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// mayPromoteMember: the learner, counted as a started voter, must leave
// a quorum of started voters.
func (s *Server) mayPromoteMember() error {
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	vs := voters(s.members.Members())
	if n, up := len(vs)+1, started(vs)+1; up < n/2+1 {
		return membership.ErrNotEnoughStarted
	}
	return nil
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
	s.node.ApplyConfChange(cc)
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
