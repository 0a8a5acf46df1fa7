// Package server runs one Cairn member: it opens the storage engine, the
// store, the lease set and the Raft node, runs the apply loop that feeds
// committed entries to the state machine, and serves the client API. It
// owns the wiring and the member's life cycle, not the logic of any layer:
// requests are decoded in api, ordered by raftnode, applied by apply,
// stored by mvcc and storage.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/api"
	"github.com/cairnkv/cairn/apply"
	"github.com/cairnkv/cairn/audit"
	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/logging"
	"github.com/cairnkv/cairn/membership"
	"github.com/cairnkv/cairn/metrics"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/raftnode"
	"github.com/cairnkv/cairn/storage"
	"github.com/cairnkv/cairn/transport"
)

// Server is a running member.
type Server struct {
	cfg  *Config
	lg   *slog.Logger
	info *clusterInfo

	eng     storage.Engine
	store   *mvcc.Store
	lessor  *lease.Lessor
	alarms  *apply.Alarms
	auth    *auth.Store
	audit   *audit.Log
	metrics *metrics.Metrics

	pendingProposals atomic.Int64 // proposals waiting to be applied
	members          *membership.Cluster
	applier          *apply.Applier
	node             *raftnode.Node
	transport        *transport.Transport
	// peerClient makes member-to-member calls (lease forwarding).
	peerClient *http.Client
	peersMu    sync.Mutex
	knownPeers map[uint64]bool
	// learner caches whether this member is a learner (checked on every
	// request).
	learner atomic.Bool
	// leaderElectedAt is when this member last saw a leader elected
	// (nanoseconds since monoEpoch, so monotonic: a step of the wall clock
	// cannot move it), for etcd's "previous leader failure" timeout.
	leaderElectedAt atomic.Int64
	// propSem bounds forwarded proposals waiting to step into raft.
	propSem chan struct{}
	// handingOver is set while a stopping leader hands leadership over;
	// the proposals followers forward meanwhile are held in held.
	handingOver atomic.Bool
	heldMu      sync.Mutex
	held        []*raftpb.Message
	// applyObs caches the apply-duration histograms by op and outcome
	// (apply loop only).
	applyObs map[applyKey]prometheus.Observer
	// running is node once it has started, for the transport's callbacks,
	// which may come from its goroutines while node is being assigned.
	running atomic.Pointer[raftnode.Node]

	ids     *idGenerator
	waits   *waitRegistry
	applied *appliedNotifier
	reads   *readLoop

	api       *api.Server
	listeners []net.Listener

	stopc    chan struct{}
	donec    chan struct{}
	readyc   chan struct{} // closed once publish has recorded the member
	wg       sync.WaitGroup
	stopOnce sync.Once
	errMu    sync.Mutex
	err      error
	failedc  chan struct{} // closed by the first fail
	// engineFailed receives the engine's first failed flush.
	engineFailed chan error
}

