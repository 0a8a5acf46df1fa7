package server

import (
	"log/slog"
	"net/url"
	"time"

	"github.com/cairnkv/cairn/console"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/tlsconfig"
)

// Config holds everything a member needs to start. The zero value is not
// useful on its own: call NewConfig for etcd's defaults, then override.
// Field names follow etcd's flags (--data-dir is DataDir, and so on).
type Config struct {
	// Name is the human-readable member name (--name, default "default").
	Name string
	// DataDir is where the member keeps its log and store (--data-dir,
	// default "${name}.cairn").
	DataDir string
	// WALDir, when set, holds the write-ahead log instead of DataDir/member/wal.
	WALDir string

	// ListenClientURLs are the URLs the member serves clients on (gRPC and
	// HTTP/JSON on the same port), default http://127.0.0.1:2379.
	ListenClientURLs []url.URL
	// ListenClientHTTPURLs, when set, serve the HTTP side (the JSON
	// gateway, /health, /version, pprof) and ListenClientURLs then serve
	// gRPC only (--listen-client-http-urls).
	ListenClientHTTPURLs []url.URL
	// EnableGRPCGateway serves the JSON gateway under /v3/
	// (--enable-grpc-gateway, default true).
	EnableGRPCGateway bool
	// MaxConcurrentStreams bounds the streams of one client connection
	// (--max-concurrent-streams, default 2^32-1).
	MaxConcurrentStreams uint32
	// GRPCKeepAliveMinTime is the least time between a client's pings;
	// GRPCKeepAliveInterval and GRPCKeepAliveTimeout pace the server's
	// pings of idle connections (--grpc-keepalive-*, default 5s, 2h, 20s;
	// 0 disables).
	GRPCKeepAliveMinTime, GRPCKeepAliveInterval, GRPCKeepAliveTimeout time.Duration
	// AdvertiseClientURLs are the client URLs reported in MemberList.
	AdvertiseClientURLs []url.URL
	// ListenPeerURLs are the URLs the member listens on for peers.
	ListenPeerURLs []url.URL
	// InitialAdvertisePeerURLs are this member's peer URLs as told to others.
	InitialAdvertisePeerURLs []url.URL
	// InitialCluster maps member name to its peer URLs
	// (--initial-cluster "default=http://127.0.0.1:2380").
	InitialCluster map[string][]url.URL
	// InitialClusterState is "new" or "existing".
	InitialClusterState string
	// InitialClusterToken seeds the cluster ID (default "etcd-cluster").
	InitialClusterToken string

	// MaxRequestBytes bounds one client request (default 1.5 MiB).
	MaxRequestBytes uint
	// MaxTxnOps bounds the operations in one Txn branch (default 128).
	MaxTxnOps uint
	// QuotaBackendBytes raises the NOSPACE alarm when the store grows past
	// it (default 0 meaning 2 GiB like etcd; Cairn has no hard ceiling, so
	// any value is accepted).
	QuotaBackendBytes int64
	// AutoCompactionMode is "periodic" or "revision".
	AutoCompactionMode string
	// AutoCompactionRetention is "" or "0" for off; a duration such as "1h"
	// (or a bare number of hours) in periodic mode, a revision count in
	// revision mode.
	AutoCompactionRetention string
	// SnapshotCount is how many applied entries trigger a log snapshot
	// (default 10000).
	SnapshotCount uint64

	// HeartbeatInterval and ElectionTimeout drive Raft ticks
	// (defaults 100ms and 1000ms).
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration

	// WatchProgressNotifyInterval is how often watchers that asked for
	// progress notifications get one (--watch-progress-notify-interval,
	// default 10 minutes).
	WatchProgressNotifyInterval time.Duration

	// SnapshotCatchUpEntries is how many entries the raft log keeps behind
	// a snapshot for slow followers (--snapshot-catchup-entries, 5000).
	SnapshotCatchUpEntries uint64
	// SnapshotCatchUpBytes also bounds the in-memory raft log by size
	// (Cairn only, 64 MiB): entries beyond the newest SnapshotCatchUpBytes
	// bytes are dropped once every follower has them. 0: count only.
	SnapshotCatchUpBytes uint64
	// StorageCacheBytes is the engine's block cache (--storage-cache-bytes,
	// Cairn only; 0 means 64 MiB).
	StorageCacheBytes int64
	// SnapshotFormat is what Maintenance.Snapshot sends (Cairn's
	// --snapshot-format): "etcd" (the default; etcd's bbolt format, which
	// etcdutl reads) or "cairn" (the store's own stream, faster to make).
	SnapshotFormat string
	// BackupDir, when set, takes scheduled backups there (Cairn's
	// --backup-dir; see package backup): every BackupInterval
	// (--backup-interval, default 30m), in SnapshotFormat, keeping the
	// newest BackupRetention (--backup-retention, default 5), only while
	// this member leads unless BackupOnLeaderOnly is false
	// (--backup-on-leader-only, default true).
	BackupDir          string
	BackupInterval     time.Duration
	BackupRetention    int
	BackupOnLeaderOnly bool
	// EnablePprof serves Go's runtime profiles under /debug/pprof/ on the
	// client URLs (--enable-pprof).
	EnablePprof bool
	// Console serves the web console at /ui/ on the client URLs (Cairn's
	// --console). Nil is the default: on only when every client URL is
	// loopback (see ConsoleOn).
	Console *bool
	// PreVote enables raft's pre-vote (--pre-vote, default true).
	PreVote bool

	// CorruptCheckTime is how often the leader compares its store's hash
	// with the followers' (--corrupt-check-time; 0 turns it off, etcd's
	// default). A follower that diverged gets a CORRUPT alarm.
	CorruptCheckTime time.Duration

	// StrictReconfigCheck refuses a membership change that would leave
	// fewer started voters than a quorum (--strict-reconfig-check,
	// default true).
	StrictReconfigCheck bool

	// ClientTLS serves https:// and unixs:// client URLs (--cert-file,
	// --key-file, --trusted-ca-file, ...); nil or empty: plaintext only.
	ClientTLS *tlsconfig.Info
	// PeerTLS serves https:// peer URLs and dials other members' peer
	// URLs (--peer-cert-file, ...).
	PeerTLS *tlsconfig.Info
	// ListenMetricsURLs serve /metrics, /health, /livez and /readyz
	// (--listen-metrics-urls); an https one uses ClientTLS, as in etcd.
	ListenMetricsURLs []url.URL

	// AuthToken is --auth-token: "simple" (default) or
	// "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...".
	AuthToken string
	// AuthTokenTTL is how long a simple token lives unused
	// (--auth-token-ttl, default 300s).
	AuthTokenTTL time.Duration
	// BcryptCost hashes passwords (--bcrypt-cost, default 10).
	BcryptCost int

	// AuditLogPath, when set, writes the audit log there ("-": stderr;
	// --audit-log-path, Cairn only). It rotates past AuditLogMaxSizeMB
	// (--audit-log-max-size, default 100; 0 never), keeping
	// AuditLogMaxBackups files (--audit-log-max-backups, default 5), and
	// holds reads too with AuditLogReads (--audit-log-reads).
	AuditLogPath                          string
	AuditLogMaxSizeMB, AuditLogMaxBackups int
	AuditLogReads                         bool

	// Metrics is "basic" (default) or "extensive" (adds the per-method
	// grpc_server_handling_seconds histograms), as etcd's --metrics.
	Metrics string

	// LogOutputs are where logs go (--log-outputs: "default", "stderr",
	// "stdout" or file paths); LogFormat is "json" (default) or "console"
	// (--log-format).
	LogOutputs []string
	LogFormat  string
	// EnableLogRotation rotates the single file in LogOutputs by
	// LogRotationConfigJSON (etcd's --enable-log-rotation and
	// --log-rotation-config-json; see package logging).
	EnableLogRotation     bool
	LogRotationConfigJSON string

	// Discovery, when set, bootstraps a new cluster through the v3
	// discovery service instead of InitialCluster (etcd's
	// --discovery-endpoints and --discovery-token).
	Discovery *discovery.Config

	// MaxLearners bounds the cluster's learners (etcd's --max-learners,
	// default 1).
	MaxLearners int

	// AutoPromoteLearners (Cairn only) makes the leader promote each
	// learner once it is ready by etcd's rule.
	AutoPromoteLearners bool

	// ForceNewCluster (etcd's --force-new-cluster) restarts a member that
	// has a WAL as the only member of its cluster, keeping all its data:
	// the WAL's uncommitted entries are dropped and committed membership
	// changes removing every other member are appended (raftnode's
	// ForceNewCluster). Without a WAL it has no effect. Unsafe while the
	// other members still run.
	ForceNewCluster bool

	// UnsafeNoFsync skips the WAL's fsyncs (etcd's --unsafe-no-fsync):
	// a machine crash may lose acknowledged writes.
	UnsafeNoFsync bool

	// LogLevel is one of debug, info, warn, error (default info).
	LogLevel string
	// Logger, when non-nil, receives the member's logs; otherwise one is
	// built from LogLevel writing to stderr.
	Logger *slog.Logger
}

