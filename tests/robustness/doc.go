// Package robustness runs Cairn under concurrent client load while it
// injects faults, then checks what the clients saw against a model of
// etcd's key-value semantics, in the spirit of etcd's own robustness
// tests and of Jepsen.
//
// Each scenario starts a three-member cluster through
// internal/testcluster (with the fault-injecting peer proxy), and runs:
//
//   - six clients, each with its own clientv3 connection to every
//     member, issuing Get (linearizable), Put, Delete and a
//     compare-and-swap Txn (If ModRevision(key) == r Then Put Else Get)
//     on four keys, recording each call's start and end time and result;
//   - one watcher per key, from the revision the load starts at;
//   - one fault, repeated for as long as the load runs: SIGKILL and
//     restart of the leader, SIGKILL and restart of a follower,
//     isolation of the leader by the proxy, or SIGSTOP of the leader for
//     longer than the election timeout.
//
// When the load stops the harness heals the cluster, writes a fence to
// every key, reads them all back, and checks:
//
//   - the history is linearizable with respect to the model in
//     model_test.go (porcupine), revisions included: every write bumps
//     the store's revision by one and returns it, every read returns
//     the revision it read at. An operation whose outcome the client did
//     not learn (timeout, lost connection) may or may not have happened,
//     and is given an infinite return time;
//   - each client's revisions never go backwards;
//   - every watch stream is ordered, without duplicates, and whole per
//     revision; together the streams hold every revision of the load
//     once, each acknowledged write at its revision, no value that no
//     client wrote, no value written twice, and end in the state the
//     final read saw — so no acknowledged write is lost.
//
// The checkers are themselves tested (checker_test.go) on hand-made
// histories that break each property, and every scenario also corrupts
// its own history and asserts porcupine rejects it.
//
// # Running
//
// By default each scenario loads the cluster for about eight seconds:
//
//	go test -race -count=1 ./tests/robustness/
//	go test -race -count=1 -v ./tests/robustness/            # with the per-scenario report
//
// Longer runs take a duration, by flag or environment:
//
//	go test -count=1 -timeout=0 ./tests/robustness/ -robustness.duration=10m
//	CAIRN_ROBUSTNESS_DURATION=10m go test -count=1 -timeout=0 ./tests/robustness/
//
// When porcupine finds a violation, the test writes the history
// (history.json) and porcupine's visualization (history.html, open it
// in a browser) into CAIRN_ROBUSTNESS_DIR, or a directory under
// os.TempDir() that the test log names. To check a saved history again:
//
//	CAIRN_ROBUSTNESS_REPLAY=/path/to/history.json go test -run TestReplay -v ./tests/robustness/
//
// Scenarios run one at a time: each starts three processes and times
// elections, which other clusters on the machine would distort.
//
// The package holds only tests; this file exists for its documentation.
package robustness
