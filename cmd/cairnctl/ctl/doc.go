// Package ctl implements cairnctl, a command line client for Cairn that is a
// drop-in replacement for etcdctl 3.7 (go.etcd.io/etcd/etcdctl/v3).
//
// It owns the command tree (put, get, del, txn, watch, lease, compaction,
// alarm, defrag, endpoint, move-leader, member, snapshot, downgrade, lock,
// elect, make-mirror, check, auth, user, role, version, options), the
// global flags and their
// ETCDCTL_* environment variables, and the output printers (simple,
// fields, json, protobuf, table). It talks to a cluster only through
// go.etcd.io/etcd/client/v3 (lock and elect through its concurrency
// package, as etcdctl does, not through the Lock and Election services),
// never through Cairn's internal packages, so it works against any
// etcd-v3-compatible server.
//
// Compatibility is byte-for-byte where it can be observed by a script:
// the text on stdout and stderr, the "Error: ..." lines and the exit codes
// match etcdctl 3.7.3 for the same inputs and server responses. Where
// etcdctl panics (an unknown compare operator in a txn, a lease compare) or
// hangs (help requested inside a txn line), cairnctl reports an error
// instead. The other deliberate differences: make-mirror refuses a
// destination prefix that overlaps its source in the same cluster (etcdctl
// mirrors its own writes forever) and keeps the source prefix with --rev
// (etcdctl strips it); check datascale trusts --cacert when it reads
// /metrics over https; the check commands' progress bar, off a terminal,
// is printed once at the end; and watch --diff, and check perf's hidden
// --duration (for tests), are cairnctl's own.
//
// Entry point: Main runs one invocation with explicit arguments and streams
// and returns the process exit code.
//
// Tests: the printers are pinned by golden files that etcdctl's own
// printers wrote (testdata/printer), and whole sessions by scenarios
// (testdata/compat/*.scen) that session_test.go runs with bin/etcdctl and
// with cairnctl against a real server (and, for make-mirror, a second one
// of the other kind), comparing every line's stdout, stderr and exit code.
package ctl
