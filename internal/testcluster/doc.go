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
