package main

import (
	"flag"
	"log/slog"
	"strings"
)

// Cairn accepts every flag etcd 3.7 accepts, so that a manifest written for
// etcd starts Cairn unchanged. The flags it does not implement yet are
// listed here: setting one logs a warning and has no effect. They are, by
// area (each also settable as ETCD_<NAME> and as a config-file key):
//
//   - Observability: enable-distributed-tracing, distributed-tracing-*.
//   - HTTP front end: cors, host-whitelist.
//   - Storage and Raft tuning: max-snapshots, max-wals (Cairn keeps no
//     old snapshot files and deletes WAL segments once a snapshot covers
//     them), backend-*, bootstrap-defrag-threshold-megabytes,
//     memory-mlock, initial-election-tick-advance,
//     raft-read-timeout, raft-write-timeout,
//     socket-reuse-port, socket-reuse-address.
//   - Background checks and timers: compact-hash-check-time, compaction-batch-limit,
//     compaction-sleep-interval, downgrade-check-time,
//     warning-apply-duration,
//     warning-unary-request-duration.
//   - Misc: feature-gates, v2-deprecation, discovery-fallback and
//     discovery-srv-name (DNS discovery).
//   - Every --experimental-* flag of etcd 3.5 and 3.6. etcd 3.7 itself
//     rejects them (they were renamed or became feature gates); Cairn takes
//     them so that older manifests still start.
//   - etcd's own long-ignored v2 flags (config, force, snapshot, v, vv,
//     cluster-*, peer-heartbeat-interval, ...), ignored as etcd does.
//
// A flag may change what the member does so much that ignoring it would
// start a member other than the one asked for; Cairn refuses to start when
// such a flag is set to anything but its default: discovery-srv (DNS
// discovery).

// ignoredFlag is an etcd flag Cairn accepts and does nothing with.
type ignoredFlag struct {
	name string
	// isBool is whether the flag takes no value ("--auto-tls" rather than
	// "--cert-file x"), so that the argument after it is read as etcd would.
	isBool bool
}

func valueFlags(names ...string) []ignoredFlag {
	fs := make([]ignoredFlag, len(names))
	for i, n := range names {
		fs[i] = ignoredFlag{name: n}
	}
	return fs
}

func boolFlags(names ...string) []ignoredFlag {
	fs := valueFlags(names...)
	for i := range fs {
		fs[i].isBool = true
	}
	return fs
}

// ignoredFlags lists, from etcd 3.7.3's embed.Config.AddFlags and
// etcdmain's own flags, every flag Cairn does not implement.
var ignoredFlags = concat(
	valueFlags(
		"distributed-tracing-address", "distributed-tracing-instance-id",
		"distributed-tracing-sampling-rate", "distributed-tracing-service-name",
		"cors", "host-whitelist",
		"max-snapshots", "max-wals",
		"backend-batch-interval", "backend-batch-limit",
		"backend-bbolt-freelist-type", "bootstrap-defrag-threshold-megabytes",
		"raft-read-timeout", "raft-write-timeout",
		"compact-hash-check-time",
		"compaction-batch-limit", "compaction-sleep-interval",
		"downgrade-check-time",
		"warning-apply-duration", "warning-unary-request-duration",
		"feature-gates", "v2-deprecation", "discovery-fallback",
		"discovery-srv-name",
	),
	boolFlags(
		"enable-distributed-tracing",
		"memory-mlock",
		"initial-election-tick-advance",
		"socket-reuse-port", "socket-reuse-address",
	),
	// etcd 3.5 and 3.6 experimental flags (gone from 3.7). Any other
	// --experimental-* name is also accepted: see registerExperimental.
	valueFlags(
		"experimental-bootstrap-defrag-threshold-megabytes",
		"experimental-compact-hash-check-time",
		"experimental-compaction-batch-limit",
		"experimental-compaction-sleep-interval",
		"experimental-distributed-tracing-address",
		"experimental-distributed-tracing-instance-id",
		"experimental-distributed-tracing-sampling-rate",
		"experimental-distributed-tracing-service-name",
		"experimental-downgrade-check-time",
		"experimental-warning-apply-duration",
		"experimental-warning-unary-request-duration",
		"experimental-enable-v2v3",
		"experimental-backend-bbolt-freelist-type",
		"experimental-max-learners",
		"experimental-wait-cluster-ready-timeout",
	),
	boolFlags(
		"experimental-compact-hash-check-enabled",
		"experimental-enable-distributed-tracing",
		"experimental-enable-lease-checkpoint",
		"experimental-enable-lease-checkpoint-persist",
		"experimental-initial-corrupt-check",
		"experimental-memory-mlock",
		"experimental-peer-skip-client-san-verification",
		"experimental-stop-grpc-service-on-defrag",
		"experimental-txn-mode-write-with-shared-buffer",
	),
	// etcdmain's list of v2-era flags it has ignored for years; like etcd,
	// they take no value.
	boolFlags(
		"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval",
		"config", "force", "max-result-buffer", "max-retry-attempts",
		"peer-heartbeat-interval", "peer-election-timeout", "retry-interval",
		"snapshot", "v", "vv",
	),
)

