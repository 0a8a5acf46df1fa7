package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/client/pkg/v3/srv"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// envPrefix is the prefix of the environment variables that set global
// flags: --dial-timeout is ETCDCTL_DIAL_TIMEOUT. cairnctl keeps etcdctl's
// prefix so existing environments work unchanged.
const envPrefix = "ETCDCTL"

// globalFlags are the flags every command inherits from the root.
type globalFlags struct {
	endpoints          []string
	debug              bool
	outputFormat       string
	isHex              bool
	dialTimeout        time.Duration
	commandTimeout     time.Duration
	keepAliveTime      time.Duration
	keepAliveTimeout   time.Duration
	maxCallSendMsgSize int
	maxCallRecvMsgSize int

	insecure           bool
	insecureDiscovery  bool
	insecureSkipVerify bool
	certFile           string
	keyFile            string
	trustedCAFile      string

	token    string
	user     string
	password string

	discoverySrv     string
	discoverySrvName string
}

// register defines the global flags on fs with etcdctl's names, defaults
// and help texts.
func (g *globalFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&g.endpoints, "endpoints", []string{"127.0.0.1:2379"}, "gRPC endpoints")
	fs.BoolVar(&g.debug, "debug", false, "enable client-side debug logging")
	fs.StringVarP(&g.outputFormat, "write-out", "w", "simple", "set the output format (fields, json, protobuf, simple, table)")
	fs.BoolVar(&g.isHex, "hex", false, "print byte strings as hex encoded strings")
	fs.DurationVar(&g.dialTimeout, "dial-timeout", 2*time.Second, "dial timeout for client connections")
	fs.DurationVar(&g.commandTimeout, "command-timeout", 5*time.Second, "timeout for short running command (excluding dial timeout)")
	fs.DurationVar(&g.keepAliveTime, "keepalive-time", 2*time.Second, "keepalive time for client connections")
	fs.DurationVar(&g.keepAliveTimeout, "keepalive-timeout", 6*time.Second, "keepalive timeout for client connections")
	fs.IntVar(&g.maxCallSendMsgSize, "max-request-bytes", 0, "client-side request send limit in bytes (if 0, it defaults to 2.0 MiB (2 * 1024 * 1024).)")
	fs.IntVar(&g.maxCallRecvMsgSize, "max-recv-bytes", 0, "client-side response receive limit in bytes (if 0, it defaults to \"math.MaxInt32\")")

	fs.BoolVar(&g.insecure, "insecure-transport", true, "disable transport security for client connections")
	fs.BoolVar(&g.insecureDiscovery, "insecure-discovery", true, "accept insecure SRV records describing cluster endpoints")
	fs.BoolVar(&g.insecureSkipVerify, "insecure-skip-tls-verify", false, "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)")
	fs.StringVar(&g.certFile, "cert", "", "identify secure client using this TLS certificate file")
	fs.StringVar(&g.keyFile, "key", "", "identify secure client using this TLS key file")
	fs.StringVar(&g.trustedCAFile, "cacert", "", "verify certificates of TLS-enabled secure servers using this CA bundle")
	fs.StringVar(&g.token, "auth-jwt-token", "", "JWT token used for authentication (if this option is used, --user and --password should not be set)")
	fs.StringVar(&g.user, "user", "", "username[:password] for authentication (prompt if password is not supplied)")
	fs.StringVar(&g.password, "password", "", "password for authentication (if this option is used, --user option shouldn't include password)")
	fs.StringVarP(&g.discoverySrv, "discovery-srv", "d", "", "domain name to query for SRV records describing cluster endpoints")
	fs.StringVar(&g.discoverySrvName, "discovery-srv-name", "", "service name to query when using DNS discovery")
}

// newLogger returns the logger etcdctl uses for its own messages: JSON lines
// on stderr at info level.
func newLogger() (*zap.Logger, error) {
	return logutil.CreateDefaultZapLogger(zap.InfoLevel)
}

