package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/cairnkv/cairn/internal/testpki"
	"github.com/cairnkv/cairn/tlsconfig"
)

// TestClientCommonNameThroughTheRouter: behind a TLS listener and route,
// a gRPC handler sees the verified client certificate's CN; a call marked
// as relayed by the gateway, or made over a plaintext listener, sees none.
func TestClientCommonNameThroughTheRouter(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "ca")
	caFile := filepath.Join(dir, "ca.crt")
	testpki.WriteBundle(t, caFile, ca)
	srv := ca.Issue("server", "server", testpki.Opts{})
	user := ca.Issue("alice", "alice", testpki.Opts{NoSANs: true})
	m, err := tlsconfig.Load(tlsconfig.Info{CertFile: srv.CertFile, KeyFile: srv.KeyFile, TrustedCAFile: caFile,
		ClientCertAuth: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}

	seen := make(chan string, 1)
	gs := grpc.NewServer(grpc.Creds(tlsPassthrough{}), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			seen <- ClientCommonName(ctx)
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	t.Cleanup(gs.Stop)
	serve := func(l net.Listener) {
		grpcL, httpL := newChanListener(l.Addr()), newChanListener(l.Addr())
		t.Cleanup(func() { l.Close(); grpcL.Close(); httpL.Close() })
		go func() { _ = gs.Serve(grpcL) }()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go route(c, grpcL, httpL, nil)
			}
		}()
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(tls.NewListener(raw, m.ServerConfig("h2")))
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(plain)

	pool := x509.NewCertPool()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	cert, err := tls.LoadX509KeyPair(user.CertFile, user.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(raw.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	check := func(ctx context.Context, conn *grpc.ClientConn, want string) {
		t.Helper()
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; got != want {
			t.Fatalf("ClientCommonName = %q, want %q", got, want)
		}
	}
	ctx := t.Context()
	check(ctx, conn, "alice")
	check(metadata.AppendToOutgoingContext(ctx, "grpcgateway-accept", "*/*"), conn, "")
	check(metadata.AppendToOutgoingContext(ctx, gatewayMetadata, "1"), conn, "")

	pconn, err := grpc.NewClient(plain.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer pconn.Close()
	check(ctx, pconn, "")
}
