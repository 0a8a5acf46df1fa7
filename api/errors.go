package api

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/apply"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/membership"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/raftnode"
)

// toGRPC maps an internal error to etcd's gRPC error.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if g, ok := authToGRPC(err); ok {
		return g
	}
	switch {
	case errors.Is(err, mvcc.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, mvcc.ErrFutureRev):
		return rpctypes.ErrGRPCFutureRev
	case errors.Is(err, lease.ErrNotFound):
		return rpctypes.ErrGRPCLeaseNotFound
	case errors.Is(err, lease.ErrExists):
		return rpctypes.ErrGRPCLeaseExist
	case errors.Is(err, lease.ErrTTLTooLarge):
		return rpctypes.ErrGRPCLeaseTTLTooLarge
	case errors.Is(err, lease.ErrNotPrimary):
		return rpctypes.ErrGRPCNotLeader
	case errors.Is(err, apply.ErrKeyNotFound):
		return rpctypes.ErrGRPCKeyNotFound
	case errors.Is(err, apply.ErrNoSpace):
		return rpctypes.ErrGRPCNoSpace
	case errors.Is(err, membership.ErrIDExists):
		return rpctypes.ErrGRPCMemberExist
	case errors.Is(err, membership.ErrPeerURLExists):
		return rpctypes.ErrGRPCPeerURLExist
	case errors.Is(err, membership.ErrIDNotFound), errors.Is(err, membership.ErrIDRemoved):
		return rpctypes.ErrGRPCMemberNotFound
	case errors.Is(err, membership.ErrNotLearner):
		return rpctypes.ErrGRPCMemberNotLearner
	case errors.Is(err, membership.ErrLearnerNotReady):
		return rpctypes.ErrGRPCLearnerNotReady
	case errors.Is(err, membership.ErrNotEnoughStarted):
		return rpctypes.ErrGRPCMemberNotEnoughStarted
	case errors.Is(err, membership.ErrTooManyLearners):
		return rpctypes.ErrGRPCTooManyLearners
	case errors.Is(err, raftnode.ErrNotLeader):
		return rpctypes.ErrGRPCNotLeader
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return rpctypes.ErrGRPCDeadlineExceeded
	}
	return err
}

// propose sends req and unwraps the result into a response or an error.
//
// The entry's header carries the caller's user and auth revision, which
// the apply loop checks writes against (Authenticate carries none: its
// user is only asking).
func (s *Server) propose(ctx context.Context, req *pbInternal) (any, *apply.Result, error) {
	if req.Authenticate == nil {
		ai, err := s.authInfo(ctx)
		if err != nil {
			return nil, nil, err
		}
		if ai.User != "" {
			req.Header = &pb.RequestHeader{Username: ai.User, AuthRevision: ai.Revision}
		}
	}
	res, err := s.m.Propose(ctx, req)
	if err != nil {
		return nil, nil, toGRPC(err)
	}
	if res.Err != nil {
		return nil, res, toGRPC(res.Err)
	}
	return res.Resp, res, nil
}
