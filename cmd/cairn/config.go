package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairnkv/cairn/backup"
	"github.com/cairnkv/cairn/logging"
	"github.com/cairnkv/cairn/server"
)

// invocation is what one run of the binary was asked to do.
type invocation struct {
	// printVersion is set by --version; nothing else is then parsed.
	printVersion bool
	// cfg is the member's configuration when printVersion is false.
	cfg *server.Config
}

// errHelp reports that --help was given and the help has been printed.
var errHelp = errors.New("help requested")

// usageError is a command-line error the flag package has already printed
// with the usage text; like etcd, the process exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// errUnsetAdvertiseClientURLs is etcd's error, word for word.
var errUnsetAdvertiseClientURLs = errors.New("--advertise-client-urls is required when --listen-client-urls is set explicitly")

// maxElectionMs is etcd's ceiling on --election-timeout.
const maxElectionMs = 50000

// parseConfig turns command-line arguments (without the program name) and
// the environment (os.Environ's form) into a server.Config, the way etcd
// 3.7's etcdmain does:
//
//   - flags come first, then ETCD_* variables for flags not given, then
//     defaults; a flag given both ways is an error;
//   - --config-file (or ETCD_CONFIG_FILE) replaces all of that: the YAML
//     file is the only source and other flags and variables are ignored,
//     though the command line must still parse;
//   - --data-dir defaults to "${name}.cairn", --initial-cluster to this
//     member alone under its name at its advertised peer URLs.
//
// Progress and warnings go to lg; usage errors to stderr; --help to
// stdout. The error is errHelp, a usageError, or a configuration error.
func parseConfig(args, environ []string, stdout, stderr io.Writer, lg *slog.Logger) (*invocation, error) {
	s := newSettings()
	cl := newCommandLine(s, stderr, lg)
	registerExperimental(cl.fs, args, lg)
	if err := cl.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cl.printHelp(stdout)
			return nil, errHelp
		}
		return nil, usageError{err}
	}
	if cl.fs.NArg() != 0 {
		return nil, fmt.Errorf("%q is not a valid flag", cl.fs.Arg(0))
	}
	if cl.printVersion {
		return &invocation{printVersion: true}, nil
	}

	env := environMap(environ)
	if v, ok := env["ETCD_VERSION"]; ok {
		// Like etcd: ETCD_VERSION would turn every start into --version.
		lg.Warn("cannot set special environment variable", "key", "ETCD_VERSION", "value", v)
		delete(env, "ETCD_VERSION")
	}
	configFile := cl.configFile
	if configFile == "" {
		configFile = env["ETCD_CONFIG_FILE"]
	}

	if configFile != "" {
		fileSettings, err := loadConfigFile(configFile, lg)
		if err != nil {
			return nil, err
		}
		lg.Info("loaded server configuration, other configuration command line flags and environment variables will be ignored if provided",
			"path", configFile)
		var ignored []string
		cl.fs.Visit(func(f *flag.Flag) {
			if f.Name != "config-file" {
				ignored = append(ignored, "--"+f.Name)
			}
		})
		if len(ignored) > 0 {
			lg.Warn("command-line flags ignored because a configuration file is given", "flags", ignored)
		}
		s = fileSettings
	} else {
		if err := applyEnv(cl.fs, env, lg); err != nil {
			return nil, err
		}
		cl.fs.Visit(func(f *flag.Flag) { s.set[f.Name] = true })
		cl.refusedSet(s)
		// etcd drops the default advertised client URL when the listen
		// URLs are given without it, and then insists on it.
		if s.set["listen-client-urls"] && !s.set["advertise-client-urls"] {
			return nil, errUnsetAdvertiseClientURLs
		}
	}

	cfg, err := s.finish(lg)
	if err != nil {
		return nil, err
	}
	return &invocation{cfg: cfg}, nil
}