// Start opens (or creates) the member's data and starts serving. It
// returns once the client listeners are open.
func Start(cfg *Config) (*Server, error) {
	s, err := start(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func start(cfg *Config) (_ *Server, err error) {
	lg := cfg.Logger
	if lg == nil {
		l, err := logging.New(logging.Options{Level: cfg.LogLevel, Outputs: cfg.LogOutputs, Format: cfg.LogFormat,
			Rotate: cfg.EnableLogRotation, RotationConfig: cfg.LogRotationConfigJSON})
		if err != nil {
			return nil, err
		}
		lg = l.Logger
		// The files stay open for the process's life: the logger is
		// used until the last line it writes.
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxTxnOps == 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	if cfg.QuotaBackendBytes <= 0 {
		cfg.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 100 * time.Millisecond
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = 1000 * time.Millisecond
	}
	if cfg.ElectionTimeout < 5*cfg.HeartbeatInterval {
		return nil, fmt.Errorf("server: --election-timeout[%dms] should be at least as 5 times as --heartbeat-interval[%dms]",
			cfg.ElectionTimeout.Milliseconds(), cfg.HeartbeatInterval.Milliseconds())
	}
	switch cfg.SnapshotFormat {
	case "", "etcd", "cairn":
	default:
		return nil, fmt.Errorf("server: unknown --snapshot-format %q (want etcd or cairn)", cfg.SnapshotFormat)
	}
	memberDir := filepath.Join(cfg.DataDir, "member")
	if err := os.MkdirAll(memberDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: create data dir: %w", err)
	}
	// The entries of the data dir and of member/ must be durable before
	// anything acknowledged lives under them: a power cut would otherwise
	// take back the whole directory. Synced on every start, because a
	// process crash after MkdirAll leaves them there but not durable.
	if err := syncDirs(filepath.Dir(filepath.Clean(cfg.DataDir)), cfg.DataDir); err != nil {
		return nil, fmt.Errorf("server: create data dir: %w", err)
	}
	// Snapshots being streamed to clients when the member last stopped.
	if leftovers, _ := filepath.Glob(filepath.Join(memberDir, "snap", "client-*.snapshot")); len(leftovers) > 0 {
		for _, f := range leftovers {
			os.Remove(f)
		}
	}
	walDir := cfg.WALDir
	if walDir == "" {
		walDir = filepath.Join(memberDir, "wal")
	}

	srv := &Server{cfg: cfg, lg: lg, stopc: make(chan struct{}), donec: make(chan struct{}), readyc: make(chan struct{}), failedc: make(chan struct{}), propSem: make(chan struct{}, 1024), engineFailed: make(chan error, 1)}
	// s is not the named result: "return nil, err" must not clear the
	// member that goroutines and hooks started below still use while
	// shutdown stops them.
	s := srv
	defer func() {
		if err != nil {
			srv.shutdown() // stop whatever did start, then report the error
		}
	}()

	engineFailed := func(err error) {
		select {
		case s.engineFailed <- err:
		default:
		}
	}
	onFlushError := func(err error) {
		engineFailed(fmt.Errorf("server: the engine cannot flush its memtables to disk (every acknowledged write is in the WAL: make room or fix the disk, then restart): %w", err))
	}
	onCorruption := func(path string, err error) {
		engineFailed(fmt.Errorf("server: the engine's data is corrupt (a checksum does not hold; the read was refused): replace this member from its peers: %w", err))
	}
	if s.eng, err = storage.OpenPebble(filepath.Join(memberDir, "db"), storage.PebbleOptions{Logger: lg, Split: mvcc.SplitKey, CacheBytes: cfg.StorageCacheBytes, OnFlushError: onFlushError, OnCorruption: onCorruption}); err != nil {
		return nil, err
	}
	// Pebble syncs the directory it keeps its files in, not the entry
	// of that directory in member/.
	if err := syncDirs(memberDir); err != nil {
		return nil, fmt.Errorf("server: sync %s: %w", memberDir, err)
	}
	if s.store, err = mvcc.Open(s.eng, lg); err != nil {
		return nil, err
	}
	minTTL := int64((3*cfg.ElectionTimeout/2 + time.Second - 1) / time.Second)
	if s.lessor, err = lease.New(s.eng, minTTL); err != nil {
		return nil, err
	}
	if s.alarms, err = apply.LoadAlarms(s.eng); err != nil {
		return nil, err
	}
	if s.members, err = membership.Load(s.eng); err == nil {
		s.members.SetMaxLearners(cfg.MaxLearners)
	}
	if err != nil {
		return nil, err
	}
	tokens, err := newTokenProvider(cfg, s.waitAppliedIndex)
	if err != nil {
		return nil, err
	}
	if s.auth, err = auth.Load(s.eng, auth.Options{BcryptCost: cfg.BcryptCost, Tokens: tokens, Logger: lg}); err != nil {
		return nil, err
	}
	if p := s.store.PendingRestore(); p != "" {
		lg.Warn("server: finishing a snapshot restore a crash interrupted", "snapshot", p)
		if err := s.restoreFrom(p); err != nil {
			return nil, err
		}
	}

	if cfg.UnsafeNoFsync {
		lg.Warn("--unsafe-no-fsync is set: the WAL is never fsynced, so a machine crash or power loss can lose acknowledged writes; use it only for tests and throwaway clusters")
	}
	boot, err := s.bootstrap(filepath.Join(memberDir, "cluster.json"), walDir)
	if err != nil {
		return nil, err
	}
	s.noteMembership()
	info := s.info
	s.applier = apply.New(s.store, s.lessor, s.alarms, s.members, s.auth)
	if cfg.ForceNewCluster && s.members.IsRemoved(info.MemberID) {
		// Raft would refuse to add it back, and removing the others
		// would then leave no voter: refuse before the WAL is touched.
		return nil, fmt.Errorf("server: --force-new-cluster: member %x was removed from its cluster; force another member, or restore a snapshot into a new cluster (cairnutl snapshot restore)", info.MemberID)
	}
	s.metrics = metrics.New(cfg.Metrics == "extensive")
	s.applier.OnCommit = func(d time.Duration) { s.metrics.BackendCommit.Observe(d.Seconds()) }
	s.ids = newIDGenerator(info.MemberID, time.Now())
	s.waits = newWaitRegistry()
	s.applied = newAppliedNotifier(s.store.AppliedIndex())
	clientTLS, peerTLS, err := loadTLS(cfg, lg)
	if err != nil {
		return nil, err
	}
	s.peerClient = &http.Client{Timeout: 5 * time.Second}
	var peerDial *tls.Config
	if peerTLS != nil {
		peerDial = peerTLS.ClientConfig()
		s.peerClient.Transport = &http.Transport{Proxy: nil, TLSClientConfig: peerDial, TLSHandshakeTimeout: 5 * time.Second}
	}
	s.transport = transport.New(transport.Config{
		ID:              info.MemberID,
		ClusterID:       info.ClusterID,
		Raft:            (*raftAdapter)(s),
		Snapshots:       snapshotStore{s},
		Logger:          lg,
		TLSClientConfig: peerDial,
		Observer:        peerObserver{m: s.metrics, local: metrics.ID(s.info.MemberID)},
	})
	s.node, err = raftnode.Start(raftnode.Config{
		OnWALSync:     s.observeWALSync,
		UnsafeNoFsync: cfg.UnsafeNoFsync,
		OnHeartbeatLate: func(to uint64, exceeded time.Duration) {
			s.metrics.HeartbeatFailed.Inc()
			s.lg.Warn("leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk",
				"to", fmt.Sprintf("%x", to), "heartbeat-interval", cfg.HeartbeatInterval, "expected-duration", 2*cfg.HeartbeatInterval, "exceeded-duration", exceeded)
		},
		ID:            info.MemberID,
		Peers:         boot.raftPeers,
		Join:          boot.join,
		Transport:     s.transport,
		WALDir:        walDir,
		TickInterval:  cfg.HeartbeatInterval,
		ElectionTicks: int(cfg.ElectionTimeout / cfg.HeartbeatInterval),
		SnapshotCount: cfg.SnapshotCount,
		// etcd's --snapshot-catchup-entries.
		SnapshotCatchUp:      cfg.SnapshotCatchUpEntries,
		SnapshotCatchUpBytes: cfg.SnapshotCatchUpBytes,
		PreVote:              cfg.PreVote,
		Flush:                s.eng.Flush,
		ForceNewCluster:      cfg.ForceNewCluster,
		Applied:              s.store.AppliedIndex(),
		SelfContext:          s.selfContext(),
		ClusterID:            info.ClusterID,
		Logger:               lg,
	})
	if err != nil {
		return nil, err
	}
	if s.node.Forced() {
		// The log now ends with the committed removal of every other
		// member: once they are applied this member is alone, and
		// campaigns at once rather than after an election timeout.
		boot.single = true
	}
	s.running.Store(s.node)
	if si := s.node.SnapshotIndex(); si > s.store.AppliedIndex() {
		// The WAL says a snapshot from the leader was accepted, but the
		// store never finished restoring it (a crash in between): restore
		// it now, before any entry after it is applied.
		lg.Warn("server: finishing the restore of a received snapshot", "snapshot-index", si, "store-applied", s.store.AppliedIndex())
		if err := s.restoreFrom(snapshotStore{s}.path(si)); err != nil {
			return nil, fmt.Errorf("server: the WAL holds snapshot %d but the store is at %d and the snapshot cannot be restored: %w",
				si, s.store.AppliedIndex(), err)
		}
		s.applied.set(s.store.AppliedIndex())
	}
	// Peers and the peer port come after the node exists: the transport
	// hands what it receives straight to it.
	for _, m := range boot.peers {
		if m.ID != info.MemberID {
			s.transport.AddPeer(m.ID, m.PeerURLs)
		}
	}
	for _, u := range cfg.ListenPeerURLs {
		l, err := listen(u, peerTLS, "--peer-cert-file, --peer-key-file", "peer", "http/1.1")
		if err != nil {
			return nil, err
		}
		s.listeners = append(s.listeners, l)
		s.wg.Add(1)
		go s.servePeers(l)
	}

	s.reads = newReadLoop(s)

	s.wg.Add(7)
	go s.watchEngine()
	go s.removalLoop()
	go s.applyLoop()
	go s.leaderLoop()
	go s.leaseExpiryLoop()
	go s.reads.run()
	go s.publish()
	if ac, err := newAutoCompactor(s, cfg.AutoCompactionMode, cfg.AutoCompactionRetention); err != nil {
		return nil, err
	} else if ac != nil {
		s.wg.Add(1)
		go ac.run()
	}
	if cfg.CorruptCheckTime > 0 {
		s.wg.Add(1)
		go s.corruptCheckLoop(cfg.CorruptCheckTime)
	}
	if boot.single {
		s.wg.Add(1)
		go s.campaignAlone()
	}
	if cfg.AutoPromoteLearners {
		s.wg.Add(1)
		go s.autoPromoteLoop()
	}

	backups, err := s.newBackups()
	if err != nil {
		return nil, err
	}
	if backups != nil {
		s.wg.Add(1)
		go s.runBackups(backups)
	}

	if s.audit, err = audit.Open(audit.Config{Path: cfg.AuditLogPath, MaxSizeMB: cfg.AuditLogMaxSizeMB, MaxBackups: cfg.AuditLogMaxBackups,
		Reads: cfg.AuditLogReads, Member: cfg.Name, Logger: lg}); err != nil {
		return nil, fmt.Errorf("server: audit log: %w", err)
	}
	s.registerMetrics()
	if backups != nil {
		s.registerBackupMetrics(backups)
	}
	if cfg.ConsoleOn() && cfg.EnableGRPCGateway {
		lg.Info("serving the web console at /ui/", "listen-client-urls", urlStrings(cfg.ListenClientURLs), "listen-client-http-urls", urlStrings(cfg.ListenClientHTTPURLs))
	}
	s.api = api.NewServer(s, api.Options{
		Audit:           s.audit,
		Metrics:         s.metrics,
		MaxRequestBytes: int(cfg.MaxRequestBytes),
		MaxTxnOps:       int(cfg.MaxTxnOps),
		Logger:          lg,

		ProgressNotifyInterval: cfg.WatchProgressNotifyInterval,
		EnablePprof:            cfg.EnablePprof,
		ElectionTimeout:        cfg.ElectionTimeout,
		ClientCertAuth:         cfg.ClientTLS != nil && cfg.ClientTLS.ClientCertAuth,
		DisableGateway:         !cfg.EnableGRPCGateway,
		Console:                cfg.ConsoleOn(),
		ConsoleTLS:             clientDialTLS(clientTLS),
		MaxConcurrentStreams:   cfg.MaxConcurrentStreams,
		KeepaliveMinTime:       cfg.GRPCKeepAliveMinTime,
		KeepaliveInterval:      cfg.GRPCKeepAliveInterval,
		KeepaliveTimeout:       cfg.GRPCKeepAliveTimeout,
	})
	for _, u := range cfg.ListenMetricsURLs {
		if isSecure(u) && clientTLS == nil {
			return nil, errMetricsTLS
		}
		l, err := listen(u, clientTLS, "--cert-file, --key-file", "metrics", "http/1.1")
		if err != nil {
			return nil, err
		}
		s.listeners = append(s.listeners, l)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.api.ServeHealth(l)
		}()
		lg.Info("server: serving metrics URL (metrics, health, livez, readyz)", "address", u.String())
	}
	ls, err := clientListeners(cfg, clientTLS)
	for _, l := range ls {
		s.listeners = append(s.listeners, l)
	}
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.api.ServeClient(l)
		}()
	}
	s.wg.Add(1)
	go s.announceReady(ls)
	go s.watchNode()
	return s, nil
}

