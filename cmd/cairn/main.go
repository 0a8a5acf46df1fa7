// Command cairn runs one Cairn member. It takes etcd's server flags, with
// etcd's names, defaults and ETCD_* environment variables, or etcd's YAML
// configuration file (--config-file), so that a manifest written for etcd
// starts Cairn unchanged:
//
//	cairn --name m1 --data-dir /var/lib/cairn \
//	    --listen-client-urls http://127.0.0.1:2379 \
//	    --advertise-client-urls http://127.0.0.1:2379
//
// TLS flags (cert-file, peer-*, auto-tls, cipher-suites, ...) are etcd's,
// in tlsflags.go. Flags Cairn does not implement yet are accepted and
// ignored with a warning (see ignored.go). SIGINT or SIGTERM stops the member gracefully
// and the process exits 0; a fatal member error exits 1; a usage error, as
// in etcd, exits 2.
package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/cairnkv/cairn/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args, environ []string, stdout, stderr io.Writer) int {
	// Until the configuration is read, log like etcd does: info and up,
	// as JSON, to stderr.
	lg := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	inv, err := parseConfig(args, environ, stdout, stderr, lg)
	var uerr usageError
	switch {
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &uerr):
		return 2
	case err != nil:
		lg.Error("failed to verify flags", "error", err)
		return 1
	case inv.printVersion:
		printVersion(stdout)
		return 0
	}
	cfg := inv.cfg
	if cfg.Logger == nil {
		l, err := logging.New(logging.Options{Level: cfg.LogLevel, Outputs: cfg.LogOutputs, Format: cfg.LogFormat,
			Rotate: cfg.EnableLogRotation, RotationConfig: cfg.LogRotationConfigJSON, Stderr: stderr, Stdout: stdout})
		if err != nil {
			lg.Error("failed to verify flags", "error", err)
			return 1
		}
		defer l.Close()
		cfg.Logger = l.Logger
	}
	if cfg.EnablePprof {
		// Sample lock contention and blocking too, so that the
		// /debug/pprof/mutex and /block profiles have something in them.
		runtime.SetMutexProfileFraction(100)
		runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	}
	return serve(cfg, cfg.Logger)
}
