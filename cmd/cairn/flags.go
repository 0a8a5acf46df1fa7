package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/server"
)

// settings is what the command line, the environment or a config file
// asked for, before it is finished into a server.Config: a few settings
// are kept in etcd's own form (milliseconds, the --initial-cluster string)
// until defaults that depend on other settings have been derived.
type settings struct {
	cfg *server.Config

	initialCluster string
	heartbeatMs    uint
	electionMs     uint
	authTokenTTL   uint // seconds, as etcd's flag
	logger         string
	logOutputs     string
	bcryptCost     uint

	// set names each setting given explicitly, by flag, environment
	// variable or config-file key: some defaults depend on it.
	set map[string]bool
	// refused maps each refused flag (see refusedFlags) given a
	// non-default value to that value.
	refused map[string]string
	// tls holds the TLS flags until finish.
	tls tlsSettings
	// discovery holds the --discovery-* flags; discoveryEndpoints is the
	// comma-separated list as given.
	discovery          discovery.Config
	discoveryEndpoints string
}

// newSettings returns etcd's defaults, taken from server.NewConfig. The
// data directory is left empty: it defaults to "${name}.cairn", which is
// known only once the name is.
func newSettings() *settings {
	cfg := server.NewConfig()
	cfg.DataDir = ""
	return &settings{
		cfg:            cfg,
		initialCluster: initialClusterFromName(cfg.Name, cfg.InitialAdvertisePeerURLs),
		heartbeatMs:    uint(cfg.HeartbeatInterval / time.Millisecond),
		electionMs:     uint(cfg.ElectionTimeout / time.Millisecond),
		authTokenTTL:   uint(cfg.AuthTokenTTL / time.Second),
		bcryptCost:     uint(cfg.BcryptCost),
		logger:         "zap",
		logOutputs:     "default",
		set:            map[string]bool{},
		refused:        map[string]string{},
		discovery:      discovery.Defaults(),
	}
}

// commandLine is the flag set and the flags that are not settings.
type commandLine struct {
	fs           *flag.FlagSet
	configFile   string
	printVersion bool
	// helpOrder lists the implemented flags in the order help shows them.
	helpOrder []string
}

