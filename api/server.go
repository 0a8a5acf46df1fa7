// Package api serves etcd's v3 gRPC API (KV, Watch, Lease, Cluster,
// Maintenance) on the client port, plus the small HTTP endpoints etcd
// serves beside it (/health, /version). It decodes and validates each
// request, maps it to the member (a Put becomes a proposal, a Range a
// local read after a ReadIndex), and encodes the answer with etcd's
// response headers and error codes.
//
// It never writes storage directly and never orders writes: every change
// goes through Member.Propose. Validation errors use the exact gRPC codes
// and strings of go.etcd.io/etcd/api/v3/v3rpc/rpctypes.
package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/cairnkv/cairn/apply"
	"github.com/cairnkv/cairn/audit"
	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/coord"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/metrics"
	"github.com/cairnkv/cairn/mvcc"
)

// MemberStatus is what Maintenance.Status reports about the member.
type MemberStatus struct {
	Leader       uint64
	RaftIndex    uint64
	RaftTerm     uint64
	AppliedIndex uint64
	DBSize       int64
	DBSizeInUse  int64
	DBSizeQuota  int64
	Errors       []string
}

// Member is what the API needs from the running member.
type Member interface {
	ClusterID() uint64
	MemberID() uint64
	Term() uint64
	Store() *mvcc.Store
	Lessor() *lease.Lessor
	Alarms() *apply.Alarms
	Members() []*pb.Member
	Status() MemberStatus
	// Propose sends req through the log and returns the applied result.
	Propose(ctx context.Context, req *pb.InternalRaftRequest) (*apply.Result, error)
	// LinearizableRead returns once a local read would be linearizable.
	LinearizableRead(ctx context.Context) error
	NewLeaseID() int64
	// QuotaExceeded reports whether writing cost more bytes would pass
	// the space quota.
	QuotaExceeded(cost int) bool
	// Defragment returns the space of deleted data to the file system.
	Defragment() error
	// SnapshotFile writes a consistent snapshot of the whole member to a
	// new temporary file, for Maintenance.Snapshot: its path, the store's
	// revision in it, and a function that removes the file.
	SnapshotFile() (path string, rev int64, remove func(), err error)

	// RenewLease and LeaseTimeToLive are answered by the leader, which
	// alone keeps lease deadlines.
	RenewLease(ctx context.Context, id int64) (ttl int64, err error)
	LeaseTimeToLive(ctx context.Context, id int64) (granted, remaining int64, err error)

	// Membership changes and leadership transfer.
	AddMember(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, error)
	RemoveMember(ctx context.Context, id uint64) error
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) error
	PromoteMember(ctx context.Context, id uint64) (*pb.Member, error)
	MoveLeader(ctx context.Context, target uint64) error
	// Downgrade validates, enables or cancels a downgrade and returns
	// the cluster version ("3.7"); ClusterVersion is the cluster's
	// version ("3.7.0") and DowngradeInfo its downgrade state.
	Downgrade(ctx context.Context, action pb.DowngradeRequest_DowngradeAction, target string) (string, error)
	ClusterVersion() string
	DowngradeInfo() *pb.DowngradeInfo
	// IsLearner reports whether this member is a learner.
	IsLearner() bool
	// Leader is the current leader's member ID, 0 while there is none.
	Leader() uint64
	// Auth is the member's users, roles and tokens.
	Auth() *auth.Store
}