// finish derives the defaults that depend on other settings, converts
// etcd's forms to server.Config's and validates the result with etcd's
// rules and messages.
func (s *settings) finish(lg *slog.Logger) (*server.Config, error) {
	cfg := s.cfg
	if len(s.refused) > 0 {
		name := slices.Sorted(maps.Keys(s.refused))[0]
		return nil, fmt.Errorf("--%s=%s is not supported by Cairn", name, s.refused[name])
	}

	if cfg.DataDir == "" {
		cfg.DataDir = cfg.Name + ".cairn"
		lg.Info("'data-dir' was empty; using default", "data-dir", cfg.DataDir)
	}
	// etcd recomputes the default only when --name is not "default"; when
	// it is, and the peer URLs are not the defaults, etcd keeps
	// "default=http://localhost:2380" and then fails to start. Cairn
	// derives it whenever --initial-cluster is not given.
	if s.discoveryEndpoints != "" {
		// etcd's rule: discovery replaces --initial-cluster, which must
		// then be left at its default.
		if s.set["initial-cluster"] && s.initialCluster != "default=http://localhost:2380" && s.initialCluster != "" {
			return nil, errors.New(`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv"`)
		}
		seen := map[string]bool{}
		s.discovery.Endpoints = nil
		for _, ep := range strings.Split(s.discoveryEndpoints, ",") {
			if !seen[ep] {
				seen[ep] = true
				s.discovery.Endpoints = append(s.discovery.Endpoints, ep)
			}
		}
		sort.Strings(s.discovery.Endpoints)
	}
	if err := s.discovery.Check(); err != nil {
		return nil, err
	}
	if len(s.discovery.Endpoints) > 0 {
		d := s.discovery
		cfg.Discovery = &d
		s.initialCluster = ""
	}
	if !s.set["initial-cluster"] || s.initialCluster == "" {
		s.initialCluster = initialClusterFromName(cfg.Name, cfg.InitialAdvertisePeerURLs)
	}
	ic, err := parseInitialCluster(s.initialCluster)
	if err != nil {
		return nil, fmt.Errorf("--initial-cluster %q: %w", s.initialCluster, err)
	}
	cfg.InitialCluster = ic

	if err := checkBindURLs(cfg.ListenPeerURLs); err != nil {
		return nil, err
	}
	if err := checkBindURLs(cfg.ListenClientURLs); err != nil {
		return nil, err
	}
	if err := checkBindURLs(cfg.ListenClientHTTPURLs); err != nil {
		return nil, err
	}
	if err := checkHostURLs(cfg.InitialAdvertisePeerURLs); err != nil {
		return nil, fmt.Errorf(`--initial-advertise-peer-urls %q must be "host:port" (%w)`, joinURLs(cfg.InitialAdvertisePeerURLs), err)
	}
	if err := checkHostURLs(cfg.AdvertiseClientURLs); err != nil {
		return nil, fmt.Errorf(`--advertise-client-urls %q must be in the format "host:port", "unix:/path/to/socket" or "unixs:/path/to/socket" (%w)`, joinURLs(cfg.AdvertiseClientURLs), err)
	}
	if cfg.InitialClusterState != "new" && cfg.InitialClusterState != "existing" {
		return nil, fmt.Errorf("unexpected clusterState %q", cfg.InitialClusterState)
	}

	switch {
	case s.heartbeatMs == 0:
		return nil, fmt.Errorf("--heartbeat-interval must be >0 (set to %dms)", s.heartbeatMs)
	case s.electionMs == 0:
		return nil, fmt.Errorf("--election-timeout must be >0 (set to %dms)", s.electionMs)
	case 5*s.heartbeatMs > s.electionMs:
		return nil, fmt.Errorf("--election-timeout[%vms] should be at least as 5 times as --heartbeat-interval[%vms]", s.electionMs, s.heartbeatMs)
	case s.electionMs > maxElectionMs:
		return nil, fmt.Errorf("--election-timeout[%vms] is too long, and should be set less than %vms", s.electionMs, maxElectionMs)
	}
	switch s.logger {
	case "zap":
	case "capnslog":
		return nil, errors.New("--logger=capnslog is removed in v3.5")
	default:
		return nil, fmt.Errorf("unknown logger option %q", s.logger)
	}
	cfg.LogOutputs = strings.Split(s.logOutputs, ",")
	if len(cfg.LogOutputs) > 1 && slices.Contains(cfg.LogOutputs, "default") {
		return nil, errors.New(`multi logoutput for "default" is not supported yet`)
	}
	if cfg.LogFormat != "json" && cfg.LogFormat != "console" {
		return nil, fmt.Errorf("unknown log format: %s, supported values json, console", cfg.LogFormat)
	}
	if err := (logging.Options{Outputs: cfg.LogOutputs, Rotate: cfg.EnableLogRotation, RotationConfig: cfg.LogRotationConfigJSON}).Check(); err != nil {
		return nil, err
	}
	cfg.AuthTokenTTL = time.Duration(s.authTokenTTL) * time.Second
	cfg.BcryptCost = int(s.bcryptCost)
	if kind, _, _ := strings.Cut(cfg.AuthToken, ","); kind != "simple" && kind != "jwt" {
		return nil, fmt.Errorf("unknown token type %q", kind)
	}
	cfg.HeartbeatInterval = time.Duration(s.heartbeatMs) * time.Millisecond
	cfg.ElectionTimeout = time.Duration(s.electionMs) * time.Millisecond

	if err := s.tls.finish(cfg); err != nil {
		return nil, err
	}
	if err := checkCompaction(cfg.AutoCompactionMode, cfg.AutoCompactionRetention); err != nil {
		return nil, err
	}

	if cfg.BackupDir != "" {
		if err := backup.CheckFlags(cfg.BackupDir, cfg.BackupInterval, cfg.BackupRetention); err != nil {
			return nil, err
		}
	} else {
		for _, n := range []string{"backup-interval", "backup-retention", "backup-on-leader-only"} {
			if s.set[n] {
				lg.Warn("--" + n + " has no effect without --backup-dir")
			}
		}
	}

	level, err := normalizeLogLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	if level != strings.ToLower(cfg.LogLevel) {
		lg.Warn("log level has no equivalent; using the closest", "log-level", cfg.LogLevel, "using", level)
	}
	cfg.LogLevel = level

	if cfg.Name == server.DefaultName {
		lg.Warn("it isn't recommended to use default name, please set a value for --name. " +
			"Note that etcd might run into issue when multiple members have the same default name")
	}
	return cfg, nil
}

