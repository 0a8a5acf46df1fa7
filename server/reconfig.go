package server

import (
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairnkv/cairn/membership"
)

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
