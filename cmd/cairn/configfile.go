package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v2"
)

// fileConfig is the part of etcd's YAML configuration file that Cairn
// reads. The keys are etcd's (its flag names). As in etcd, URL lists are
// comma-separated strings, and heartbeat-interval and election-timeout are
// integer milliseconds (etcd's own usage text says "nanoseconds" for
// duration fields; these two are not durations in its config struct).
type fileConfig struct {
	Name                     string  `yaml:"name"`
	DataDir                  string  `yaml:"data-dir"`
	WALDir                   string  `yaml:"wal-dir"`
	SnapshotCount            uint64  `yaml:"snapshot-count"`
	HeartbeatInterval        uint    `yaml:"heartbeat-interval"`
	ElectionTimeout          uint    `yaml:"election-timeout"`
	ListenPeerURLs           string  `yaml:"listen-peer-urls"`
	ListenClientURLs         string  `yaml:"listen-client-urls"`
	MaxTxnOps                uint    `yaml:"max-txn-ops"`
	MaxRequestBytes          uint    `yaml:"max-request-bytes"`
	QuotaBackendBytes        int64   `yaml:"quota-backend-bytes"`
	InitialAdvertisePeerURLs string  `yaml:"initial-advertise-peer-urls"`
	AdvertiseClientURLs      string  `yaml:"advertise-client-urls"`
	InitialCluster           string  `yaml:"initial-cluster"`
	InitialClusterState      string  `yaml:"initial-cluster-state"`
	InitialClusterToken      string  `yaml:"initial-cluster-token"`
	AutoCompactionRetention  string  `yaml:"auto-compaction-retention"`
	AutoCompactionMode       string  `yaml:"auto-compaction-mode"`
	LogLevel                 string  `yaml:"log-level"`
	SnapshotCatchUpEntries   uint64  `yaml:"snapshot-catchup-entries"`
	StrictReconfigCheck      *bool   `yaml:"strict-reconfig-check"`
	PreVote                  *bool   `yaml:"pre-vote"`
	EnablePprof              bool    `yaml:"enable-pprof"`
	StorageCacheBytes        int64   `yaml:"storage-cache-bytes"`
	SnapshotFormat           string  `yaml:"snapshot-format"`
	SnapshotCatchUpBytes     *uint64 `yaml:"snapshot-catchup-bytes"`
	// Scheduled backups (Cairn only); the interval is a duration string
	// ("30m") or, as etcd's file writes durations, nanoseconds.
	BackupDir          string        `yaml:"backup-dir"`
	BackupInterval     *fileDuration `yaml:"backup-interval"`
	BackupRetention    *int          `yaml:"backup-retention"`
	BackupOnLeaderOnly *bool         `yaml:"backup-on-leader-only"`
	// Durations in etcd's config file are nanoseconds.
	WatchProgressNotifyInterval             int64 `yaml:"watch-progress-notify-interval"`
	ExperimentalWatchProgressNotifyInterval int64 `yaml:"experimental-watch-progress-notify-interval"`

	// TLS, as etcd's file has it: the file sets the certificate flags in
	// two sections; the CRL files have no key in etcd's file either.
	ClientSecurity         securityConfig `yaml:"client-transport-security"`
	PeerSecurity           securityConfig `yaml:"peer-transport-security"`
	CipherSuites           []string       `yaml:"cipher-suites"`
	TLSMinVersion          *string        `yaml:"tls-min-version"`
	TLSMaxVersion          string         `yaml:"tls-max-version"`
	SelfSignedCertValidity uint           `yaml:"self-signed-cert-validity"`
	ListenMetricsURLs      string         `yaml:"listen-metrics-urls"`

	AuthToken         string   `yaml:"auth-token"`
	Metrics           string   `yaml:"metrics"`
	Logger            string   `yaml:"logger"`
	LogOutputs        []string `yaml:"log-outputs"`
	LogFormat         string   `yaml:"log-format"`
	EnableLogRotation bool     `yaml:"enable-log-rotation"`
	// DiscoveryConfig is etcd's discovery-config section (the JSON form
	// of its v3discovery.DiscoveryConfig; durations in nanoseconds).
	DiscoveryConfig *struct {
		Token  string `yaml:"token"`
		Client struct {
			Endpoints        []string       `yaml:"endpoints"`
			RequestTimeout   *time.Duration `yaml:"request-timeout"`
			DialTimeout      *time.Duration `yaml:"dial-timeout"`
			KeepAliveTime    *time.Duration `yaml:"keepalive-time"`
			KeepAliveTimeout *time.Duration `yaml:"keepalive-timeout"`
			Secure           *struct {
				Cert               string `yaml:"cert"`
				Key                string `yaml:"key"`
				Cacert             string `yaml:"cacert"`
				InsecureTransport  *bool  `yaml:"insecure-transport"`
				InsecureSkipVerify bool   `yaml:"insecure-skip-tls-verify"`
			} `yaml:"secure"`
			Auth *struct {
				Username string `yaml:"username"`
				Password string `yaml:"password"`
			} `yaml:"auth"`
		} `yaml:"client"`
	} `yaml:"discovery-config"`
	UnsafeNoFsync         bool    `yaml:"unsafe-no-fsync"`
	ForceNewCluster       bool    `yaml:"force-new-cluster"`
	AutoPromoteLearners   bool    `yaml:"auto-promote-learners"`
	MaxLearners           *int    `yaml:"max-learners"`
	LogRotationConfigJSON string  `yaml:"log-rotation-config-json"`
	AuditLogPath          string  `yaml:"audit-log-path"`
	AuditLogMaxSize       *int    `yaml:"audit-log-max-size"`
	AuditLogMaxBackups    *int    `yaml:"audit-log-max-backups"`
	AuditLogReads         bool    `yaml:"audit-log-reads"`
	Console               *bool   `yaml:"console"`
	AuthTokenTTL          *uint   `yaml:"auth-token-ttl"`
	BcryptCost            *uint   `yaml:"bcrypt-cost"`
	ListenClientHTTPURLs  string  `yaml:"listen-client-http-urls"`
	EnableGRPCGateway     *bool   `yaml:"enable-grpc-gateway"`
	MaxConcurrentStreams  *uint32 `yaml:"max-concurrent-streams"`
	GRPCKeepAliveMinTime  *int64  `yaml:"grpc-keepalive-min-time"`
	GRPCKeepAliveInterval *int64  `yaml:"grpc-keepalive-interval"`
	GRPCKeepAliveTimeout  *int64  `yaml:"grpc-keepalive-timeout"`
}