// Options tune the API.
type Options struct {
	MaxRequestBytes int
	MaxTxnOps       int
	// ProgressNotifyInterval is how often watchers that asked for
	// progress_notify get one (etcd's default: 10 minutes).
	ProgressNotifyInterval time.Duration
	// EnablePprof serves net/http/pprof under /debug/pprof/ on the
	// client port, as etcd's --enable-pprof does.
	EnablePprof bool
	// ElectionTimeout paces the check that ends require-leader streams
	// on a member without a leader.
	ElectionTimeout time.Duration
	// ClientCertAuth lets a verified client certificate's common name
	// stand for the user when a request has no token (--client-cert-auth).
	ClientCertAuth bool
	// Audit, when not nil, receives a line per request (see audit.go).
	Audit *audit.Log
	// Metrics, when not nil, counts requests and serves /metrics.
	Metrics *metrics.Metrics
	// DisableGateway turns off the JSON gateway under /v3/
	// (--enable-grpc-gateway=false).
	DisableGateway bool
	// Console serves the web console (package console) under /ui/ next
	// to the gateway (--console; never without the gateway). ConsoleTLS
	// is how its status relay dials other members' https client URLs:
	// the client certificate, verifying theirs.
	Console    bool
	ConsoleTLS *tls.Config
	// MaxConcurrentStreams bounds each client connection's streams
	// (--max-concurrent-streams; 0 is unbounded).
	MaxConcurrentStreams uint32
	// KeepaliveMinTime, KeepaliveInterval and KeepaliveTimeout are etcd's
	// --grpc-keepalive-* settings (0 leaves gRPC's default).
	KeepaliveMinTime, KeepaliveInterval, KeepaliveTimeout time.Duration
	Logger                                                *slog.Logger
}

// streamWorkers is how many goroutines serve gRPC requests before more
// are started on demand.
const streamWorkers = 64

// grpcOverheadBytes is the slack etcd allows over --max-request-bytes for
// the gRPC envelope.
const grpcOverheadBytes = 512 * 1024

// Server serves the client API.
type Server struct {
	m    Member
	opts Options
	lg   *slog.Logger
	grpc *grpc.Server

	leaderStreams leaderStreams
	stopc         chan struct{} // closed by Stop; ends monitorLeader

	mu     sync.Mutex
	closed bool
	https  []*http.Server
	conns  []io.Closer
}

// NewServer builds the API for m.
func NewServer(m Member, opts Options) *Server {
	if opts.ProgressNotifyInterval == 0 {
		opts.ProgressNotifyInterval = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{m: m, opts: opts, lg: opts.Logger, stopc: make(chan struct{})}
	s.leaderStreams.streams = map[*leaderStream]struct{}{}
	go s.monitorLeader(s.stopc)
	streams := opts.MaxConcurrentStreams
	if streams == 0 {
		streams = 1<<32 - 1
	}
	unary := []grpc.UnaryServerInterceptor{s.auditUnary, s.guardUnary}
	stream := []grpc.StreamServerInterceptor{s.auditStream, s.guardStream}
	var statsOpts []grpc.ServerOption
	if opts.Metrics != nil {
		unary = append([]grpc.UnaryServerInterceptor{opts.Metrics.UnaryInterceptor}, unary...)
		stream = append([]grpc.StreamServerInterceptor{opts.Metrics.StreamInterceptor}, stream...)
		statsOpts = append(statsOpts, grpc.StatsHandler(opts.Metrics.StatsHandler()))
	}
	gopts := []grpc.ServerOption{
		grpc.Creds(tlsPassthrough{}),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(opts.MaxRequestBytes + grpcOverheadBytes),
		grpc.MaxSendMsgSize(1<<31 - 1),
		grpc.MaxConcurrentStreams(streams),
		// Serve requests on long-lived goroutines whose stacks have
		// already grown, instead of a new goroutine per request (stack
		// growth was 7% of a put's CPU).
		grpc.NumStreamWorkers(streamWorkers),
	}
	if opts.KeepaliveMinTime > 0 {
		// etcd forbids pings without a stream; Cairn allows them, so a
		// client with PermitWithoutStream is never sent away.
		gopts = append(gopts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: opts.KeepaliveMinTime, PermitWithoutStream: true}))
	}
	if opts.KeepaliveInterval > 0 && opts.KeepaliveTimeout > 0 {
		gopts = append(gopts, grpc.KeepaliveParams(keepalive.ServerParameters{Time: opts.KeepaliveInterval, Timeout: opts.KeepaliveTimeout}))
	}
	s.grpc = grpc.NewServer(append(gopts, statsOpts...)...)
	pb.RegisterKVServer(s.grpc, &kvServer{s: s})
	pb.RegisterWatchServer(s.grpc, &watchServer{s: s})
	pb.RegisterLeaseServer(s.grpc, &leaseServer{s: s})
	pb.RegisterMaintenanceServer(s.grpc, &maintenanceServer{s: s})
	pb.RegisterClusterServer(s.grpc, &clusterServer{s: s})
	pb.RegisterAuthServer(s.grpc, &authServer{s: s})
	// Lock and Election are clients of the services above (package coord).
	s.conns = append(s.conns, coord.Register(s.grpc, identity))
	if opts.Metrics != nil {
		opts.Metrics.InitializeGRPC(s.grpc.GetServiceInfo())
	}
	return s
}