// checkCompaction validates --auto-compaction-mode and -retention. etcd
// accepts a retention of hours ("1") or a duration ("30m") in periodic
// mode; in revision mode it wants a count, and Cairn holds it to that
// (etcd would also take "1h" there, as 3.6e12 revisions).
func checkCompaction(mode, retention string) error {
	switch mode {
	case "periodic", "revision":
	case "":
		return errors.New("undefined auto-compaction-mode")
	default:
		return fmt.Errorf("unknown auto-compaction-mode %q", mode)
	}
	if retention == "" {
		return nil
	}
	if n, err := strconv.Atoi(retention); err == nil && n >= 0 {
		return nil
	}
	if mode == "revision" {
		return fmt.Errorf("error parsing CompactionRetention: %q is not a revision count (auto-compaction-mode is revision)", retention)
	}
	if _, err := time.ParseDuration(retention); err != nil {
		return fmt.Errorf("error parsing CompactionRetention: %w", err)
	}
	return nil
}

// normalizeLogLevel maps etcd's (zap's) log levels onto server.Config's:
// zap's dpanic, panic and fatal become error. etcd panics on an unknown
// level; Cairn reports it.
func normalizeLogLevel(l string) (string, error) {
	switch ll := strings.ToLower(l); ll {
	case "debug", "info", "warn", "error":
		return ll, nil
	case "dpanic", "panic", "fatal":
		return "error", nil
	}
	return "", fmt.Errorf("unrecognized --log-level %q (want debug, info, warn, error, panic or fatal)", l)
}