// announceReady logs, once the member has published itself (etcd's
// ReadyNotify), etcd's lines for each client listener: harnesses and
// scripts wait for "ready to serve client requests".
func (s *Server) announceReady(ls []api.Listener) {
	defer s.wg.Done()
	select {
	case <-s.readyc:
	case <-s.stopc:
		return
	}
	for _, l := range ls {
		s.lg.Info("ready to serve client requests")
		msg := "serving client traffic insecurely; this is strongly discouraged!"
		if l.Secure {
			msg = "serving client traffic securely"
		}
		s.lg.Info(msg, "traffic", l.Traffic.String(), "address", l.Addr().String())
	}
}

// watchNode stops the member if the Raft node dies.
func (s *Server) watchNode() {
	select {
	case <-s.node.Done():
		if err := s.node.Err(); err != nil {
			s.fail(err)
		}
	case <-s.stopc:
	}
}

// watchEngine stops the member when the engine finds its data corrupt
// (a block checksum that does not hold: the read that found it fails,
// and no later read is trusted) or cannot flush its memtables (a full or
// failing disk). For the second, nothing acknowledged is at risk:
// the WAL holds every committed entry and is released only past what
// the engine has flushed. But an engine that cannot flush never lets
// the WAL go, its memtables grow until writes stall, and Pebble retries
// the flush in a busy loop; a clean stop with the error (which names
// the table file) is better. Once the disk has room again the member
// restarts and replays its WAL.
func (s *Server) watchEngine() {
	defer s.wg.Done()
	select {
	case err := <-s.engineFailed:
		s.fail(err)
	case <-s.stopc:
	}
}

