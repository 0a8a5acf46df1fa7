package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/tlsconfig"
)

func mustURLs(t *testing.T, ss ...string) []url.URL {
	t.Helper()
	var out []url.URL
	for _, s := range ss {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *u)
	}
	return out
}

// defaults is what a bare "cairn" runs with: server.NewConfig.
func defaults() *server.Config { return server.NewConfig() }

type parseCase struct {
	name string
	args []string
	env  []string
	// file, when set, is written to a temporary file; "{file}" in args
	// and env is replaced by its path.
	file string
	// want edits the defaults into the expected config; nil with wantErr.
	want func(t *testing.T, c *server.Config)
	// wantErr is a substring of the expected error.
	wantErr string
	// wantLog is a substring the parse-time log must contain.
	wantLog string
}

func runParseCases(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Relative default paths are compared as given; nothing is created.
			path := filepath.Join(t.TempDir(), "etcd.conf.yml")
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			subst := func(ss []string) []string {
				out := make([]string, len(ss))
				for i, s := range ss {
					out[i] = strings.ReplaceAll(s, "{file}", path)
				}
				return out
			}
			var logs, stdout, stderr bytes.Buffer
			lg := slog.New(slog.NewTextHandler(&logs, nil))
			inv, err := parseConfig(subst(tc.args), subst(tc.env), &stdout, &stderr, lg)
			if tc.wantLog != "" && !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log does not contain %q:\n%s", tc.wantLog, logs.String())
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v\nstderr: %s\nlog: %s", err, stderr.String(), logs.String())
			}
			want := defaults()
			if tc.want != nil {
				tc.want(t, want)
			}
			if !reflect.DeepEqual(inv.cfg, want) {
				t.Errorf("config mismatch\n got: %+v\nwant: %+v", *inv.cfg, *want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "no flags gives etcd's defaults", wantLog: "default name"},
		{
			name: "name sets the data dir and the initial cluster",
			args: []string{"--name", "m1"},
			want: func(t *testing.T, c *server.Config) {
				c.Name = "m1"
				c.DataDir = "m1.cairn"
				c.InitialCluster = map[string][]url.URL{"m1": mustURLs(t, "http://127.0.0.1:2380")}
			},
		},
		{
			name: "single dash and equals sign work like etcd",
			args: []string{"-name=m1", "-data-dir", "/d", "--wal-dir=/w"},
			want: func(t *testing.T, c *server.Config) {
				c.Name = "m1"
				c.DataDir = "/d"
				c.WALDir = "/w"
				c.InitialCluster = map[string][]url.URL{"m1": mustURLs(t, "http://127.0.0.1:2380")}
			},
		},
		{
			name: "initial cluster defaults to name at every advertised peer URL",
			args: []string{"--name=m1", "--initial-advertise-peer-urls=http://127.0.0.2:2380,http://127.0.0.1:2380"},
			want: func(t *testing.T, c *server.Config) {
				c.Name = "m1"
				c.DataDir = "m1.cairn"
				c.InitialAdvertisePeerURLs = mustURLs(t, "http://127.0.0.1:2380", "http://127.0.0.2:2380")
				c.InitialCluster = map[string][]url.URL{"m1": mustURLs(t, "http://127.0.0.1:2380", "http://127.0.0.2:2380")}
			},
		},
		{
			name: "initial cluster defaults from advertised URLs for the default name too",
			args: []string{"--initial-advertise-peer-urls=http://127.0.0.1:12380"},
			want: func(t *testing.T, c *server.Config) {
				c.InitialAdvertisePeerURLs = mustURLs(t, "http://127.0.0.1:12380")
				c.InitialCluster = map[string][]url.URL{"default": mustURLs(t, "http://127.0.0.1:12380")}
			},
		},
		{
			name: "every implemented flag",
			args: []string{
				"--name=a", "--data-dir=/data", "--wal-dir=/wal",
				"--listen-client-urls=http://127.0.0.1:3379,http://127.0.0.1:3379,unix:///tmp/s",
				"--advertise-client-urls=http://c.example:3379",
				"--listen-peer-urls=http://0.0.0.0:3380",
				"--initial-advertise-peer-urls=http://a.example:3380",
				"--initial-cluster=a=http://a.example:3380,b=http://b.example:3380,b=http://b2.example:3380",
				"--initial-cluster-state=existing", "--initial-cluster-token=tok",
				"--max-request-bytes=1024", "--max-txn-ops=7", "--quota-backend-bytes=8589934592",
				"--auto-compaction-mode=revision", "--auto-compaction-retention=1000",
				"--snapshot-count=5", "--heartbeat-interval=50", "--election-timeout=500",
				"--log-level=debug",
			},
			want: func(t *testing.T, c *server.Config) {
				c.Name, c.DataDir, c.WALDir = "a", "/data", "/wal"
				c.ListenClientURLs = mustURLs(t, "http://127.0.0.1:3379", "unix:///tmp/s")
				c.AdvertiseClientURLs = mustURLs(t, "http://c.example:3379")
				c.ListenPeerURLs = mustURLs(t, "http://0.0.0.0:3380")
				c.InitialAdvertisePeerURLs = mustURLs(t, "http://a.example:3380")
				c.InitialCluster = map[string][]url.URL{
					"a": mustURLs(t, "http://a.example:3380"),
					"b": mustURLs(t, "http://b.example:3380", "http://b2.example:3380"),
				}
				c.InitialClusterState, c.InitialClusterToken = "existing", "tok"
				c.MaxRequestBytes, c.MaxTxnOps, c.QuotaBackendBytes = 1024, 7, 8<<30
				c.AutoCompactionMode, c.AutoCompactionRetention = "revision", "1000"
				c.SnapshotCount = 5
				c.HeartbeatInterval, c.ElectionTimeout = 50*time.Millisecond, 500*time.Millisecond
				c.LogLevel = "debug"
			},
		},
		{
			name: "periodic retention takes hours or a duration",
			args: []string{"--auto-compaction-retention=30m"},
			want: func(t *testing.T, c *server.Config) { c.AutoCompactionRetention = "30m" },
		},
		{
			name: "log level is case-insensitive and zap's fatal maps to error",
			args: []string{"--log-level=FATAL"},
			want: func(t *testing.T, c *server.Config) { c.LogLevel = "error" },
		},
		{
			name: "explicit initial cluster overrides the derived one",
			args: []string{"--name=x", "--initial-cluster=y=http://127.0.0.1:1"},
			want: func(t *testing.T, c *server.Config) {
				c.Name, c.DataDir = "x", "x.cairn"
				c.InitialCluster = map[string][]url.URL{"y": mustURLs(t, "http://127.0.0.1:1")}
			},
		},
	})
}

