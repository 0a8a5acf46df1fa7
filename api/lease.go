package api

import (
	"context"
	"errors"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/metrics"
)

type leaseServer struct {
	pb.UnimplementedLeaseServer
	s *Server
}

func (l *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if r.TTL > lease.MaxTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	if err := l.s.checkQuota(ctx, proto.Size(r)); err != nil {
		return nil, err
	}
	req := &pb.LeaseGrantRequest{TTL: r.TTL, ID: r.ID}
	if req.ID == 0 {
		// The proposer picks the ID so every member applies the same one.
		req.ID = l.s.m.NewLeaseID()
	}
	resp, _, err := l.s.propose(ctx, &pbInternal{LeaseGrant: req})
	if err != nil {
		return nil, err
	}
	l.s.count(func(m *metrics.Metrics) prometheus.Counter { return m.LeaseGranted })
	out := resp.(*pb.LeaseGrantResponse)
	l.s.fill(out.Header)
	return out, nil
}

func (l *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if !l.s.m.Lessor().Exists(r.ID) {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	resp, _, err := l.s.propose(ctx, &pbInternal{LeaseRevoke: r})
	if err != nil {
		return nil, err
	}
	l.s.count(func(m *metrics.Metrics) prometheus.Counter { return m.LeaseRevoked })
	out := resp.(*pb.LeaseRevokeResponse)
	l.s.fill(out.Header)
	return out, nil
}

func (l *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := l.s.m.LinearizableRead(ctx); err != nil {
		return nil, toGRPC(err)
	}
	as := l.s.m.Auth()
	var authRev uint64
	if r.Keys {
		if as != nil {
			authRev = as.Revision()
		}
		if err := l.s.checkLeases(ctx, []int64{r.ID}, auth.Read); err != nil {
			return nil, err
		}
	}
	granted, remaining, err := l.s.m.LeaseTimeToLive(ctx, r.ID)
	if errors.Is(err, lease.ErrNotFound) {
		// etcd answers an unknown lease with TTL -1 rather than an error.
		return &pb.LeaseTimeToLiveResponse{Header: l.s.header(0), ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, toGRPC(err)
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: l.s.header(0), ID: r.ID, TTL: remaining, GrantedTTL: granted}
	if r.Keys {
		keys, err := l.s.m.Lessor().Keys(l.s.m.Store().Engine(), r.ID)
		if err != nil {
			return nil, toGRPC(err)
		}
		resp.Keys = keys
		if as != nil && as.Enabled() && authRev != as.Revision() {
			return nil, rpctypes.ErrGRPCAuthOldRevision
		}
	}
	return resp, nil
}

func (l *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := l.s.m.LinearizableRead(ctx); err != nil {
		return nil, toGRPC(err)
	}
	ids := l.s.m.Lessor().IDs()
	if err := l.s.checkLeases(ctx, ids, auth.Read); err != nil {
		return nil, err
	}
	resp := &pb.LeaseLeasesResponse{Header: l.s.header(0), Leases: make([]*pb.LeaseStatus, 0, len(ids))}
	for _, id := range ids {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
	}
	return resp, nil
}

func (l *leaseServer) LeaseKeepAlive(stream grpc.BidiStreamingServer[pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse]) error {
	errc := make(chan error, 1)
	go func() { errc <- l.keepAlive(stream) }()
	select {
	case err := <-errc:
		return err
	case <-stream.Context().Done():
		// The client went away, or it required a leader and this
		// member has had none for a while (ErrGRPCNoLeader).
		return toGRPC(stream.Context().Err())
	}
}

// keepAlive answers each request in order. A client that half-closes
// has had every answer it is owed when Recv says io.EOF, since each
// request is answered before the next is read.
func (l *leaseServer) keepAlive(stream grpc.BidiStreamingServer[pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse]) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// The header is taken before the renewal, as etcd does, so it
		// never shows a revision after a revocation of this lease that
		// the renewal raced with.
		resp := &pb.LeaseKeepAliveResponse{Header: l.s.header(0), ID: req.ID}
		if err := l.s.checkLeaseRenew(stream.Context(), req.ID); err != nil {
			return err
		}
		ttl, err := l.s.m.RenewLease(stream.Context(), req.ID)
		if errors.Is(err, lease.ErrNotFound) {
			err, ttl = nil, 0
		}
		if err != nil {
			return toGRPC(err)
		}
		resp.TTL = ttl
		l.s.count(func(m *metrics.Metrics) prometheus.Counter { return m.LeaseRenewed })
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
