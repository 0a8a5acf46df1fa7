package api

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// tlsPassthrough is the gRPC server's transport credentials. A client
// listener terminates TLS before route tells gRPC from HTTP, so no
// handshake is left for gRPC to do; this only reports the connection's TLS
// state (completing the handshake if nothing has read yet), so that a
// request's peer carries the client certificate as it
// does under grpc.Creds in etcd (issue 13's certificate users read it).
type tlsPassthrough struct{}

func (tlsPassthrough) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if c.LocalAddr().Network() == "pipe" {
		return c, internalAuthInfo{}, nil
	}
	tc := tlsConnOf(c)
	if tc == nil {
		return c, nil, nil
	}
	// On a gRPC-only listener nothing has read from the connection yet;
	// gRPC's handshake deadline bounds this.
	if err := tc.Handshake(); err != nil {
		return nil, nil, err
	}
	return c, credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (tlsPassthrough) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("api: tlsPassthrough is for serving only")
}

func (tlsPassthrough) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (p tlsPassthrough) Clone() credentials.TransportCredentials { return p }

func (tlsPassthrough) OverrideServerName(string) error { return nil }

// internalAuthInfo marks a connection made in memory by the member's own
// services (package coord); no network connection has it.
type internalAuthInfo struct{}

func (internalAuthInfo) AuthType() string { return "cairn-internal" }

// forwardedCN carries, on an internal connection only, the certificate
// user of the call a service is making requests for.
const forwardedCN = "cairn-forwarded-cn"

// identity is the metadata that says who makes the call in ctx, for the
// requests a service makes on its behalf (coord.Register).
func identity(ctx context.Context) metadata.MD {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for _, k := range []string{"token", "authorization"} {
		if v := in.Get(k); len(v) > 0 {
			out.Set(k, v...)
		}
	}
	if cn := ClientCommonName(ctx); cn != "" {
		out.Set(forwardedCN, cn)
	}
	return out
}

// tlsConnOf finds the TLS connection under the wrappers route adds.
func tlsConnOf(c net.Conn) *tls.Conn {
	for {
		switch v := c.(type) {
		case *tls.Conn:
			return v
		case *peekedConn:
			c = v.Conn
		default:
			return nil
		}
	}
}

// gatewayMetadata marks every call the HTTP gateway relays over its
// loopback connection (see markGateway). etcd relies on the
// "grpcgateway-accept" key alone, which is missing when the HTTP request
// has no Accept header; Cairn checks both.
const gatewayMetadata = "cairn-gateway"

// markGateway adds gatewayMetadata to the gateway's outgoing calls.
func markGateway() []grpc.DialOption {
	mark := func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, gatewayMetadata, "1")
	}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(mark(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(mark(ctx), desc, cc, method, opts...)
		}),
	}
}

// ClientCommonName is the common name of the verified client certificate
// the request in ctx arrived with, or "" when there is none. As in etcd, a
// request relayed by the HTTP gateway has none: the gateway dials with the
// member's own certificate, which must never stand for the HTTP caller. (A
// client that sends the gateway's metadata itself only gives up its own
// certificate identity.)
func ClientCommonName(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return ""
	}
	if _, ok := p.AuthInfo.(internalAuthInfo); ok {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get(forwardedCN); len(v) == 1 {
			return v[0]
		}
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ""
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && (len(md.Get("grpcgateway-accept")) > 0 || len(md.Get(gatewayMetadata)) > 0) {
		return ""
	}
	for _, chain := range ti.State.VerifiedChains {
		if len(chain) > 0 {
			return chain[0].Subject.CommonName
		}
	}
	return ""
}