// newCommandLine defines etcd's server flags on a flag set writing its
// errors to stderr, binding the implemented ones to s. Like etcd it uses
// the standard flag package, so "-name x", "--name x" and "--name=x" are
// all accepted.
func newCommandLine(s *settings, stderr io.Writer, lg *slog.Logger) *commandLine {
	c := &commandLine{fs: flag.NewFlagSet("cairn", flag.ContinueOnError)}
	fs := c.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cfg := s.cfg

	def := func(name string) { c.helpOrder = append(c.helpOrder, name) }
	str := func(p *string, name, help string) { fs.StringVar(p, name, *p, help); def(name) }
	urls := func(p *[]url.URL, name, help string) { fs.Var(&urlsValue{p}, name, help); def(name) }

	// member
	str(&cfg.Name, "name", "Human-readable name for this member.")
	str(&cfg.DataDir, "data-dir", "Path to the data directory.")
	fs.Lookup("data-dir").DefValue = "${name}.cairn" // derived once the name is known
	str(&cfg.WALDir, "wal-dir", "Path to the dedicated wal directory.")
	fs.Uint64Var(&cfg.SnapshotCount, "snapshot-count", cfg.SnapshotCount, "Number of committed transactions to trigger a snapshot.")
	def("snapshot-count")
	fs.UintVar(&s.heartbeatMs, "heartbeat-interval", s.heartbeatMs, "Time (in milliseconds) of a heartbeat interval.")
	def("heartbeat-interval")
	fs.UintVar(&s.electionMs, "election-timeout", s.electionMs, "Time (in milliseconds) for an election to timeout.")
	def("election-timeout")
	urls(&cfg.ListenPeerURLs, "listen-peer-urls", "List of URLs to listen on for peer traffic.")
	urls(&cfg.ListenClientURLs, "listen-client-urls", "List of URLs to listen on for client grpc traffic and http as long as --listen-client-http-urls is not specified.")
	urls(&cfg.ListenClientHTTPURLs, "listen-client-http-urls", "List of URLs to listen on for http only client traffic. Enabling this flag removes http services from --listen-client-urls.")
	fs.UintVar(&cfg.MaxTxnOps, "max-txn-ops", cfg.MaxTxnOps, "Maximum number of operations permitted in a transaction.")
	def("max-txn-ops")
	fs.UintVar(&cfg.MaxRequestBytes, "max-request-bytes", cfg.MaxRequestBytes, "Maximum client request size in bytes the server will accept.")
	def("max-request-bytes")
	fs.Int64Var(&cfg.QuotaBackendBytes, "quota-backend-bytes", cfg.QuotaBackendBytes, "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB).")
	def("quota-backend-bytes")

	// clustering
	urls(&cfg.InitialAdvertisePeerURLs, "initial-advertise-peer-urls", "List of this member's peer URLs to advertise to the rest of the cluster.")
	str(&s.initialCluster, "initial-cluster", "Initial cluster configuration for bootstrapping (default \"${name}=${initial-advertise-peer-urls}\").")
	fs.Var(&choiceValue{p: &cfg.InitialClusterState, valid: []string{"new", "existing"}}, "initial-cluster-state",
		"Initial cluster state ('new' when bootstrapping a new cluster or 'existing' when adding new members to an existing cluster).")
	def("initial-cluster-state")
	str(&cfg.InitialClusterToken, "initial-cluster-token", "Initial cluster token for the cluster during bootstrap.")
	urls(&cfg.AdvertiseClientURLs, "advertise-client-urls", "List of this member's client URLs to advertise to the public.")
	str(&cfg.AutoCompactionRetention, "auto-compaction-retention", "Auto compaction retention for mvcc key value store. 0 or empty means disable auto compaction.")
	str(&cfg.AutoCompactionMode, "auto-compaction-mode", "Interpret 'auto-compaction-retention' as one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention.")

	// raft
	fs.Uint64Var(&cfg.SnapshotCatchUpEntries, "snapshot-catchup-entries", cfg.SnapshotCatchUpEntries, "Number of entries for a slow follower to catch-up after compacting the raft storage entries.")
	def("snapshot-catchup-entries")
	fs.Uint64Var(&cfg.SnapshotCatchUpEntries, "experimental-snapshot-catchup-entries", cfg.SnapshotCatchUpEntries, "Deprecated: use --snapshot-catchup-entries instead.")
	def("experimental-snapshot-catchup-entries")
	fs.Uint64Var(&cfg.SnapshotCatchUpBytes, "snapshot-catchup-bytes", cfg.SnapshotCatchUpBytes, "Cairn only: also bound the in-memory raft log by size; entries beyond this many bytes are dropped once every follower has them (0: by count only, as etcd).")
	fs.BoolVar(&cfg.ForceNewCluster, "force-new-cluster", false, "Force to create a new one member cluster.")
	def("force-new-cluster")
	fs.BoolVar(&cfg.StrictReconfigCheck, "strict-reconfig-check", cfg.StrictReconfigCheck, "Reject reconfiguration requests that would cause quorum loss.")
	def("strict-reconfig-check")
	fs.Int64Var(&cfg.StorageCacheBytes, "storage-cache-bytes", cfg.StorageCacheBytes, "Cairn only: size of the storage engine's block cache (default 64 MiB). Larger caches speed up bulk writes to large stores at the cost of memory.")
	fs.BoolVar(&cfg.EnablePprof, "enable-pprof", cfg.EnablePprof, "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"")
	fs.BoolVar(&cfg.PreVote, "pre-vote", cfg.PreVote, "Enable the raft Pre-Vote algorithm to prevent disruption when a node that has been partitioned away rejoins the cluster.")
	def("pre-vote")

	// consistency
	fs.DurationVar(&cfg.CorruptCheckTime, "corrupt-check-time", cfg.CorruptCheckTime, "Duration of time between cluster corruption check passes.")
	def("corrupt-check-time")
	fs.DurationVar(&cfg.CorruptCheckTime, "experimental-corrupt-check-time", cfg.CorruptCheckTime, "Deprecated: use --corrupt-check-time instead.")
	def("experimental-corrupt-check-time")

	// watch
	fs.DurationVar(&cfg.WatchProgressNotifyInterval, "watch-progress-notify-interval", cfg.WatchProgressNotifyInterval, "Duration of periodic watch progress notifications.")
	def("watch-progress-notify-interval")
	fs.DurationVar(&cfg.WatchProgressNotifyInterval, "experimental-watch-progress-notify-interval", cfg.WatchProgressNotifyInterval, "Deprecated: use --watch-progress-notify-interval instead.")
	def("experimental-watch-progress-notify-interval")

	// gRPC and the gateway
	fs.BoolVar(&cfg.EnableGRPCGateway, "enable-grpc-gateway", cfg.EnableGRPCGateway, "Enable GRPC gateway.")
	def("enable-grpc-gateway")
	fs.Var(&uint32Value{&cfg.MaxConcurrentStreams}, "max-concurrent-streams", "Maximum concurrent streams that each client can open at a time.")
	def("max-concurrent-streams")
	fs.DurationVar(&cfg.GRPCKeepAliveMinTime, "grpc-keepalive-min-time", cfg.GRPCKeepAliveMinTime, "Minimum interval duration that a client should wait before pinging server.")
	def("grpc-keepalive-min-time")
	fs.DurationVar(&cfg.GRPCKeepAliveInterval, "grpc-keepalive-interval", cfg.GRPCKeepAliveInterval, "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).")
	def("grpc-keepalive-interval")
	fs.DurationVar(&cfg.GRPCKeepAliveTimeout, "grpc-keepalive-timeout", cfg.GRPCKeepAliveTimeout, "Additional duration of wait before closing a non-responsive connection (0 to disable).")
	def("grpc-keepalive-timeout")

	// v3 discovery
	str(&s.discoveryEndpoints, "discovery-endpoints", "V3 discovery: List of gRPC endpoints of the discovery service.")
	str(&s.discovery.Token, "discovery-token", "V3 discovery: discovery token for the etcd cluster to be bootstrapped.")
	d := &s.discovery
	fs.DurationVar(&d.DialTimeout, "discovery-dial-timeout", d.DialTimeout, "V3 discovery: dial timeout for client connections.")
	def("discovery-dial-timeout")
	fs.DurationVar(&d.RequestTimeout, "discovery-request-timeout", d.RequestTimeout, "V3 discovery: timeout for discovery requests (excluding dial timeout).")
	def("discovery-request-timeout")
	fs.DurationVar(&d.KeepAliveTime, "discovery-keepalive-time", d.KeepAliveTime, "V3 discovery: keepalive time for client connections.")
	def("discovery-keepalive-time")
	fs.DurationVar(&d.KeepAliveTimeout, "discovery-keepalive-timeout", d.KeepAliveTimeout, "V3 discovery: keepalive timeout for client connections.")
	def("discovery-keepalive-timeout")
	fs.BoolVar(&d.InsecureTransport, "discovery-insecure-transport", d.InsecureTransport, "V3 discovery: disable transport security for client connections.")
	def("discovery-insecure-transport")
	fs.BoolVar(&d.InsecureSkipVerify, "discovery-insecure-skip-tls-verify", false, "V3 discovery: skip server certificate verification (CAUTION: this option should be enabled only for testing purposes).")
	def("discovery-insecure-skip-tls-verify")
	str(&d.Cert, "discovery-cert", "V3 discovery: identify secure client using this TLS certificate file.")
	str(&d.Key, "discovery-key", "V3 discovery: identify secure client using this TLS key file.")
	str(&d.CACert, "discovery-cacert", "V3 discovery: verify certificates of TLS-enabled secure servers using this CA bundle.")
	str(&d.User, "discovery-user", "V3 discovery: username[:password] for authentication (prompt if password is not supplied).")
	str(&d.Password, "discovery-password", "V3 discovery: password for authentication (if this option is used, --user option shouldn't include password).")

	// metrics
	fs.Var(&choiceValue{p: &cfg.Metrics, valid: []string{"basic", "extensive"}}, "metrics", "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics.")
	def("metrics")

	// logging
	str(&cfg.LogLevel, "log-level", "Configures log level. Only supports debug, info, warn, error.")
	str(&s.logger, "logger", "Currently only supports 'zap' for structured logging.")
	str(&s.logOutputs, "log-outputs", "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets.")
	fs.Lookup("log-outputs").DefValue = "default"
	str(&cfg.LogFormat, "log-format", "Configures log format. Only supports json, console. Default is 'json'.")
	fs.IntVar(&cfg.MaxLearners, "max-learners", cfg.MaxLearners, "Sets the maximum number of learners that can be available in the cluster membership.")
	def("max-learners")
	fs.BoolVar(&cfg.AutoPromoteLearners, "auto-promote-learners", false, "Cairn only: the leader promotes a learner to a voting member as soon as it is ready (its log within 90% of the leader's).")
	def("auto-promote-learners")
	fs.BoolVar(&cfg.UnsafeNoFsync, "unsafe-no-fsync", false, "Disables fsync, unsafe, will cause data loss.")
	def("unsafe-no-fsync")
	fs.BoolVar(&cfg.EnableLogRotation, "enable-log-rotation", false, "Enable log rotation of a single log-outputs file target.")
	def("enable-log-rotation")
	str(&cfg.LogRotationConfigJSON, "log-rotation-config-json", "Configures log rotation if enabled with a JSON logger config. Default: MaxSize=100(MB), MaxAge=0(days,no limit), MaxBackups=0(no limit), LocalTime=false(UTC), Compress=false(gzip)")

	// security
	registerTLS(fs, &s.tls, def)
	str(&cfg.AuthToken, "auth-token", "Specify auth token specific options.")
	fs.UintVar(&s.bcryptCost, "bcrypt-cost", s.bcryptCost, "Specify bcrypt algorithm cost factor for auth password hashing.")
	def("bcrypt-cost")
	fs.UintVar(&s.authTokenTTL, "auth-token-ttl", s.authTokenTTL, "The lifetime in seconds of the auth token.")
	def("auth-token-ttl")
	fs.StringVar(&cfg.AuditLogPath, "audit-log-path", cfg.AuditLogPath, "Cairn only: write the audit log (one JSON line per request) to this file, or '-' for stderr.")
	fs.IntVar(&cfg.AuditLogMaxSizeMB, "audit-log-max-size", cfg.AuditLogMaxSizeMB, "Cairn only: rotate the audit log when it passes this many megabytes (0: never).")
	fs.IntVar(&cfg.AuditLogMaxBackups, "audit-log-max-backups", cfg.AuditLogMaxBackups, "Cairn only: rotated audit log files to keep.")
	fs.BoolVar(&cfg.AuditLogReads, "audit-log-reads", cfg.AuditLogReads, "Cairn only: audit reads and watch creations too (refused requests are always audited).")
	fs.StringVar(&cfg.SnapshotFormat, "snapshot-format", cfg.SnapshotFormat, "Cairn only: the format of Maintenance.Snapshot ('etcdctl snapshot save'): 'etcd' (etcd's bbolt file, read by etcdutl and cairnutl) or 'cairn' (Cairn's own stream, faster to make, read by cairnutl only).")
	fs.StringVar(&cfg.BackupDir, "backup-dir", cfg.BackupDir, "Cairn only: take scheduled backups into this directory, one each --backup-interval, in --snapshot-format, each written atomically, verified by reading it back and named cairn-backup-<UTC time>-r<revision>.db (list them with 'cairnutl backup list'). Empty: no scheduled backups.")
	fs.DurationVar(&cfg.BackupInterval, "backup-interval", cfg.BackupInterval, "Cairn only: time between scheduled backups (for example 30m, 6h); a failed backup is retried at the next one.")
	fs.IntVar(&cfg.BackupRetention, "backup-retention", cfg.BackupRetention, "Cairn only: scheduled backups to keep in --backup-dir; the oldest beyond this count are deleted after each successful backup.")
	fs.BoolVar(&cfg.BackupOnLeaderOnly, "backup-on-leader-only", cfg.BackupOnLeaderOnly, "Cairn only: take scheduled backups only while this member is the leader (checked at each interval); false: every member backs up.")
	registerConsole(fs, &cfg.Console)
	for _, n := range []string{"audit-log-path", "audit-log-max-size", "audit-log-max-backups", "audit-log-reads", "snapshot-format",
		"backup-dir", "backup-interval", "backup-retention", "backup-on-leader-only", "console",
		"snapshot-catchup-bytes", "storage-cache-bytes", "enable-pprof"} {
		def(n)
	}

	// not settings
	fs.StringVar(&c.configFile, "config-file", "", "Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.")
	def("config-file")
	fs.BoolVar(&c.printVersion, "version", false, "Print the version and exit.")
	def("version")

	for _, f := range ignoredFlags {
		fs.Var(&ignoredValue{flag: f, lg: lg}, f.name, "Ignored: not implemented by Cairn.")
	}
	for name, d := range refusedFlags {
		v := &refusedValue{name: name, def: d, isBool: d == "false"}
		fs.Var(v, name, "Not supported by Cairn.")
	}
	return c
}

// refusedSet records, after parsing, which refused flags were given a
// non-default value.
func (c *commandLine) refusedSet(s *settings) {
	c.fs.Visit(func(f *flag.Flag) {
		if v, ok := f.Value.(*refusedValue); ok && v.got != nil {
			s.refused[f.Name] = *v.got
		}
	})
}

// usage is shown on a usage error, as etcd shows its own.
const usage = `Usage:

  cairn [flags]
    Start a Cairn member.

  cairn --version
    Show the version of Cairn.

  cairn -h | --help
    Show the help information about Cairn.

  cairn --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.
`

// printHelp writes the long help (etcd's "--help" output) to w.
func (c *commandLine) printHelp(w io.Writer) {
	fmt.Fprintln(w, "Flags (each also settable as ETCD_<FLAG_NAME>, for example ETCD_DATA_DIR):")
	for _, name := range c.helpOrder {
		f := c.fs.Lookup(name)
		fmt.Fprintf(w, "  --%s '%s'\n    %s\n", f.Name, f.DefValue, f.Usage)
	}
	var ignored []string
	for _, f := range ignoredFlags {
		ignored = append(ignored, f.name)
	}
	fmt.Fprintf(w, "\nAccepted for compatibility with etcd and ignored, with a warning:\n  %s\n  and any --experimental-* flag.\n",
		strings.Join(ignored, ", "))
	fmt.Fprintln(w, "\nNot supported (refused unless left at their default): --discovery-srv.")
}

// urlsValue is a flag.Value holding a comma-separated URL list.
type urlsValue struct{ p *[]url.URL }

func (v *urlsValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return joinURLs(*v.p)
}

func (v *urlsValue) Set(s string) error {
	us, err := parseURLs(s)
	if err != nil {
		return err
	}
	*v.p = us
	return nil
}

// uint32Value is a flag.Value holding a uint32, as etcd's Uint32Value.
type uint32Value struct{ p *uint32 }

func (v *uint32Value) String() string {
	if v == nil || v.p == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*v.p), 10)
}

func (v *uint32Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return err
	}
	*v.p = uint32(n)
	return nil
}

// choiceValue is a flag.Value that accepts one of a fixed set of strings.
type choiceValue struct {
	p     *string
	valid []string
}

func (v *choiceValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return *v.p
}

func (v *choiceValue) Set(s string) error {
	for _, ok := range v.valid {
		if s == ok {
			*v.p = s
			return nil
		}
	}
	return fmt.Errorf("invalid value (want %s)", quoteJoin(v.valid))
}

func quoteJoin(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, " or ")
}