// fileDuration is a config-file duration given as a string ("30m") or
// as a number of nanoseconds (etcd's form for its own durations).
type fileDuration time.Duration

func (d *fileDuration) UnmarshalYAML(unmarshal func(any) error) error {
	var ns int64
	if err := unmarshal(&ns); err == nil {
		*d = fileDuration(ns)
		return nil
	}
	var str string
	if err := unmarshal(&str); err != nil {
		return err
	}
	v, err := time.ParseDuration(str)
	if err != nil {
		return err
	}
	*d = fileDuration(v)
	return nil
}

// securityConfig is etcd's client-transport-security and
// peer-transport-security sections.
type securityConfig struct {
	CertFile            string   `yaml:"cert-file"`
	KeyFile             string   `yaml:"key-file"`
	ClientCertFile      string   `yaml:"client-cert-file"`
	ClientKeyFile       string   `yaml:"client-key-file"`
	CertAuth            bool     `yaml:"client-cert-auth"`
	TrustedCAFile       string   `yaml:"trusted-ca-file"`
	AutoTLS             bool     `yaml:"auto-tls"`
	AllowedCNs          []string `yaml:"allowed-cn"`
	AllowedHostnames    []string `yaml:"allowed-hostname"`
	SkipClientSANVerify bool     `yaml:"skip-client-san-verification"`
}

