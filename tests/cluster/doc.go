// Package cluster tests multi-member clusters end to end: each test starts
// three or five real server processes through internal/testcluster and
// drives them with the official etcd v3 client (and, where present, the
// official etcdctl). The tests pin what a replicated store owes its
// clients: every member serves the same data, an acknowledged write
// survives the crash, partition or restart of any member, a lagging or
// new member catches up (by snapshot when the log has moved on), and
// membership changes keep the cluster serving.
//
// The same tests run against etcd itself, which is how their
// expectations are checked:
//
//	scripts/install-tools.sh
//	CAIRN_TESTCLUSTER_BINARY=$PWD/bin/etcd go test ./tests/cluster/
//
// Tests run one at a time: each starts several processes, and some time
// elections, which a machine busy with other clusters would distort.
//
// The package holds only tests; this file exists for its documentation.
package cluster