// Traffic is what a client listener serves.
type Traffic int

const (
	// GRPCAndHTTP serves gRPC and HTTP on one port, told apart by the
	// HTTP/2 connection preface (etcd's default).
	GRPCAndHTTP Traffic = iota
	// GRPCOnly serves only gRPC: etcd's --listen-client-urls once
	// --listen-client-http-urls is set.
	GRPCOnly
	// HTTPOnly serves only HTTP (the gateway, /health, /version and
	// pprof): etcd's --listen-client-http-urls.
	HTTPOnly
)

func (t Traffic) String() string {
	switch t {
	case GRPCOnly:
		return "grpc"
	case HTTPOnly:
		return "http"
	}
	return "grpc+http"
}

// Listener is a client listener and how to serve it.
type Listener struct {
	net.Listener
	Traffic Traffic
	// Secure is whether the listener speaks TLS (only reported in logs).
	Secure bool
	// GatewayAddr is the gRPC listener the HTTP gateway calls: the
	// listener itself when nil. GatewayTLS dials it (nil: plaintext).
	GatewayAddr net.Addr
	GatewayTLS  *tls.Config
}

// Serve serves gRPC and HTTP on l until Stop.
func (s *Server) Serve(l net.Listener) { s.ServeClient(Listener{Listener: l}) }

// ServeClient serves l as its Traffic says until Stop.
func (s *Server) ServeClient(l Listener) {
	grpcL := newChanListener(l.Addr())
	httpL := newChanListener(l.Addr())
	var wg sync.WaitGroup
	if l.Traffic != HTTPOnly {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.grpc.Serve(grpcL) }()
	}
	if l.Traffic != GRPCOnly {
		gwAddr := l.GatewayAddr
		if gwAddr == nil {
			gwAddr = l.Addr()
		}
		handler, conn, err := s.httpHandler(gwAddr, l.GatewayTLS)
		if err != nil {
			s.lg.Error("api: cannot start the JSON gateway", "address", l.Addr().String(), "err", err)
			handler = http.NotFoundHandler()
		}
		hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		if !s.track(hs, conn) {
			grpcL.Close()
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = hs.Serve(httpL) }()
	}
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			break
		}
		switch l.Traffic {
		case GRPCOnly:
			go grpcL.deliver(c)
		case HTTPOnly:
			go httpL.deliver(c)
		default:
			go route(c, grpcL, httpL, s.logRejected)
		}
	}
	grpcL.Close()
	httpL.Close()
	wg.Wait()
}

// logRejected logs a connection refused at the TLS handshake (untrusted,
// expired or revoked certificate, plaintext on a TLS port), with etcd's
// words.
func (s *Server) logRejected(c net.Conn, err error) {
	s.lg.Warn("rejected connection on client endpoint", "remote-addr", c.RemoteAddr().String(), "error", err.Error())
}

// track registers hs (and the gateway's connection) to be closed by Stop;
// false if Stop has already run, and then closes conn.
func (s *Server) track(hs *http.Server, conn io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if conn != nil {
			conn.Close()
		}
		return false
	}
	s.https = append(s.https, hs)
	if conn != nil {
		s.conns = append(s.conns, conn)
	}
	return true
}

