package coord

import (
	"io"
	"net"

	"google.golang.org/grpc"

	"github.com/cairnkv/cairn/api/v3electionpb"
	"github.com/cairnkv/cairn/api/v3lockpb"
)

// Register adds the Lock and Election services to gs. Call it before gs
// serves anything; close the returned Closer when gs stops.
func Register(gs *grpc.Server) io.Closer {
	c := &client{gs: gs, l: &loopback{conns: make(chan net.Conn), done: make(chan struct{})}}
	v3lockpb.RegisterLockServer(gs, &lockServer{c: c})
	v3electionpb.RegisterElectionServer(gs, &electionServer{c: c})
	return c
}