// fail records a fatal error and stops the member.
func (s *Server) fail(err error) {
	s.errMu.Lock()
	first := s.err == nil
	if first {
		s.err = err
		close(s.failedc)
	}
	s.errMu.Unlock()
	s.lg.Error("server: fatal error, stopping", "err", err)
	go s.Stop()
}

// stopContext is a context cancelled when the member stops (or cancel is
// called), for work that must not outlive it.
func (s *Server) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Failed is closed when a fatal error has begun stopping the member. The
// stop may not finish if what failed is what it waits on (an engine that
// blocks every commit once its disk is full): a process should then exit
// without waiting for Done for ever.
func (s *Server) Failed() <-chan struct{} { return s.failedc }

// Done is closed when the member has stopped.
func (s *Server) Done() <-chan struct{} { return s.donec }

// Err is the error that stopped the member, if any.
func (s *Server) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Stop stops serving, stops the Raft node and closes the store.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.Err() == nil {
			// A failed member hands nothing over: its store may be
			// what failed, and the hand-over keeps it applying.
			s.transferLeadershipOnStop()
		}
		s.shutdown()
		close(s.donec)
	})
	<-s.donec
}

// shutdown stops serving, waits for the member's goroutines and closes
// the node, store and engine, whichever were started.
func (s *Server) shutdown() {
	close(s.stopc)
	if s.api != nil {
		s.api.Stop()
	}
	for _, l := range s.listeners {
		l.Close()
	}
	s.wg.Wait()
	if err := s.audit.Close(); err != nil {
		s.lg.Error("server: close the audit log", "err", err)
	}
	s.closeAll()
}