// ServeHealth serves only /metrics, /health, /livez and /readyz on l
// (etcd's --listen-metrics-urls) until Stop.
func (s *Server) ServeHealth(l net.Listener) {
	mux := http.NewServeMux()
	s.healthHandlers(mux)
	s.metricsHandler(mux)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if s.track(hs, nil) {
		_ = hs.Serve(l)
	}
}

// Stop closes every connection and stream.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stopc)
	https, conns := s.https, s.conns
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	s.grpc.Stop()
	for _, hs := range https {
		hs.Close()
	}
}

// A learner serves only serializable ranges, Status and Snapshot, as in
// etcd; everything else gets "rpc not supported for learner" so clients
// move to a voting member.
//
// While a CORRUPT alarm is raised, only Status, Alarm and MemberList are
// served (the operator's way to look and to disarm), as etcd refuses
// everything else with "corrupt cluster".
func (s *Server) guardUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.m.Alarms().Corrupt() {
		switch req.(type) {
		case *pb.StatusRequest, *pb.AlarmRequest, *pb.MemberListRequest, *pb.HashKVRequest:
		default:
			return nil, rpctypes.ErrGRPCCorrupt
		}
	}
	if requiresLeader(ctx) && s.m.Leader() == 0 {
		return nil, rpctypes.ErrGRPCNoLeader
	}
	if err := s.authorizeMethod(ctx, info.FullMethod, req); err != nil {
		return nil, err
	}
	if s.m.IsLearner() {
		switch r := req.(type) {
		case *pb.StatusRequest:
		case *pb.RangeRequest:
			if !r.Serializable {
				return nil, rpctypes.ErrGRPCNotSupportedForLearner
			}
		default:
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
	}
	return handler(ctx, req)
}

func (s *Server) guardStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if s.m.Alarms().Corrupt() {
		return rpctypes.ErrGRPCCorrupt
	}
	if s.m.IsLearner() && info.FullMethod != "/etcdserverpb.Maintenance/Snapshot" {
		return rpctypes.ErrGRPCNotSupportedForLearner
	}
	if err := s.authorizeMethod(ss.Context(), info.FullMethod, nil); err != nil {
		return err
	}
	ss, done, err := s.watchLeader(ss)
	if err != nil {
		return err
	}
	defer done()
	return handler(srv, ss)
}

var http2Preface = []byte("PRI * HTTP/2.0")

func route(c net.Conn, grpcL, httpL *chanListener, rejected func(net.Conn, error)) {
	br := bufio.NewReaderSize(c, 64)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	head, err := br.Peek(len(http2Preface))
	_ = c.SetReadDeadline(time.Time{})
	if err != nil && len(head) == 0 {
		if rejected != nil && tlsConnOf(c) != nil && !errors.Is(err, io.EOF) {
			rejected(c, err)
		}
		c.Close()
		return
	}
	pc := &peekedConn{Conn: c, r: br}
	if bytes.Equal(head, http2Preface) {
		grpcL.deliver(pc)
	} else {
		httpL.deliver(pc)
	}
}

type peekedConn struct {
	net.Conn
	r io.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by route.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// header returns a response header for this member; rev 0 means the
// store's current revision.
func (s *Server) header(rev int64) *pb.ResponseHeader {
	if rev == 0 {
		rev = s.m.Store().Rev()
	}
	return &pb.ResponseHeader{
		ClusterId: s.m.ClusterID(),
		MemberId:  s.m.MemberID(),
		Revision:  rev,
		RaftTerm:  s.m.Term(),
	}
}

// fill completes a header built by a lower layer.
func (s *Server) fill(h *pb.ResponseHeader) *pb.ResponseHeader {
	if h == nil {
		return s.header(0)
	}
	h.ClusterId = s.m.ClusterID()
	h.MemberId = s.m.MemberID()
	h.RaftTerm = s.m.Term()
	if h.Revision == 0 {
		h.Revision = s.m.Store().Rev()
	}
	return h
}
