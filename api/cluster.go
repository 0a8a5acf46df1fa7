package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

type clusterServer struct {
	pb.UnimplementedClusterServer
	s *Server
}

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if err := c.s.m.LinearizableRead(ctx); err != nil {
			return nil, toGRPC(err)
		}
	}
	// etcd's cluster service headers carry no revision.
	hdr := c.s.header(0)
	hdr.Revision = 0
	return &pb.MemberListResponse{Header: hdr, Members: c.s.m.Members()}, nil
}