func TestParseIgnoredAndRefusedFlags(t *testing.T) {
	runParseCases(t, []parseCase{
		{
			name: "TLS flags are taken (files are read when the member starts)",
			args: []string{"--cert-file=/c", "--client-cert-auth", "--name=n", "--peer-cert-file=/p", "--peer-key-file=/k", "--peer-cert-allowed-cn=a,b", "--tls-max-version=TLS1.3"},
			want: func(t *testing.T, c *server.Config) {
				c.ClientTLS = &tlsconfig.Info{CertFile: "/c", ClientCertAuth: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}
				c.PeerTLS = &tlsconfig.Info{CertFile: "/p", KeyFile: "/k", AllowedCNs: []string{"a", "b"}, CheckSAN: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}
				c.Name, c.DataDir = "n", "n.cairn"
				c.InitialCluster = map[string][]url.URL{"n": mustURLs(t, "http://127.0.0.1:2380")}
			},
		},
		{
			name: "HTTP client URLs, the gateway switch, streams and keepalives",
			args: []string{"--listen-client-http-urls=http://127.0.0.1:9", "--enable-grpc-gateway=false", "--max-concurrent-streams=7",
				"--grpc-keepalive-min-time=1s", "--grpc-keepalive-interval=1m", "--grpc-keepalive-timeout=0"},
			want: func(t *testing.T, c *server.Config) {
				c.ListenClientHTTPURLs = mustURLs(t, "http://127.0.0.1:9")
				c.EnableGRPCGateway = false
				c.MaxConcurrentStreams = 7
				c.GRPCKeepAliveMinTime, c.GRPCKeepAliveInterval, c.GRPCKeepAliveTimeout = time.Second, time.Minute, 0
			},
		},
		{
			name: "the same from the config file (durations in nanoseconds)",
			file: "listen-client-http-urls: http://127.0.0.1:9\nenable-grpc-gateway: false\nmax-concurrent-streams: 7\ngrpc-keepalive-min-time: 1000000000\ngrpc-keepalive-interval: 60000000000\ngrpc-keepalive-timeout: 0\n",
			args: []string{"--config-file={file}"},
			want: func(t *testing.T, c *server.Config) {
				c.ListenClientHTTPURLs = mustURLs(t, "http://127.0.0.1:9")
				c.EnableGRPCGateway = false
				c.MaxConcurrentStreams = 7
				c.GRPCKeepAliveMinTime, c.GRPCKeepAliveInterval, c.GRPCKeepAliveTimeout = time.Second, time.Minute, 0
			},
		},
		{name: "HTTP client URL must be an IP", args: []string{"--listen-client-http-urls=http://example.com:9"}, wantErr: "expected IP in URL for binding (http://example.com:9)"},
		{name: "streams is a uint32", args: []string{"--max-concurrent-streams=4294967296"}, wantErr: "max-concurrent-streams"},
		{
			name: "in-memory raft log bound by size",
			args: []string{"--snapshot-catchup-bytes=1048576"},
			want: func(t *testing.T, c *server.Config) { c.SnapshotCatchUpBytes = 1 << 20 },
		},
		{
			name: "no size bound on the in-memory raft log, from the config file",
			file: "snapshot-catchup-bytes: 0\n",
			args: []string{"--config-file={file}"},
			want: func(t *testing.T, c *server.Config) { c.SnapshotCatchUpBytes = 0 },
		},
		{
			name: "storage cache size",
			args: []string{"--storage-cache-bytes=268435456"},
			want: func(t *testing.T, c *server.Config) { c.StorageCacheBytes = 256 << 20 },
		},
		{
			name: "storage cache size from the config file",
			file: "storage-cache-bytes: 134217728\n",
			args: []string{"--config-file={file}"},
			want: func(t *testing.T, c *server.Config) { c.StorageCacheBytes = 128 << 20 },
		},
		{
			name: "pprof on the client URLs",
			args: []string{"--enable-pprof"},
			want: func(t *testing.T, c *server.Config) { c.EnablePprof = true },
		},
		{
			name: "pprof from the config file",
			file: "enable-pprof: true\n",
			args: []string{"--config-file={file}"},
			want: func(t *testing.T, c *server.Config) { c.EnablePprof = true },
		},
		{
			name: "metrics level, logger, log outputs and format are taken",
			args: []string{"--metrics=extensive", "--listen-metrics-urls=http://127.0.0.1:9", "--logger=zap", "--log-outputs=stderr,/tmp/x.log", "--log-format=console"},
			want: func(t *testing.T, c *server.Config) {
				c.ListenMetricsURLs = mustURLs(t, "http://127.0.0.1:9")
				c.Metrics = "extensive"
				c.LogOutputs = []string{"stderr", "/tmp/x.log"}
				c.LogFormat = "console"
			},
		},
		{name: "capnslog is gone", args: []string{"--logger=capnslog"}, wantErr: "--logger=capnslog is removed in v3.5"},
		{name: "unknown logger", args: []string{"--logger=x"}, wantErr: `unknown logger option "x"`},
		{name: "default with another output", args: []string{"--log-outputs=default,stdout"}, wantErr: `multi logoutput for "default" is not supported yet`},
		{name: "unknown log format", args: []string{"--log-format=xml"}, wantErr: "unknown log format: xml, supported values json, console"},
		{
			name: "json is the default log format",
			args: []string{"--log-format=json"},
		},
		{name: "cipher suites with TLS 1.3 only", args: []string{"--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "--tls-min-version=TLS1.3"}, wantErr: "cipher suites cannot be configured when only TLS1.3 is enabled"},
		{name: "min above max", args: []string{"--tls-min-version=TLS1.3", "--tls-max-version=TLS1.2"}, wantErr: "min version (TLS1.3) is greater than max version (TLS1.2)"},
		{name: "unknown TLS version", args: []string{"--tls-min-version=TLS1.1"}, wantErr: `unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)`},
		{name: "unknown cipher suite", args: []string{"--cipher-suites=NOPE"}, wantErr: `unexpected TLS cipher suite "NOPE"`},
		{
			name:    "etcd 3.5 experimental flags are ignored, bool or valued",
			args:    []string{"--experimental-initial-corrupt-check=true", "--experimental-enable-lease-checkpoint", "--experimental-compaction-batch-limit", "5", "--log-level=warn"},
			wantLog: "experimental-compaction-batch-limit",
			want:    func(t *testing.T, c *server.Config) { c.LogLevel = "warn" },
		},
		{
			name: "watch progress notify interval, and its deprecated experimental name",
			args: []string{"--experimental-watch-progress-notify-interval", "5s", "--watch-progress-notify-interval=2s"},
			want: func(t *testing.T, c *server.Config) { c.WatchProgressNotifyInterval = 2 * time.Second },
		},
		{
			name:    "unknown experimental flags are ignored, their value guessed from the command line",
			args:    []string{"--experimental-new-thing", "7", "--experimental-new-bool", "--experimental-x=y", "--log-level=warn"},
			wantLog: "experimental-new-bool",
			want:    func(t *testing.T, c *server.Config) { c.LogLevel = "warn" },
		},
		{
			name: "etcd's legacy ignored flags take no value",
			args: []string{"--snapshot", "--v", "--log-level=error"},
			want: func(t *testing.T, c *server.Config) { c.LogLevel = "error" },
		},
		{
			name: "refused flags at their default are fine",
			args: []string{"--force-new-cluster=false", "--discovery-srv="},
		},
		{
			name: "force-new-cluster is accepted",
			args: []string{"--force-new-cluster"},
			want: func(t *testing.T, c *server.Config) { c.ForceNewCluster = true },
		},
		{
			name: "force-new-cluster from the environment",
			env:  []string{"ETCD_FORCE_NEW_CLUSTER=true"},
			want: func(t *testing.T, c *server.Config) { c.ForceNewCluster = true },
		},
		{name: "discovery is refused", args: []string{"--discovery-srv=example.com"}, wantErr: "--discovery-srv=example.com is not supported"},
	})
}

func TestParseEnv(t *testing.T) {
	runParseCases(t, []parseCase{
		{
			name: "every flag has an ETCD_ variable",
			env: []string{
				"ETCD_NAME=e", "ETCD_DATA_DIR=/e", "ETCD_HEARTBEAT_INTERVAL=10", "ETCD_ELECTION_TIMEOUT=100",
				"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:4379", "ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:4379",
				"ETCD_INITIAL_CLUSTER_STATE=existing", "ETCD_MAX_TXN_OPS=3",
			},
			wantLog: "recognized and used environment variable",
			want: func(t *testing.T, c *server.Config) {
				c.Name, c.DataDir = "e", "/e"
				c.InitialCluster = map[string][]url.URL{"e": mustURLs(t, "http://127.0.0.1:2380")}
				c.HeartbeatInterval, c.ElectionTimeout = 10*time.Millisecond, 100*time.Millisecond
				c.ListenClientURLs = mustURLs(t, "http://127.0.0.1:4379")
				c.AdvertiseClientURLs = mustURLs(t, "http://127.0.0.1:4379")
				c.InitialClusterState, c.MaxTxnOps = "existing", 3
			},
		},
		{
			name: "flags and env combine; empty variables are unset",
			args: []string{"--name=f"},
			env:  []string{"ETCD_DATA_DIR=/from-env", "ETCD_WAL_DIR=", "PATH=/bin"},
			want: func(t *testing.T, c *server.Config) {
				c.Name, c.DataDir = "f", "/from-env"
				c.InitialCluster = map[string][]url.URL{"f": mustURLs(t, "http://127.0.0.1:2380")}
			},
		},
		{
			name:    "a variable for a flag also on the command line is an error, as in etcd",
			args:    []string{"--name=f"},
			env:     []string{"ETCD_NAME=g"},
			wantErr: "conflicting environment variable ETCD_NAME",
		},
		{
			name:    "unknown ETCD_ variables are logged",
			env:     []string{"ETCD_NO_SUCH_FLAG=1"},
			wantLog: "ETCD_NO_SUCH_FLAG=1",
		},
		{
			name:    "ETCD_VERSION does not turn a start into --version",
			env:     []string{"ETCD_VERSION=true"},
			wantLog: "cannot set special environment variable",
		},
		{
			name:    "ignored flags can be set from the environment",
			env:     []string{"ETCD_MEMORY_MLOCK=true"},
			wantLog: "flag=memory-mlock",
		},
		{name: "bad env value", env: []string{"ETCD_SNAPSHOT_COUNT=lots"}, wantErr: `invalid value "lots" for ETCD_SNAPSHOT_COUNT`},
		{
			name:    "listen client URLs from env need advertise URLs too",
			env:     []string{"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:4379"},
			wantErr: "--advertise-client-urls is required when --listen-client-urls is set explicitly",
		},
	})
}

func TestParseConfigFile(t *testing.T) {
	const full = `
name: y1
data-dir: /var/lib/y
wal-dir: /var/lib/y/wal
snapshot-count: 42
heartbeat-interval: 200
election-timeout: 2000
listen-peer-urls: http://127.0.0.1:5380
listen-client-urls: http://127.0.0.1:5379,http://127.0.0.2:5379
initial-advertise-peer-urls: http://127.0.0.1:5380
advertise-client-urls: http://127.0.0.1:5379
initial-cluster: y1=http://127.0.0.1:5380,y2=http://127.0.0.1:6380
initial-cluster-state: existing
initial-cluster-token: yt
max-request-bytes: 2048
max-txn-ops: 9
quota-backend-bytes: 1000000
auto-compaction-mode: periodic
auto-compaction-retention: 1
log-level: warn
`
	wantFull := func(t *testing.T, c *server.Config) {
		c.Name, c.DataDir, c.WALDir = "y1", "/var/lib/y", "/var/lib/y/wal"
		c.SnapshotCount = 42
		c.HeartbeatInterval, c.ElectionTimeout = 200*time.Millisecond, 2*time.Second
		c.ListenPeerURLs = mustURLs(t, "http://127.0.0.1:5380")
		c.ListenClientURLs = mustURLs(t, "http://127.0.0.1:5379", "http://127.0.0.2:5379")
		c.InitialAdvertisePeerURLs = mustURLs(t, "http://127.0.0.1:5380")
		c.AdvertiseClientURLs = mustURLs(t, "http://127.0.0.1:5379")
		c.InitialCluster = map[string][]url.URL{
			"y1": mustURLs(t, "http://127.0.0.1:5380"),
			"y2": mustURLs(t, "http://127.0.0.1:6380"),
		}
		c.InitialClusterState, c.InitialClusterToken = "existing", "yt"
		c.MaxRequestBytes, c.MaxTxnOps, c.QuotaBackendBytes = 2048, 9, 1000000
		c.AutoCompactionMode, c.AutoCompactionRetention = "periodic", "1"
		c.LogLevel = "warn"
	}
	runParseCases(t, []parseCase{
		{name: "every implemented key", file: full, args: []string{"--config-file={file}"}, want: wantFull},
		{
			name: "ETCD_CONFIG_FILE names the file",
			file: full, env: []string{"ETCD_CONFIG_FILE={file}"}, want: wantFull,
		},
		{
			name:    "other flags and variables are ignored when a file is given",
			file:    full,
			args:    []string{"--config-file={file}", "--name=flag", "--snapshot-count=1"},
			env:     []string{"ETCD_DATA_DIR=/env", "ETCD_NAME=env"},
			wantLog: "other configuration command line flags and environment variables will be ignored",
			want:    wantFull,
		},
		{
			name: "missing keys keep defaults; data dir and cluster derive from the name",
			file: "name: z\n",
			args: []string{"-config-file", "{file}"},
			want: func(t *testing.T, c *server.Config) {
				c.Name, c.DataDir = "z", "z.cairn"
				c.InitialCluster = map[string][]url.URL{"z": mustURLs(t, "http://127.0.0.1:2380")}
			},
		},
		{
			name: "a file may set listen client URLs alone (etcd keeps the default advertised URL)",
			file: "listen-client-urls: http://127.0.0.1:7379\n",
			args: []string{"--config-file={file}"},
			want: func(t *testing.T, c *server.Config) { c.ListenClientURLs = mustURLs(t, "http://127.0.0.1:7379") },
		},
		{
			name:    "ignored and unknown keys are logged, not fatal",
			file:    "memory-mlock: true\nno-such-key: 1\n",
			args:    []string{"--config-file={file}"},
			wantLog: "unknown configuration file key",
		},
		{
			name: "the discovery-config section",
			file: "name: m1\ndiscovery-config:\n  token: tok\n  client:\n    endpoints: [http://127.0.0.1:9379, http://127.0.0.1:8379]\n    dial-timeout: 3000000000\n    auth:\n      username: u\n      password: p\n",
			args: []string{"--config-file={file}"},
			want: func(t *testing.T, c *server.Config) {
				c.Name = "m1"
				c.DataDir = "m1.cairn"
				d := discovery.Defaults()
				d.Token, d.Endpoints, d.DialTimeout, d.User, d.Password = "tok", []string{"http://127.0.0.1:8379", "http://127.0.0.1:9379"}, 3*time.Second, "u", "p"
				c.Discovery = &d
				c.InitialCluster = map[string][]url.URL{"m1": mustURLs(t, "http://127.0.0.1:2380")}
			},
		},
		{
			name:    "discovery and an initial cluster conflict",
			args:    []string{"--discovery-endpoints=http://127.0.0.1:9", "--discovery-token=t", "--initial-cluster=a=http://127.0.0.1:2380"},
			wantErr: `multiple discovery or bootstrap flags are set`,
		},
		{
			name:    "a discovery token needs endpoints",
			args:    []string{"--discovery-token=t"},
			wantErr: "both --discovery-token and --discovery-endpoints must be set",
		},
		{
			name: "TLS sections of the file",
			file: "client-transport-security:\n  cert-file: /c\n  key-file: /k\n  client-cert-auth: true\n  trusted-ca-file: /ca\npeer-transport-security:\n  cert-file: /pc\n  key-file: /pk\n  allowed-cn: [m1]\ncipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\nlisten-metrics-urls: http://127.0.0.1:9\n",
			args: []string{"--config-file={file}"},
			want: func(t *testing.T, c *server.Config) {
				cs := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
				c.ClientTLS = &tlsconfig.Info{CertFile: "/c", KeyFile: "/k", ClientCertAuth: true, TrustedCAFile: "/ca", CipherSuites: cs, MinVersion: tls.VersionTLS12}
				c.PeerTLS = &tlsconfig.Info{CertFile: "/pc", KeyFile: "/pk", AllowedCNs: []string{"m1"}, CheckSAN: true, CipherSuites: cs, MinVersion: tls.VersionTLS12}
				c.ListenMetricsURLs = mustURLs(t, "http://127.0.0.1:9")
			},
		},
		{name: "refused key", file: "discovery-srv: example.com\n", args: []string{"--config-file={file}"}, wantErr: "--discovery-srv=example.com is not supported"},
		{
			name: "force-new-cluster key",
			file: "force-new-cluster: true\n",
			args: []string{"--config-file={file}"},
			want: func(t *testing.T, c *server.Config) { c.ForceNewCluster = true },
		},
		{name: "heartbeat and election are milliseconds", file: "heartbeat-interval: 300\nelection-timeout: 1000\n", args: []string{"--config-file={file}"}, wantErr: "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]"},
		{name: "bad URL", file: "listen-peer-urls: 127.0.0.1:2380\n", args: []string{"--config-file={file}"}, wantErr: "listen-peer-urls"},
		{name: "bad type", file: "snapshot-count: many\n", args: []string{"--config-file={file}"}, wantErr: "cannot unmarshal"},
		{name: "bad cluster state", file: "initial-cluster-state: old\n", args: []string{"--config-file={file}"}, wantErr: `unexpected clusterState "old"`},
		{name: "missing file", args: []string{"--config-file=/nonexistent/cairn.yml"}, wantErr: "no such file"},
	})
}

func TestParseErrors(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "positional argument", args: []string{"serve"}, wantErr: `"serve" is not a valid flag`},
		{name: "zero heartbeat", args: []string{"--heartbeat-interval=0"}, wantErr: "--heartbeat-interval must be >0 (set to 0ms)"},
		{name: "election under five heartbeats", args: []string{"--heartbeat-interval=300"}, wantErr: "should be at least as 5 times"},
		{name: "election too long", args: []string{"--election-timeout=50001"}, wantErr: "--election-timeout[50001ms] is too long"},
		{name: "unknown compaction mode", args: []string{"--auto-compaction-mode=daily"}, wantErr: `unknown auto-compaction-mode "daily"`},
		{name: "bad periodic retention", args: []string{"--auto-compaction-retention=soon"}, wantErr: "error parsing CompactionRetention"},
		{name: "revision retention must be a count", args: []string{"--auto-compaction-mode=revision", "--auto-compaction-retention=1h"}, wantErr: "not a revision count"},
		{name: "unknown log level", args: []string{"--log-level=loud"}, wantErr: `unrecognized --log-level "loud"`},
		{name: "log rotation needs a file", args: []string{"--enable-log-rotation"}, wantErr: "--log-outputs requires a single file path when --log-rotate-config-json is defined"},
		{name: "log rotation of one file only", args: []string{"--enable-log-rotation", "--log-outputs=/tmp/a.log,/tmp/b.log"}, wantErr: "--log-outputs requires a single file path"},
		{name: "bad log rotation JSON", args: []string{"--enable-log-rotation", "--log-outputs=/tmp/a.log", "--log-rotation-config-json={"}, wantErr: "improperly formatted log rotation config"},
		{name: "bind URL must be an IP", args: []string{"--listen-peer-urls=http://example.com:2380"}, wantErr: "expected IP in URL for binding (http://example.com:2380)"},
		{name: "bad initial cluster URL", args: []string{"--initial-cluster=a=b"}, wantErr: "URL scheme must be http, https, unix, or unixs: b"},
		{
			name:    "listen client URLs need advertise URLs",
			args:    []string{"--listen-client-urls=http://127.0.0.1:2379"},
			wantErr: "--advertise-client-urls is required when --listen-client-urls is set explicitly",
		},
	})
}