// refusedFlags are etcd flags Cairn does not implement and will not ignore:
// setting one to a non-default value is an error. The value is the flag's
// default, which is accepted.
var refusedFlags = map[string]string{
	"discovery-srv": "",
}

func concat(lists ...[]ignoredFlag) []ignoredFlag {
	var out []ignoredFlag
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// ignoredValue is the flag.Value of an ignored flag: it takes any value,
// remembers that it was set, and warns.
type ignoredValue struct {
	flag ignoredFlag
	lg   *slog.Logger
}

func (v *ignoredValue) String() string { return "" }

// IsBoolFlag lets a no-value ignored flag be given bare, as in etcd.
func (v *ignoredValue) IsBoolFlag() bool { return v.flag.isBool }

func (v *ignoredValue) Set(s string) error {
	warnIgnored(v.lg, v.flag, s)
	return nil
}

func warnIgnored(lg *slog.Logger, f ignoredFlag, value string) {
	lg.Warn("flag is not implemented by Cairn; ignoring", "flag", f.name, "value", value)
}

// refusedValue is the flag.Value of a refused flag: it accepts only the
// flag's default and records any other value so that validation can fail
// with a clear message (a flag.Value error would read as a usage error).
type refusedValue struct {
	name, def string
	isBool    bool
	got       *string
}

func (v *refusedValue) String() string {
	if v == nil || v.got == nil {
		return ""
	}
	return *v.got
}

// IsBoolFlag mirrors the etcd flag's kind.
func (v *refusedValue) IsBoolFlag() bool { return v.isBool }

func (v *refusedValue) Set(s string) error {
	if s != v.def {
		v.got = &s
	}
	return nil
}

// registerExperimental registers, before parsing, every --experimental-*
// flag on the command line that is not already known, so that any such flag
// from an older etcd manifest is accepted and ignored. Whether it takes a
// value is guessed from the command line: "--experimental-x=v" or
// "--experimental-x v" take one, "--experimental-x --next" does not.
func registerExperimental(fs *flag.FlagSet, args []string, lg *slog.Logger) {
	for i, a := range args {
		if a == "--" {
			return
		}
		if !strings.HasPrefix(a, "-") {
			continue // a value, or a stray argument parse will reject
		}
		name := strings.TrimLeft(a, "-")
		name, _, hasValue := strings.Cut(name, "=")
		if !strings.HasPrefix(name, "experimental-") || fs.Lookup(name) != nil {
			continue
		}
		isBool := !hasValue && (i+1 == len(args) || strings.HasPrefix(args[i+1], "-"))
		fs.Var(&ignoredValue{flag: ignoredFlag{name: name, isBool: isBool}, lg: lg}, name, "Ignored: etcd experimental flag.")
	}
}