// fileTLS copies the file's TLS keys into t.
func fileTLS(fc *fileConfig, t *tlsSettings) error {
	c, p := fc.ClientSecurity, fc.PeerSecurity
	t.certFile, t.keyFile, t.clientCertFile, t.clientKeyFile = c.CertFile, c.KeyFile, c.ClientCertFile, c.ClientKeyFile
	t.clientCertAuth, t.trustedCA, t.autoTLS = c.CertAuth, c.TrustedCAFile, c.AutoTLS
	t.allowedHostname = strings.Join(c.AllowedHostnames, ",")
	t.peerCertFile, t.peerKeyFile, t.peerClientCertFile, t.peerClientKeyFile = p.CertFile, p.KeyFile, p.ClientCertFile, p.ClientKeyFile
	t.peerClientCertAuth, t.peerTrustedCA, t.peerAutoTLS = p.CertAuth, p.TrustedCAFile, p.AutoTLS
	t.peerAllowedCN, t.peerAllowedHostname = strings.Join(p.AllowedCNs, ","), strings.Join(p.AllowedHostnames, ",")
	t.peerSkipSAN = p.SkipClientSANVerify
	t.cipherSuites = strings.Join(fc.CipherSuites, ",")
	t.minVersion = "TLS1.2"
	if fc.TLSMinVersion != nil {
		t.minVersion = *fc.TLSMinVersion
	}
	t.maxVersion = fc.TLSMaxVersion
	t.validityYears = fc.SelfSignedCertValidity
	if fc.ListenMetricsURLs != "" {
		us, err := parseURLs(fc.ListenMetricsURLs)
		if err != nil {
			return fmt.Errorf("listen-metrics-urls: %w", err)
		}
		t.metricsURLs = us
	}
	return nil
}

// fileOnlyKeys are etcd config-file keys that are not flag names; Cairn
// ignores them with a warning, like the flags in ignoredFlags.
var fileOnlyKeys = []ignoredFlag{
	{name: "socket-options"},
	{name: "experimental-snapshot-catch-up-entries"},
}

