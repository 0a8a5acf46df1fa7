package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	electiongw "github.com/cairnkv/cairn/api/v3electionpb/gw"
	lockgw "github.com/cairnkv/cairn/api/v3lockpb/gw"
)

// httpHandler serves the HTTP endpoints etcd has on its client port: the
// grpc-gateway JSON API under /v3/ (which calls the gRPC services through
// a loopback connection to addr, as etcd's does), /version, /health,
// /livez and /readyz, with --enable-pprof Go's profiles under
// /debug/pprof/, and with --console the web console under /ui/.
func (s *Server) httpHandler(laddr net.Addr, loopback *tls.Config) (http.Handler, io.Closer, error) {
	mux := http.NewServeMux()
	target := "passthrough:///" + laddr.String()
	if laddr.Network() == "unix" {
		target = "unix:" + laddr.String()
	}
	creds := insecure.NewCredentials()
	if loopback != nil {
		creds = credentials.NewTLS(loopback)
	}
	if s.opts.DisableGateway {
		s.versionHandler(mux)
		s.healthHandlers(mux)
		s.metricsHandler(mux)
		s.pprofHandlers(mux)
		return mux, nil, nil
	}
	conn, err := grpc.NewClient(target, append(markGateway(),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<31-1)))...)
	if err != nil {
		return nil, nil, err
	}
	gwmux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard,
		&runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}}))
	ctx := context.Background()
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		gw.RegisterKVHandler, gw.RegisterWatchHandler, gw.RegisterLeaseHandler,
		gw.RegisterClusterHandler, gw.RegisterMaintenanceHandler, gw.RegisterAuthHandler,
		lockgw.RegisterLockHandler, electiongw.RegisterElectionHandler,
	} {
		if err := register(ctx, gwmux, conn); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	mux.Handle("/v3/", gwmux)
	s.consoleHandler(mux)
	s.versionHandler(mux)
	s.healthHandlers(mux)
	s.metricsHandler(mux)
	s.pprofHandlers(mux)
	// Like etcd, accept the older /v3beta and /v3alpha prefixes.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, old := range []string{"/v3beta/", "/v3alpha/"} {
			if strings.HasPrefix(r.URL.Path, old) {
				r.URL.Path = "/v3/" + strings.TrimPrefix(r.URL.Path, old)
			}
		}
		mux.ServeHTTP(w, r)
	}), conn, nil
}

// metricsHandler adds /metrics (Prometheus' text format), as etcd serves
// it on its client and metrics URLs.
func (s *Server) metricsHandler(mux *http.ServeMux) {
	if s.opts.Metrics != nil {
		mux.Handle("/metrics", s.opts.Metrics.Handler())
	}
}

// pprofHandlers adds Go's profiles under /debug/pprof/ with --enable-pprof.
func (s *Server) pprofHandlers(mux *http.ServeMux) {
	if !s.opts.EnablePprof {
		return
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// versionHandler adds /version to mux.
func (s *Server) versionHandler(mux *http.ServeMux) {
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(version.Versions{
			Server:  version.Version,
			Cluster: s.m.ClusterVersion(),
			Storage: StorageVersion,
		})
	})
}
