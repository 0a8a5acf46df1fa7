package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/membership"
)

// Forwarding to the leader.
//
// Some requests only the leader can answer (lease renewals and
// TimeToLive, because only the leader keeps lease deadlines; learner
// promotion, because only the leader knows how far a learner is). A
// follower sends them to the leader's peer URLs. While the leader is gone
// (killed, partitioned, or an election in progress) a forwarded request
// waits for the next one and tries again, within the request's deadline,
// as etcd does: a client that did nothing wrong must not lose its lease
// because the store lost its leader. What the client sees is always one
// of etcd's errors, never a transport error or an internal URL.

// forwardRetryPause throttles retries after a leader failed to answer
// (connection refused while it is dead, an answer from a member that is
// no longer the leader), as etcd's 50 ms.
const forwardRetryPause = 50 * time.Millisecond

// errRetry marks an answer that says "ask again": the member asked was
// not (or not yet) the primary lessor, or could not be reached.
var errRetry = errors.New("server: leader could not answer; retry")

// forwardToLeader calls path on the leader until the call gives an answer
// that is not errRetry, waiting for a leader whenever there is none. call
// gets the leader's peer URLs and returns the final answer (nil or an
// error to return as is) or an error wrapping errRetry. The wait is bound
// by ctx and by the request timeout.
func (s *Server) forwardToLeader(ctx context.Context, call func(ctx context.Context, leader *membership.Member) error) error {
	cctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	for cctx.Err() == nil {
		leader, err := s.waitLeader(cctx)
		if err != nil {
			return err
		}
		err = call(cctx, leader)
		if !errors.Is(err, errRetry) {
			return err
		}
		select {
		case <-time.After(forwardRetryPause):
		case <-s.stopc:
			return rpctypes.ErrGRPCStopped
		case <-cctx.Done():
		}
	}
	return forwardContextError(ctx, cctx)
}

// forwardContextError is etcd's answer to a forwarded request that ran
// out of time: the client's own cancellation, or a server-side timeout.
func forwardContextError(ctx, cctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return rpctypes.ErrGRPCCanceled
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return rpctypes.ErrGRPCTimeout
	}
	return rpctypes.ErrGRPCCanceled
}

// waitLeader returns the current leader's member entry, looking again
// every heartbeat interval while there is none (etcd looks once an
// election timeout, so its answers come up to that much later). Out of
// time, it returns etcd's "no leader".
func (s *Server) waitLeader(ctx context.Context) (*membership.Member, error) {
	for {
		if lead := s.node.Lead(); lead != 0 {
			if m := s.members.Member(lead); m != nil && len(m.PeerURLs) > 0 {
				return m, nil
			}
		}
		select {
		case <-time.After(s.cfg.HeartbeatInterval):
		case <-s.stopc:
			return nil, rpctypes.ErrGRPCStopped
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, rpctypes.ErrGRPCCanceled
			}
			return nil, rpctypes.ErrGRPCNoLeader
		}
	}
}

// askLeaderOnce calls a peer endpoint on leader once and decodes its
// answer. A failure to reach it, an answer other than 200, or one saying
// "not the leader (yet)" is errRetry (the caller tries the next leader);
// an error the leader gave is returned as the leader named it.
func (s *Server) askLeaderOnce(ctx context.Context, leader *membership.Member, path string) (leaseAnswer, error) {
	var a leaseAnswer
	code, err := s.callPeer(ctx, http.MethodPost, leader.PeerURLs, path, &a)
	if err != nil {
		return a, fmt.Errorf("%w: %s: %v", errRetry, path, err)
	}
	if code != http.StatusOK {
		return a, fmt.Errorf("%w: leader answered %s to %s", errRetry, http.StatusText(code), path)
	}
	switch {
	case a.Retry:
		return a, fmt.Errorf("%w: %s: %s", errRetry, path, a.Error)
	case a.NotFound:
		return a, lease.ErrNotFound
	case a.Error != "":
		return a, peerError(a.Error)
	}
	return a, nil
}