// loadConfigFile reads an etcd YAML configuration file into settings. As
// in etcd, keys it does not set keep their defaults, an empty URL list
// keeps the default, and unknown keys are ignored (Cairn logs them).
func loadConfigFile(path string, lg *slog.Logger) (*settings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	s := newSettings()
	cfg := s.cfg
	fc := fileConfig{
		Name:                    cfg.Name,
		WALDir:                  cfg.WALDir,
		SnapshotCount:           cfg.SnapshotCount,
		HeartbeatInterval:       s.heartbeatMs,
		ElectionTimeout:         s.electionMs,
		MaxTxnOps:               cfg.MaxTxnOps,
		MaxRequestBytes:         cfg.MaxRequestBytes,
		QuotaBackendBytes:       cfg.QuotaBackendBytes,
		InitialClusterState:     cfg.InitialClusterState,
		InitialClusterToken:     cfg.InitialClusterToken,
		AutoCompactionRetention: cfg.AutoCompactionRetention,
		AutoCompactionMode:      cfg.AutoCompactionMode,
		LogLevel:                cfg.LogLevel,
	}
	if err := yaml.Unmarshal(b, &fc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var keys map[string]any
	if err := yaml.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}

	cfg.Name = fc.Name
	cfg.DataDir = fc.DataDir
	cfg.WALDir = fc.WALDir
	cfg.SnapshotCount = fc.SnapshotCount
	s.heartbeatMs = fc.HeartbeatInterval
	s.electionMs = fc.ElectionTimeout
	cfg.MaxTxnOps = fc.MaxTxnOps
	cfg.MaxRequestBytes = fc.MaxRequestBytes
	cfg.QuotaBackendBytes = fc.QuotaBackendBytes
	cfg.InitialClusterToken = fc.InitialClusterToken
	cfg.AutoCompactionRetention = fc.AutoCompactionRetention
	cfg.AutoCompactionMode = fc.AutoCompactionMode
	cfg.LogLevel = fc.LogLevel
	if fc.SnapshotCatchUpEntries > 0 {
		cfg.SnapshotCatchUpEntries = fc.SnapshotCatchUpEntries
	}
	if fc.StrictReconfigCheck != nil {
		cfg.StrictReconfigCheck = *fc.StrictReconfigCheck
	}
	if fc.StorageCacheBytes > 0 {
		cfg.StorageCacheBytes = fc.StorageCacheBytes
	}
	if fc.SnapshotFormat != "" {
		cfg.SnapshotFormat = fc.SnapshotFormat
	}
	if fc.SnapshotCatchUpBytes != nil {
		cfg.SnapshotCatchUpBytes = *fc.SnapshotCatchUpBytes
	}
	cfg.BackupDir = fc.BackupDir
	if fc.BackupInterval != nil {
		cfg.BackupInterval = time.Duration(*fc.BackupInterval)
	}
	if fc.BackupRetention != nil {
		cfg.BackupRetention = *fc.BackupRetention
	}
	if fc.BackupOnLeaderOnly != nil {
		cfg.BackupOnLeaderOnly = *fc.BackupOnLeaderOnly
	}
	if fc.EnablePprof {
		cfg.EnablePprof = true
	}
	if fc.PreVote != nil {
		cfg.PreVote = *fc.PreVote
	}
	if fc.ExperimentalWatchProgressNotifyInterval > 0 {
		cfg.WatchProgressNotifyInterval = time.Duration(fc.ExperimentalWatchProgressNotifyInterval)
	}
	if fc.WatchProgressNotifyInterval > 0 {
		cfg.WatchProgressNotifyInterval = time.Duration(fc.WatchProgressNotifyInterval)
	}
	cfg.AuditLogPath, cfg.AuditLogReads = fc.AuditLogPath, fc.AuditLogReads
	cfg.Console = fc.Console
	if fc.AuditLogMaxSize != nil {
		cfg.AuditLogMaxSizeMB = *fc.AuditLogMaxSize
	}
	if fc.AuditLogMaxBackups != nil {
		cfg.AuditLogMaxBackups = *fc.AuditLogMaxBackups
	}
	if fc.Logger != "" {
		s.logger = fc.Logger
	}
	if len(fc.LogOutputs) > 0 {
		s.logOutputs = strings.Join(fc.LogOutputs, ",")
	}
	if fc.LogFormat != "" {
		cfg.LogFormat = fc.LogFormat
	}
	cfg.EnableLogRotation = fc.EnableLogRotation
	if dc := fc.DiscoveryConfig; dc != nil {
		d := &s.discovery
		d.Token = dc.Token
		s.discoveryEndpoints = strings.Join(dc.Client.Endpoints, ",")
		for _, v := range []struct {
			from *time.Duration
			to   *time.Duration
		}{{dc.Client.RequestTimeout, &d.RequestTimeout}, {dc.Client.DialTimeout, &d.DialTimeout},
			{dc.Client.KeepAliveTime, &d.KeepAliveTime}, {dc.Client.KeepAliveTimeout, &d.KeepAliveTimeout}} {
			if v.from != nil {
				*v.to = *v.from
			}
		}
		if sc := dc.Client.Secure; sc != nil {
			d.Cert, d.Key, d.CACert, d.InsecureSkipVerify = sc.Cert, sc.Key, sc.Cacert, sc.InsecureSkipVerify
			if sc.InsecureTransport != nil {
				d.InsecureTransport = *sc.InsecureTransport
			}
		}
		if a := dc.Client.Auth; a != nil {
			d.User, d.Password = a.Username, a.Password
		}
	}
	cfg.UnsafeNoFsync = fc.UnsafeNoFsync
	cfg.ForceNewCluster = fc.ForceNewCluster
	cfg.AutoPromoteLearners = fc.AutoPromoteLearners
	if fc.MaxLearners != nil {
		cfg.MaxLearners = *fc.MaxLearners
	}
	if fc.LogRotationConfigJSON != "" {
		cfg.LogRotationConfigJSON = fc.LogRotationConfigJSON
	}
	if fc.Metrics != "" {
		cfg.Metrics = fc.Metrics
	}
	if fc.AuthToken != "" {
		cfg.AuthToken = fc.AuthToken
	}
	if fc.AuthTokenTTL != nil {
		s.authTokenTTL = *fc.AuthTokenTTL
	}
	if fc.BcryptCost != nil {
		s.bcryptCost = *fc.BcryptCost
	}
	if fc.EnableGRPCGateway != nil {
		cfg.EnableGRPCGateway = *fc.EnableGRPCGateway
	}
	if fc.MaxConcurrentStreams != nil {
		cfg.MaxConcurrentStreams = *fc.MaxConcurrentStreams
	}
	for _, d := range []struct {
		dst *time.Duration
		ns  *int64
	}{
		{&cfg.GRPCKeepAliveMinTime, fc.GRPCKeepAliveMinTime},
		{&cfg.GRPCKeepAliveInterval, fc.GRPCKeepAliveInterval},
		{&cfg.GRPCKeepAliveTimeout, fc.GRPCKeepAliveTimeout},
	} {
		if d.ns != nil {
			*d.dst = time.Duration(*d.ns)
		}
	}
	cfg.InitialClusterState = fc.InitialClusterState
	if cfg.InitialClusterState == "" {
		cfg.InitialClusterState = "new"
	}
	s.initialCluster = fc.InitialCluster
	if err := setURLs(&cfg.ListenPeerURLs, "listen-peer-urls", fc.ListenPeerURLs); err != nil {
		return nil, err
	}
	if err := setURLs(&cfg.ListenClientURLs, "listen-client-urls", fc.ListenClientURLs); err != nil {
		return nil, err
	}
	if err := setURLs(&cfg.ListenClientHTTPURLs, "listen-client-http-urls", fc.ListenClientHTTPURLs); err != nil {
		return nil, err
	}
	if err := setURLs(&cfg.InitialAdvertisePeerURLs, "initial-advertise-peer-urls", fc.InitialAdvertisePeerURLs); err != nil {
		return nil, err
	}
	if err := setURLs(&cfg.AdvertiseClientURLs, "advertise-client-urls", fc.AdvertiseClientURLs); err != nil {
		return nil, err
	}

	if err := fileTLS(&fc, &s.tls); err != nil {
		return nil, err
	}
	implemented := append(newCommandLine(newSettings(), io.Discard, lg).helpOrder,
		"client-transport-security", "peer-transport-security")
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := keys[k]
		s.set[k] = true
		if d, ok := refusedFlags[k]; ok {
			if v != nil && fmt.Sprint(v) != d {
				s.refused[k] = fmt.Sprint(v)
			}
			continue
		}
		if slices.Contains(implemented, k) {
			continue
		}
		if i := slices.IndexFunc(ignoredFlags, func(f ignoredFlag) bool { return f.name == k }); i >= 0 {
			warnIgnored(lg, ignoredFlags[i], fmt.Sprint(v))
			continue
		}
		if i := slices.IndexFunc(fileOnlyKeys, func(f ignoredFlag) bool { return f.name == k }); i >= 0 {
			warnIgnored(lg, fileOnlyKeys[i], fmt.Sprint(v))
			continue
		}
		lg.Warn("unknown configuration file key; ignoring", "key", k, "path", path)
	}
	return s, nil
}

// setURLs parses a config-file URL list into *dst; an empty string keeps
// the default, as in etcd.
func setURLs(dst *[]url.URL, key, in string) error {
	if in == "" {
		return nil
	}
	us, err := parseURLs(in)
	if err != nil {
		return fmt.Errorf("config file: %s: %w", key, err)
	}
	*dst = us
	return nil
}
