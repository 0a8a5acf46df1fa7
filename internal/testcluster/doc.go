// Package testcluster starts real Cairn server processes for tests: the
// binary built from ./cmd/cairn, on free loopback ports, with a fresh data
// directory under t.TempDir(). A test talks to it over the network with
// the official etcd client, and can crash it (SIGKILL), stop it (SIGTERM)
// and start it again on the same data and ports, so that what it checks is
// what a user of the released binary would see.
//
//	c := testcluster.New(t, testcluster.Config{Flags: []string{"--max-txn-ops=4"}})
//	m := c.Members[0]
//	cli := m.Client(t)
//	... cli.Put(ctx, "k", "v") ...
//	m.Kill()
//	m.Start()
//
// # Clusters
//
// With Size above one, New starts every member at once with one
// --initial-cluster naming them all, and returns once each serves. The
// helpers a replication test needs work from the outside, as a client
// would: Leader and WaitLeader ask every member's Status and accept a
// leader only when a majority of the voters (by the leader's own member
// list) name it; WaitNewLeader waits for the end of an election;
// WaitConverged checks, once writes stop, that every member has applied
// the leader's revision and hashes its history alike. To grow the
// cluster, NewJoiningMember and Member.Join start a member with
// --initial-cluster-state existing after the test has added it (with
// clientv3 or etcdctl), and AddMember does both.
//
// # Partitions
//
// With Config.Proxy, every member advertises the URL of an HTTP reverse
// proxy the harness runs in front of its peer port, so that all peer
// traffic to a member passes through that member's proxy. The proxy
// knows the sender of each request by the header raft transports set
// (Cairn's X-Cairn-From, etcd's X-Server-From), and Partition, Isolate
// and Heal decide which pairs of members may talk; starting a partition
// also cuts the long-lived streams it forbids. Client ports are never
// proxied, so a test can still ask a cut-off member what it thinks:
//
//	c := testcluster.New(t, testcluster.Config{Size: 3, Proxy: true})
//	old := c.WaitLeader(t)
//	c.Isolate(old)
//	leader := c.WaitNewLeader(t, old)
//	... writes through the majority; reads on old time out ...
//	c.Heal()
//	c.WaitConverged(t)
//
// With Config.ClientProxy, a plain TCP proxy stands in front of each
// member's client port too (Member.ClientProxyURL; ProxiedEndpoints
// lists them). CutClient black-holes every connection through one of
// them, so clients of that member hear nothing (as behind a partition)
// while the member and its peers carry on; HealClient ends it and
// closes the connections that lived through it.
//
// Config.BuildTags builds the server with build tags into a binary of
// its own, and Config.Env gives every member extra environment
// variables: together they run the deliberate bugs of
// internal/failpoint.
//
// Every process is stopped by its PID in t.Cleanup, and dies with the test
// binary if that is killed (Linux). When the test failed, each member's
// captured output is written to the test log.
//
// The binary is built once per test binary with `go build` (whose cache
// makes it cheap when nothing changed) into a directory under
// os.TempDir() shared by every test binary of the same checkout; builds
// are serialised with a file lock. Two environment variables change that:
//
//   - CAIRN_TESTCLUSTER_BINARY names a server binary to run instead, for
//     example bin/etcd, to check that a test pins etcd's own behaviour.
//   - CAIRN_TESTCLUSTER_RACE=1 builds the server with -race; a member whose
//     output reports a data race then fails the test.
//
// Methods that start or stop processes report failures with t.Fatal, so
// call them from the goroutine running the test.
package testcluster