// TestParseUsageErrors pins the errors the flag package reports itself, and
// etcd's text for them, which the process exits 2 on.
func TestParseUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag\nUsage:"},
		{[]string{"-no-such-flag=1"}, "flag provided but not defined: -no-such-flag\n"},
		{[]string{"--snapshot-count=abc"}, `invalid value "abc" for flag -snapshot-count: parse error`},
		{[]string{"--listen-peer-urls=127.0.0.1:2380"}, `invalid value "127.0.0.1:2380" for flag -listen-peer-urls`},
		{[]string{"--listen-peer-urls=http://127.0.0.1:2380/path"}, "URL must not contain a path"},
		{[]string{"--initial-cluster-state=bogus"}, `invalid value "bogus" for flag -initial-cluster-state`},
		{[]string{"--name"}, "flag needs an argument: -name"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseConfig(tc.args, nil, io.Discard, &stderr, slog.New(slog.DiscardHandler))
			var uerr usageError
			if !errors.As(err, &uerr) {
				t.Fatalf("error = %v, want a usage error", err)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args, env  []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "unknown flag exits 2 like etcd", args: []string{"--bogus"}, wantCode: 2, wantStderr: "flag provided but not defined: -bogus"},
		{name: "help exits 0 with help on stdout", args: []string{"--help"}, wantCode: 0, wantStdout: "--data-dir '${name}.cairn'"},
		{name: "short help", args: []string{"-h"}, wantCode: 0, wantStdout: "--initial-cluster-state 'new'"},
		{name: "version", args: []string{"--version", "--name=x"}, wantCode: 0, wantStdout: "cairn Version: " + version + "\nGit SHA: "},
		{name: "version shows the API version", args: []string{"--version"}, wantCode: 0, wantStdout: "API version: 3.7\n"},
		{name: "invalid configuration exits 1", args: []string{"x"}, wantCode: 1, wantStderr: "failed to verify flags"},
		{name: "env conflict exits 1", args: []string{"--name=a"}, env: []string{"ETCD_NAME=b"}, wantCode: 1, wantStderr: "conflicting environment variable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, tc.env, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d\nstderr: %s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

// TestIgnoredFlagsAreNotImplementedFlags guards the tables against a flag
// being both implemented and ignored (flag.Var would panic anyway, but the
// config-file path checks the lists separately).
func TestIgnoredFlagsAreNotImplementedFlags(t *testing.T) {
	cl := newCommandLine(newSettings(), io.Discard, slog.New(slog.DiscardHandler))
	for _, f := range ignoredFlags {
		for _, impl := range cl.helpOrder {
			if f.name == impl {
				t.Errorf("%s is both implemented and ignored", f.name)
			}
		}
	}
}

func TestParseBackupFlags(t *testing.T) {
	backups := func(dir string, every time.Duration, keep int, leaderOnly bool) func(*testing.T, *server.Config) {
		return func(t *testing.T, c *server.Config) {
			c.BackupDir, c.BackupInterval, c.BackupRetention, c.BackupOnLeaderOnly = dir, every, keep, leaderOnly
		}
	}
	runParseCases(t, []parseCase{
		{name: "defaults", args: []string{"--backup-dir=/b"}, want: backups("/b", 30*time.Minute, 5, true)},
		{
			name: "every backup flag",
			args: []string{"--backup-dir=/b", "--backup-interval=1s", "--backup-retention=3", "--backup-on-leader-only=false"},
			want: backups("/b", time.Second, 3, false),
		},
		{
			name: "from the environment",
			env:  []string{"ETCD_BACKUP_DIR=/e", "ETCD_BACKUP_INTERVAL=6h", "ETCD_BACKUP_RETENTION=2", "ETCD_BACKUP_ON_LEADER_ONLY=false"},
			want: backups("/e", 6*time.Hour, 2, false),
		},
		{
			name: "from the config file, the interval as a duration",
			file: "backup-dir: /f\nbackup-interval: 15m\nbackup-retention: 9\nbackup-on-leader-only: false\n",
			args: []string{"--config-file={file}"},
			want: backups("/f", 15*time.Minute, 9, false),
		},
		{
			name: "from the config file, the interval in nanoseconds",
			file: "backup-dir: /f\nbackup-interval: 60000000000\n",
			args: []string{"--config-file={file}"},
			want: backups("/f", time.Minute, 5, true),
		},
		{name: "zero interval", args: []string{"--backup-dir=/b", "--backup-interval=0s"}, wantErr: "--backup-interval must be > 0 when --backup-dir is set (got 0s)"},
		{name: "negative interval", args: []string{"--backup-dir=/b", "--backup-interval=-1m"}, wantErr: "--backup-interval must be > 0"},
		{name: "zero retention", args: []string{"--backup-dir=/b", "--backup-retention=0"}, wantErr: "--backup-retention must be at least 1 when --backup-dir is set (got 0)"},
		{name: "bad interval in the file", file: "backup-dir: /f\nbackup-interval: soon\n", args: []string{"--config-file={file}"}, wantErr: "soon"},
		{
			name:    "backup flags without a directory are harmless, with a warning",
			args:    []string{"--backup-interval=0s", "--backup-retention=0"},
			wantLog: "--backup-interval has no effect without --backup-dir",
			want:    backups("", 0, 0, true),
		},
	})
}