// Defaults matching etcd 3.7.
const (
	DefaultName                = "default"
	DefaultMaxRequestBytes     = 1.5 * 1024 * 1024
	DefaultMaxTxnOps           = 128
	DefaultQuotaBackendBytes   = 2 * 1024 * 1024 * 1024
	DefaultSnapshotCount       = 10000
	DefaultInitialClusterToken = "etcd-cluster"
)

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

// NewConfig returns a Config with etcd's defaults: a single member named
// "default" serving clients on 127.0.0.1:2379 and peers on 127.0.0.1:2380,
// with its data in ./default.cairn.
func NewConfig() *Config {
	return &Config{
		Name:                     DefaultName,
		DataDir:                  DefaultName + ".cairn",
		ListenClientURLs:         []url.URL{mustURL("http://127.0.0.1:2379")},
		EnableGRPCGateway:        true,
		MaxConcurrentStreams:     1<<32 - 1,
		GRPCKeepAliveMinTime:     5 * time.Second,
		GRPCKeepAliveInterval:    2 * time.Hour,
		GRPCKeepAliveTimeout:     20 * time.Second,
		AdvertiseClientURLs:      []url.URL{mustURL("http://127.0.0.1:2379")},
		ListenPeerURLs:           []url.URL{mustURL("http://127.0.0.1:2380")},
		InitialAdvertisePeerURLs: []url.URL{mustURL("http://127.0.0.1:2380")},
		InitialCluster:           map[string][]url.URL{DefaultName: {mustURL("http://127.0.0.1:2380")}},
		SnapshotFormat:           "etcd",
		BackupInterval:           30 * time.Minute,
		BackupRetention:          5,
		BackupOnLeaderOnly:       true,
		InitialClusterState:      "new",
		InitialClusterToken:      DefaultInitialClusterToken,
		MaxRequestBytes:          DefaultMaxRequestBytes,
		MaxTxnOps:                DefaultMaxTxnOps,
		AutoCompactionMode:       "periodic",
		SnapshotCount:            DefaultSnapshotCount,
		HeartbeatInterval:        100 * time.Millisecond,
		ElectionTimeout:          1000 * time.Millisecond,
		LogLevel:                 "info",
		AuthToken:                "simple",
		AuditLogMaxSizeMB:        100,
		Metrics:                  "basic",
		LogOutputs:               []string{"default"},
		LogFormat:                "json",
		AuditLogMaxBackups:       5,
		AuthTokenTTL:             300 * time.Second,
		BcryptCost:               10,

		WatchProgressNotifyInterval: 10 * time.Minute,
		StrictReconfigCheck:         true,
		MaxLearners:                 1,
		SnapshotCatchUpEntries:      5000,
		SnapshotCatchUpBytes:        64 << 20,
		PreVote:                     true,
	}
}

// ConsoleOn reports whether the member serves the web console: as
// Console says, or by default only when every URL it serves clients on
// (--listen-client-urls and --listen-client-http-urls) is loopback or a
// unix socket.
func (c *Config) ConsoleOn() bool {
	if c.Console != nil {
		return *c.Console
	}
	return console.DefaultOn(c.ListenClientURLs, c.ListenClientHTTPURLs)
}