// clientConfig prepares everything a command needs before it talks to the
// cluster, in etcdctl's order: it applies ETCDCTL_* variables to the flags
// cmd inherits, sets up debug logging, resolves endpoints, TLS and auth, and
// picks the output printer. Commands call it after validating their own
// arguments, so that argument errors are reported without env warnings,
// exactly as etcdctl does.
func (c *ctl) clientConfig(cmd *cobra.Command) (*clientv3.ConfigSpec, error) {
	lg, err := newLogger()
	if err != nil {
		return nil, fail(exitError, err)
	}
	fs := cmd.InheritedFlags()
	if strings.HasPrefix(cmd.Use, "watch") {
		// ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END are read by watch
		// itself; register them so they are not reported as unrecognized.
		fs.AddFlag(&pflag.Flag{Name: "watch-key", Value: discardValue{}})
		fs.AddFlag(&pflag.Flag{Name: "watch-range-end", Value: discardValue{}})
	}
	for _, ev := range setFlagsFromEnv(fs, envPrefix, c.environ()) {
		switch ev.kind {
		case envInvalid:
			lg.Warn("found invalid environment variable", zap.String("environment-variable", ev.env))
		case envUnrecognized:
			lg.Warn("unrecognized environment variable", zap.String("environment-variable", ev.env))
		case envConflict:
			// Fatal exits, as in etcdctl: a variable that a flag shadows is
			// almost always a mistake in a script.
			lg.Fatal(
				"conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag))",
				zap.String("environment-variable", ev.env),
			)
		}
	}

	if c.global.debug {
		grpclog.SetLoggerV2(grpclog.NewLoggerV2WithVerbosity(os.Stderr, os.Stderr, os.Stderr, 4))
		fs.VisitAll(func(f *pflag.Flag) {
			fmt.Fprintf(c.stderr, "%s=%v\n", flagToEnv(envPrefix, f.Name), f.Value)
		})
	} else {
		// Warnings would report every routine reconnect; errors still show.
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
	}

	cfg := &clientv3.ConfigSpec{
		DialTimeout:        c.global.dialTimeout,
		KeepAliveTime:      c.global.keepAliveTime,
		KeepAliveTimeout:   c.global.keepAliveTimeout,
		MaxCallSendMsgSize: c.global.maxCallSendMsgSize,
		MaxCallRecvMsgSize: c.global.maxCallRecvMsgSize,
	}
	if cfg.Endpoints, err = c.endpoints(); err != nil {
		return nil, fail(exitError, err)
	}
	if err := checkTLSFlags(cmd); err != nil {
		return nil, err
	}
	cfg.Secure = c.secureConfig()
	if cfg.Auth, err = c.authConfig(); err != nil {
		return nil, err
	}
	if err := c.initDisplay(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// initDisplay selects the printer named by --write-out.
func (c *ctl) initDisplay() error {
	p := newPrinter(c.global.outputFormat, c.global.isHex, c.stdout, c.stderr)
	if p == nil {
		return fail(exitBadFeature, errors.New("unsupported output format"))
	}
	c.display = p
	return nil
}

// newClient is clientConfig followed by a connection to the cluster.
func (c *ctl) newClient(cmd *cobra.Command) (*clientv3.Client, error) {
	spec, err := c.clientConfig(cmd)
	if err != nil {
		return nil, err
	}
	return connect(spec)
}

// connect turns a config spec into a client. Dialing does not block, so an
// unreachable cluster shows up as the first request's error.
func connect(spec *clientv3.ConfigSpec) (*clientv3.Client, error) {
	cfg, err := newConfig(spec)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return nil, fail(exitBadConnection, err)
	}
	return cli, nil
}

// newConfig builds the clientv3 config (loading TLS files) from spec.
func newConfig(spec *clientv3.ConfigSpec) (*clientv3.Config, error) {
	lg, _ := newLogger()
	cfg, err := clientv3.NewClientConfig(spec, lg)
	if err != nil {
		return nil, fail(exitBadArgs, err)
	}
	return cfg, nil
}

// commandCtx bounds a short request by --command-timeout.
func (c *ctl) commandCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.global.commandTimeout)
}

