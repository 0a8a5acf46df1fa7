// Package e2e tests Cairn end to end: each test starts real cairn server
// processes through internal/testcluster and drives them with the official
// etcd v3 client (and, where present, the official etcdctl), pinning the
// behaviour etcd 3.7 has: revisions, errors with their exact gRPC codes and
// messages, watch delivery, leases, compaction, maintenance and durability
// across crashes.
//
// The same tests run against etcd itself, which is how their expectations
// are checked:
//
//	scripts/install-tools.sh
//	CAIRN_TESTCLUSTER_BINARY=$PWD/bin/etcd go test ./tests/e2e/
//
// The package holds only tests; this file exists for its documentation.
package e2e
