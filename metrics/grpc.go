package metrics

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// grpcMetrics are go-grpc-prometheus's server metrics, which etcd
// exports: the same names, labels and label values; plus etcd's
// etcd_server_client_requests_total.
type grpcMetrics struct {
	started, handled, msgRecv, msgSent *prometheus.CounterVec
	handling                           *prometheus.HistogramVec // nil unless extensive
	clientRequests                     *prometheus.CounterVec

	// The children of the vectors are looked up once per method and
	// client version, not on every RPC (a vector's lookup hashes the
	// labels and takes a read lock).
	methods  sync.Map // full method + "\x00" + grpc_type -> *methodMetrics
	versions sync.Map // "unary"|"stream" + "\x00" + version -> prometheus.Counter
}

// methodMetrics are one method's children of the vectors.
type methodMetrics struct {
	started, msgRecv, msgSent prometheus.Counter
	handling                  prometheus.Observer // nil unless extensive
	handled                   [codes.Unauthenticated + 1]atomic.Pointer[prometheus.Counter]
	labels                    [3]string
	vec                       *prometheus.CounterVec
}

func newGRPCMetrics(extensive bool) *grpcMetrics {
	l := []string{"grpc_type", "grpc_service", "grpc_method"}
	g := &grpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_started_total", Help: "Total number of RPCs started on the server."}, l),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_handled_total", Help: "Total number of RPCs completed on the server, regardless of success or failure."},
			append(l[:3:3], "grpc_code")),
		msgRecv: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_msg_received_total", Help: "Total number of RPC stream messages received on the server."}, l),
		msgSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_msg_sent_total", Help: "Total number of gRPC stream messages sent by the server."}, l),
		clientRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_server_client_requests_total", Help: "The total number of client requests per client version."},
			[]string{"type", "client_api_version"}),
	}
	if extensive {
		g.handling = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "grpc_server_handling_seconds",
			Help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.", Buckets: prometheus.DefBuckets}, l)
	}
	return g
}

func (g *grpcMetrics) register(reg *prometheus.Registry) {
	reg.MustRegister(g.started, g.handled, g.msgRecv, g.msgSent, g.clientRequests)
	if g.handling != nil {
		reg.MustRegister(g.handling)
	}
}

// method returns the children for a method called as typ.
func (g *grpcMetrics) method(full, typ string) *methodMetrics {
	key := full + "\x00" + typ
	if v, ok := g.methods.Load(key); ok {
		return v.(*methodMetrics)
	}
	service, method := split(full)
	mm := &methodMetrics{
		started: g.started.WithLabelValues(typ, service, method),
		msgRecv: g.msgRecv.WithLabelValues(typ, service, method),
		msgSent: g.msgSent.WithLabelValues(typ, service, method),
		labels:  [3]string{typ, service, method},
		vec:     g.handled,
	}
	if g.handling != nil {
		mm.handling = g.handling.WithLabelValues(typ, service, method)
	}
	v, _ := g.methods.LoadOrStore(key, mm)
	return v.(*methodMetrics)
}

// InitializeGRPC makes every series of every method the server has, at
// zero, as go-grpc-prometheus's InitializeMetrics does for etcd: a
// dashboard's failed-RPC rate or active-stream count then reads 0 rather
// than "no data" before the first failure or the first stream's end, and
// a rate sees the first one.
func (m *Metrics) InitializeGRPC(services map[string]grpc.ServiceInfo) {
	for service, info := range services {
		for _, mi := range info.Methods {
			typ := "unary"
			switch {
			case mi.IsClientStream && mi.IsServerStream:
				typ = "bidi_stream"
			case mi.IsClientStream:
				typ = "client_stream"
			case mi.IsServerStream:
				typ = "server_stream"
			}
			mm := m.grpc.method("/"+service+"/"+mi.Name, typ)
			for code := range mm.handled {
				mm.counter(codes.Code(code))
			}
		}
	}
}

// counter returns the handled counter of code, made on first use.
func (mm *methodMetrics) counter(code codes.Code) prometheus.Counter {
	if int(code) >= len(mm.handled) {
		return mm.vec.WithLabelValues(mm.labels[0], mm.labels[1], mm.labels[2], code.String())
	}
	c := mm.handled[code].Load()
	if c == nil {
		child := mm.vec.WithLabelValues(mm.labels[0], mm.labels[1], mm.labels[2], code.String())
		c = &child
		mm.handled[code].Store(c) // every writer stores the same child
	}
	return *c
}

// done counts a finished RPC under its status code.
func (mm *methodMetrics) done(err error, start time.Time) {
	mm.counter(status.Code(err)).Inc()
	if mm.handling != nil {
		mm.handling.Observe(time.Since(start).Seconds())
	}
}

// clientRequest counts a request by the client-api-version metadata
// clientv3 sends ("unknown" without it), as etcd does.
func (g *grpcMetrics) clientRequest(ctx context.Context, typ string) {
	ver := "unknown"
	if vs := metadata.ValueFromIncomingContext(ctx, rpctypes.MetadataClientAPIVersionKey); len(vs) > 0 {
		ver = vs[0]
	}
	key := typ + "\x00" + ver
	v, ok := g.versions.Load(key)
	if !ok {
		v, _ = g.versions.LoadOrStore(key, g.clientRequests.WithLabelValues(typ, ver))
	}
	v.(prometheus.Counter).Inc()
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

// UnaryInterceptor counts unary RPCs.
func (m *Metrics) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	mm := m.grpc.method(info.FullMethod, "unary")
	start := time.Now()
	m.grpc.clientRequest(ctx, "unary")
	mm.started.Inc()
	mm.msgRecv.Inc()
	resp, err := handler(ctx, req)
	if err == nil {
		mm.msgSent.Inc()
	}
	mm.done(err, start)
	return resp, err
}

// StreamInterceptor counts streams and their messages.
func (m *Metrics) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	mm := m.grpc.method(info.FullMethod, streamType(info))
	start := time.Now()
	m.grpc.clientRequest(ss.Context(), "stream")
	mm.started.Inc()
	err := handler(srv, &countingStream{ServerStream: ss, recv: mm.msgRecv, sent: mm.msgSent})
	mm.done(err, start)
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
