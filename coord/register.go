package coord

import (
	"context"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/cairnkv/cairn/api/v3electionpb"
	"github.com/cairnkv/cairn/api/v3lockpb"
)

// Register adds the Lock and Election services to gs. Call it before gs
// serves anything; close the returned Closer when gs stops. identity
// gives, for an incoming call, the metadata that says who is calling
// (its token, say), which every KV and lease call the services make for
// it carries, so they run with the caller's permissions as in etcd.
func Register(gs *grpc.Server, identity func(ctx context.Context) metadata.MD) io.Closer {
	c := &client{gs: gs, l: &loopback{conns: make(chan net.Conn), done: make(chan struct{})}, identity: identity}
	v3lockpb.RegisterLockServer(gs, &lockServer{c: c})
	v3electionpb.RegisterElectionServer(gs, &electionServer{c: c})
	return c
}