// request makes one short request, the shape of most commands: it connects
// as newClient does, runs call bounded by --command-timeout and closes the
// client. A failure to connect is returned as newClient reports it; call's
// error is returned unchanged, so that a plain error exits with exitError
// and the caller may wrap it where etcdctl words it differently.
func request[R any](c *ctl, cmd *cobra.Command, call func(context.Context, *clientv3.Client) (R, error)) (R, error) {
	cli, err := c.newClient(cmd)
	if err != nil {
		var zero R
		return zero, err
	}
	defer cli.Close()
	ctx, cancel := c.commandCtx()
	defer cancel()
	return call(ctx, cli)
}

// endpoints returns the endpoints to dial: those found by DNS discovery if
// --discovery-srv is set and finds any, else --endpoints.
func (c *ctl) endpoints() ([]string, error) {
	if domain := c.global.discoverySrv; domain != "" {
		srvs, err := srv.GetClient("etcd-client", domain, c.global.discoverySrvName)
		if err != nil {
			return nil, err
		}
		var eps []string
		for _, ep := range srvs.Endpoints {
			if !c.global.insecureDiscovery && strings.HasPrefix(ep, "http://") {
				fmt.Fprintf(c.stderr, "ignoring discovered insecure endpoint %q\n", ep)
				continue
			}
			eps = append(eps, ep)
		}
		if len(eps) > 0 {
			return eps, nil
		}
	}
	eps := make([]string, len(c.global.endpoints))
	for i, ep := range c.global.endpoints {
		eps[i] = strings.TrimSpace(ep)
	}
	return eps, nil
}

// checkTLSFlags rejects an explicitly empty TLS file flag rather than
// silently falling back to an insecure connection.
func checkTLSFlags(cmd *cobra.Command) error {
	for _, name := range []string{"cert", "key", "cacert"} {
		f := cmd.Flags().Lookup(name)
		if f != nil && f.Changed && f.Value.String() == "" {
			return failf(exitBadArgs, "empty string is passed to --%s option", name)
		}
	}
	return nil
}

// secureConfig collects the TLS flags.
func (c *ctl) secureConfig() *clientv3.SecureConfig {
	serverName := c.global.discoverySrv
	if c.global.insecureDiscovery {
		serverName = ""
	}
	return &clientv3.SecureConfig{
		Cert:               c.global.certFile,
		Key:                c.global.keyFile,
		Cacert:             c.global.trustedCAFile,
		ServerName:         serverName,
		InsecureTransport:  c.global.insecure,
		InsecureSkipVerify: c.global.insecureSkipVerify,
	}
}

// authConfig resolves --user, --password and --auth-jwt-token, prompting for
// a password on the terminal when --user has none.
func (c *ctl) authConfig() (*clientv3.AuthConfig, error) {
	g := &c.global
	if g.user == "" && g.token == "" {
		return nil, nil
	}
	if g.token != "" {
		return &clientv3.AuthConfig{Token: g.token}, nil
	}
	if g.password != "" {
		return &clientv3.AuthConfig{Username: g.user, Password: g.password}, nil
	}
	if name, pass, ok := strings.Cut(g.user, ":"); ok {
		return &clientv3.AuthConfig{Username: name, Password: pass}, nil
	}
	pass, err := askPassword(c.stdin, c.stdout, "Password: ")
	if err != nil {
		return nil, fail(exitError, err)
	}
	return &clientv3.AuthConfig{Username: g.user, Password: pass}, nil
}

// discardValue is a flag value that accepts and forgets anything.
type discardValue struct{}

func (discardValue) String() string   { return "" }
func (discardValue) Set(string) error { return nil }
func (discardValue) Type() string     { return "" }

// environ returns the process environment, or a test's replacement.
func (c *ctl) environ() []string {
	if c.env == nil {
		return os.Environ()
	}
	return c.env.Environ()
}

// getenv looks key up in the environment c sees.
func (c *ctl) getenv(key string) string {
	v, _ := lookupEnv(c.environ(), key)
	return v
}