func (s *Server) closeAll() {
	if s.node != nil {
		s.node.Stop()
	}
	if s.transport != nil {
		s.transport.Stop()
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.eng != nil {
		if err := s.eng.Close(); err != nil {
			s.lg.Error("server: close storage", "err", err)
		}
	}
}

// The api.Member interface.

// ClusterID is the cluster's ID.
func (s *Server) ClusterID() uint64 { return s.info.ClusterID }

// MemberID is this member's ID.
func (s *Server) MemberID() uint64 { return s.info.MemberID }

// Term is the current Raft term.
func (s *Server) Term() uint64 { return s.node.Term() }

// Leader is the current leader's member ID, 0 while there is none.
func (s *Server) Leader() uint64 { return s.node.Lead() }

// Store is the key-value store.
func (s *Server) Store() *mvcc.Store { return s.store }

// Lessor is the lease set.
func (s *Server) Lessor() *lease.Lessor { return s.lessor }

// Alarms is the alarm set.
func (s *Server) Alarms() *apply.Alarms { return s.alarms }

// Auth is the member's users, roles and tokens.
func (s *Server) Auth() *auth.Store { return s.auth }

// Members lists the cluster's members as the Cluster API shows them.
func (s *Server) Members() []*pb.Member {
	ms := s.members.Members()
	out := make([]*pb.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, &pb.Member{
			ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner,
		})
	}
	return out
}

