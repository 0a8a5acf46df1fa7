package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// grpcMetrics are go-grpc-prometheus's server metrics, which etcd
// exports: the same names, labels and label values.
type grpcMetrics struct {
	started, handled, msgRecv, msgSent *prometheus.CounterVec
	handling                           *prometheus.HistogramVec // nil unless extensive
}

func newGRPCMetrics(extensive bool) *grpcMetrics {
	l := []string{"grpc_type", "grpc_service", "grpc_method"}
	g := &grpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_started_total", Help: "Total number of RPCs started on the server."}, l),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_handled_total", Help: "Total number of RPCs completed on the server, regardless of success or failure."},
			append(l[:3:3], "grpc_code")),
		msgRecv: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_msg_received_total", Help: "Total number of RPC stream messages received on the server."}, l),
		msgSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_msg_sent_total", Help: "Total number of gRPC stream messages sent by the server."}, l),
	}
	if extensive {
		g.handling = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "grpc_server_handling_seconds",
			Help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.", Buckets: prometheus.DefBuckets}, l)
	}
	return g
}

func (g *grpcMetrics) register(reg *prometheus.Registry) {
	reg.MustRegister(g.started, g.handled, g.msgRecv, g.msgSent)
	if g.handling != nil {
		reg.MustRegister(g.handling)
	}
}

// split turns "/etcdserverpb.KV/Range" into its service and method.
func split(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	service, method, _ = strings.Cut(full, "/")
	return service, method
}

func streamType(info *grpc.StreamServerInfo) string {
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi_stream"
	case info.IsClientStream:
		return "client_stream"
	}
	return "server_stream"
}

func (g *grpcMetrics) done(typ, service, method string, err error, start time.Time) {
	g.handled.WithLabelValues(typ, service, method, status.Code(err).String()).Inc()
	if g.handling != nil {
		g.handling.WithLabelValues(typ, service, method).Observe(time.Since(start).Seconds())
	}
}

// UnaryInterceptor counts unary RPCs.
func (m *Metrics) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	g := m.grpc
	service, method := split(info.FullMethod)
	start := time.Now()
	g.started.WithLabelValues("unary", service, method).Inc()
	g.msgRecv.WithLabelValues("unary", service, method).Inc()
	resp, err := handler(ctx, req)
	if err == nil {
		g.msgSent.WithLabelValues("unary", service, method).Inc()
	}
	g.done("unary", service, method, err, start)
	return resp, err
}

// StreamInterceptor counts streams and their messages.
func (m *Metrics) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	g := m.grpc
	typ := streamType(info)
	service, method := split(info.FullMethod)
	start := time.Now()
	g.started.WithLabelValues(typ, service, method).Inc()
	err := handler(srv, &countingStream{ServerStream: ss,
		recv: g.msgRecv.WithLabelValues(typ, service, method), sent: g.msgSent.WithLabelValues(typ, service, method)})
	g.done(typ, service, method, err, start)
	return err
}

type countingStream struct {
	grpc.ServerStream
	recv, sent prometheus.Counter
}

func (s *countingStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.sent.Inc()
	}
	return err
}

func (s *countingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.recv.Inc()
	}
	return err
}

// StatsHandler counts the client bytes of every RPC
// (etcd_network_client_grpc_{sent,received}_bytes_total).
func (m *Metrics) StatsHandler() stats.Handler { return clientBytes{m} }

type clientBytes struct{ m *Metrics }

func (clientBytes) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (clientBytes) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (clientBytes) HandleConn(context.Context, stats.ConnStats)                       {}

func (c clientBytes) HandleRPC(_ context.Context, s stats.RPCStats) {
	switch p := s.(type) {
	case *stats.InPayload:
		c.m.ClientRecvBytes.Add(float64(p.WireLength))
	case *stats.OutPayload:
		c.m.ClientSentBytes.Add(float64(p.WireLength))
	}
}
