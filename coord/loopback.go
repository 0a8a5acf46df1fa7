package coord

import (
	"context"
	"net"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// loopback is a net.Listener whose connections are in-memory pipes dialed
// by the services' own client. Going through memory rather than the
// client port keeps the services working whatever the port's TLS or
// address, as etcd's in-process v3client does.
type loopback struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *loopback) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *loopback) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *loopback) Addr() net.Addr { return loopbackAddr{} }

type loopbackAddr struct{}

func (loopbackAddr) Network() string { return "pipe" }
func (loopbackAddr) String() string  { return "cairn-coord" }

// dial hands one end of a pipe to the server and returns the other.
func (l *loopback) dial(ctx context.Context, _ string) (net.Conn, error) {
	srv, cli := net.Pipe()
	select {
	case l.conns <- srv:
		return cli, nil
	case <-l.done:
		srv.Close()
		cli.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		srv.Close()
		cli.Close()
		return nil, ctx.Err()
	}
}

// client is the services' connection to their own gRPC server. The server
// starts serving the loopback on first use, not at Register: gRPC refuses
// new services once a Serve has begun, and the caller may still be
// registering them.
type client struct {
	gs       *grpc.Server
	l        *loopback
	identity func(ctx context.Context) metadata.MD
	once     sync.Once
	c        *clientv3.Client
	err      error
}

// forward adds the incoming caller's identity to an outgoing call.
func (c *client) forward(ctx context.Context) context.Context {
	if c.identity == nil {
		return ctx
	}
	md := c.identity(ctx)
	if len(md) == 0 {
		return ctx
	}
	out, _ := metadata.FromOutgoingContext(ctx)
	return metadata.NewOutgoingContext(ctx, metadata.Join(out, md))
}

func (c *client) get() (*clientv3.Client, error) {
	c.once.Do(func() {
		go func() { _ = c.gs.Serve(c.l) }()
		c.c, c.err = clientv3.New(clientv3.Config{
			Endpoints: []string{"cairn-coord"},
			DialOptions: []grpc.DialOption{
				grpc.WithContextDialer(c.l.dial),
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
					return invoker(c.forward(ctx), method, req, reply, cc, opts...)
				}),
				grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
					return streamer(c.forward(ctx), desc, cc, method, opts...)
				}),
			},
			MaxCallRecvMsgSize: 1<<31 - 1,
			// Errors reach the RPC caller; the client has nothing to add.
			Logger: zap.NewNop(),
		})
	})
	return c.c, c.err
}

// Close stops the client and the loopback.
func (c *client) Close() error {
	c.l.Close()
	c.once.Do(func() {})
	if c.c != nil {
		return c.c.Close()
	}
	return nil
}
