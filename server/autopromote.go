package server

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
)

// autoPromoteEvery is how often the leader looks for learners ready to
// be promoted (--auto-promote-learners).
const autoPromoteEvery = time.Second

// autoPromoteLoop promotes, while this member leads, every learner that
// is ready by etcd's rule (its log within 90% of the leader's; the
// promotion passes --strict-reconfig-check), so that adding a member is
// one command and no window of reduced fault tolerance waits on a person.
// A learner not yet ready is left for the next round.
func (s *Server) autoPromoteLoop() {
	defer s.wg.Done()
	t := time.NewTicker(autoPromoteEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
		if s.node.Lead() != s.info.MemberID || s.node.Status().RaftState != raft.StateLeader {
			continue
		}
		for _, m := range s.members.Members() {
			if !m.IsLearner {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
			_, err := s.promoteAsLeader(ctx, m.ID)
			cancel()
			if err == nil {
				s.lg.Info("auto-promoted learner", "member-id", fmt.Sprintf("%x", m.ID), "name", m.Name)
			} else {
				s.lg.Debug("learner not promoted yet", "member-id", fmt.Sprintf("%x", m.ID), "reason", err.Error())
			}
		}
	}
}