// Status reports Raft and storage figures for Maintenance.Status.
func (s *Server) Status() api.MemberStatus {
	onDisk, live := s.eng.Size()
	return api.MemberStatus{
		Leader:       s.node.Lead(),
		RaftIndex:    s.node.CommitIndex(),
		RaftTerm:     s.node.Term(),
		AppliedIndex: s.store.AppliedIndex(),
		DBSize:       onDisk,
		DBSizeInUse:  live,
		DBSizeQuota:  s.cfg.QuotaBackendBytes,
	}
}

// NewLeaseID picks an unused, positive lease ID.
func (s *Server) NewLeaseID() int64 {
	for {
		id := int64(s.ids.next() & (1<<63 - 1))
		if id != 0 && !s.lessor.Exists(id) {
			return id
		}
	}
}

// QuotaExceeded reports whether writing about cost more bytes would take
// the store past --quota-backend-bytes.
func (s *Server) QuotaExceeded(cost int) bool {
	size, _ := s.eng.Size()
	return size+int64(cost) > s.cfg.QuotaBackendBytes
}

// Defragment makes the engine return the space of deleted and overwritten
// data now, instead of as its background compactions get to it: it
// flushes the memtables and compacts the whole key space. Nothing else
// waits for it. etcd's Defragment rewrites its file; this is the nearest
// useful meaning for an LSM.
func (s *Server) Defragment() error {
	return s.eng.Compact()
}

// selfContext is the membership change context that adds this member,
// which --force-new-cluster needs if the log's configuration lacks it: the
// member as the member list has it, or as the flags describe it.
func (s *Server) selfContext() []byte {
	m := s.members.Member(s.info.MemberID)
	if m == nil {
		m = &membership.Member{ID: s.info.MemberID, Name: s.cfg.Name, PeerURLs: urlStrings(s.cfg.InitialAdvertisePeerURLs)}
	}
	return membership.Context(m)
}

// monoEpoch is the process's reference for durations kept as integers:
// times derived from it carry its monotonic reading.
var monoEpoch = time.Now()

// campaignAlone makes a one-voter cluster elect itself at once instead of
// after an election timeout. Raft refuses to campaign until the membership
// entries in its log are applied (the bootstrap entries of a new cluster,
// or those replayed at a restart), which the apply loop may not have done
// yet, so it asks again every few milliseconds until there is a leader;
// after one election timeout raft's own timer has taken over anyway.
func (s *Server) campaignAlone() {
	defer s.wg.Done()
	deadline := time.NewTimer(s.cfg.ElectionTimeout)
	defer deadline.Stop()
	select {
	case <-s.applied.wait(s.node.CommitIndex()):
	case <-s.stopc:
		return
	case <-deadline.C:
		return
	}
	retry := time.NewTicker(10 * time.Millisecond)
	defer retry.Stop()
	for s.node.Lead() == 0 {
		// Only a follower is asked: a (pre-)candidate whose election has
		// not ended yet on a busy machine would start another at the next
		// term, and clients would see the term jump.
		if s.node.Status().RaftState == raft.StateFollower {
			_ = s.node.Campaign(context.Background())
		}
		select {
		case <-s.stopc:
			return
		case <-deadline.C:
			return
		case <-retry.C:
		}
	}
}
