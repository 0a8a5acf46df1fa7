// Package robustness runs Cairn under concurrent client load while it
// injects faults, then checks what the clients saw against a model of
// etcd's semantics, in the spirit of etcd's own robustness tests and of
// Jepsen.
//
// Each scenario starts a three-member cluster through
// internal/testcluster, with the fault-injecting proxies in front of
// every peer and client port and a small --snapshot-count (100; the
// leader keeps 50 entries for catching up), and runs, all at once:
//
//   - six KV clients (three pinned to one member each, three of every
//     member) issuing Get (linearizable), a Range of every key, Put,
//     Delete, a DeleteRange of every key and a compare-and-swap Txn
//     (If ModRevision(key) == r Then Put Else Get) on four keys under
//     /robustness/kv/, recording each call's start and end time and
//     result (model_test.go, client_test.go);
//   - three lease clients: grant a lease, attach a key to it, then keep
//     it alive a while and revoke it, or let it expire (lease_test.go);
//   - two clients taking a clientv3/concurrency.Mutex in a loop, each
//     on its own session, and two taking the same lock with the v3lock
//     service (Lock on a lease they keep alive, Unlock after a short
//     hold), so that the two kinds contend for the same keys
//     (lock_test.go);
//   - three campaigners for one election through the v3election
//     service: Campaign on a lease they keep alive, then Leader,
//     Proclaim of a new value or two, and Resign; and an observer
//     following the election with one Observe stream at a time
//     (election_test.go);
//   - a watcher of all of /robustness/ and one of each KV key, asking
//     for progress notifications, resuming after every broken stream
//     from the revision after the last they know they have;
//   - a maintainer (maint_test.go) that compacts (below what every
//     long-lived watcher has), saves snapshots read to their end, and
//     opens short watches of /robustness/kv/ from past revisions, some
//     of them compacted;
//   - the scenario's faults, one after the other, for as long as the
//     load runs (faults_test.go): SIGKILL and restart of the leader or a
//     follower, SIGSTOP/SIGCONT of the leader or a follower for longer
//     than the election timeout, isolation of the leader or a follower
//     by the peer proxy, a client partition (the clients' connections to
//     one member black-holed by its client proxy), a membership change
//     (add a learner, promote it, remove it), and a follower killed
//     while the others write past the leader's log so that it must
//     catch up from a snapshot.
//
// When the load stops the harness heals the cluster, writes a fence to
// every KV key, waits for every lease to run out, reads the final
// state, and checks:
//
//   - the KV history is linearizable with respect to the model
//     (porcupine), revisions included: every write bumps the store's
//     revision by one and returns it, every read returns the revision
//     it read at. Revisions that changed only lease, lock and election
//     keys are "foreign" to the model, known from the watch of
//     /robustness/: a read may see the store any number of them ahead, a
//     write never takes one. A request whose outcome the client did not
//     learn may or may not have happened, and is given an infinite
//     return time;
//   - each client's revisions never go backwards;
//   - every watch stream is ordered, without duplicates, atomic per
//     revision (one response holds all of a revision's events), never
//     delivers an event at or below a revision a progress notification
//     vouched for, and is refused as compacted only from a revision the
//     run compacted; every watcher, long-lived or from a past revision,
//     got exactly the events of its keys that the watch of /robustness/
//     saw over the revisions it covered;
//   - the watch of /robustness/ holds every revision of the run, each
//     acknowledged write at its revision, no value that no client wrote
//     or written twice, never keys of the model and others in one
//     revision, and replayed gives the final read: no acknowledged write
//     is lost;
//   - a key attached to a lease is put at its acknowledged revision,
//     deleted neither before its lease was revoked nor while the lease
//     was known alive (granted or renewed with TTL t at time c: alive
//     until c+t), deleted at or before the revision a revoke was
//     acknowledged with, and gone once no lease is kept alive;
//   - no two lock clients believed they held the lock with leases both
//     alive: a hold lasts from a revision the server vouched for it at
//     (a Mutex client's read of its own key right after Lock returned;
//     a Lock RPC's answer) to the deletion of the holder's key, and no
//     two holds overlap (the failure Jepsen found in etcd 3.4.3). The
//     lock's keys' lives, rebuilt from the watch of /robustness/, say
//     more (holder_test.go): at its revision each hold's key existed
//     and was the oldest under the lock's prefix, so the lock was its
//     turn even if an older waiter never learnt it had the lock; a
//     Lock RPC's key is etcd's for its lease; an acknowledged Unlock
//     deleted the key by its revision;
//   - no two campaigners believed they led with leases both alive, in
//     the same way: a win lasts from the Leader answer that named the
//     winner, asked right after Campaign returned (a Campaign's header
//     dates from when the candidate put its key), to its key's
//     deletion. Against the election keys' lives, where the leader at
//     each revision is the oldest key: a winner whose key still existed
//     at that Leader answer led then; every Leader answer names the
//     leader of its revision, with its value; an acknowledged Proclaim
//     put its value at its revision while its key led; an acknowledged
//     Resign deleted the key by its revision; every Observe response is
//     a put of the history, of a value a campaigner sent for that key,
//     while the key led (a leader's first response on a stream: at the
//     response's revision, with the value the key held then, perhaps
//     one campaigned with before it led), and the responses go forward
//     in create revision, and in mod revision per leader.
//
// The checkers are themselves tested (checker_test.go) on hand-made
// histories that break each property; every scenario also corrupts its
// own history and asserts porcupine rejects it; and failpoint_test.go
// runs servers built with deliberate bugs (internal/failpoint) and
// asserts the suite reports them.
//
// Each scenario prints a report (run with -v): faults injected,
// operations by kind, leases, lock holds (by Mutex and by the Lock
// RPC), elections won, proclaims, changes observed, compactions,
// snapshots, histories checked, violations. On a violation it keeps the KV
// history (history.json, replayable, and porcupine's history.html),
// every watch log, the lock and election clients' records, the
// violations and every member's output in
// CAIRN_ROBUSTNESS_DIR, or a directory under os.TempDir() that the
// report names, and prints how to replay it:
//
//	CAIRN_ROBUSTNESS_REPLAY=/path/to/history.json go test -run TestReplay -v ./tests/robustness/
//
// # Running
//
// By default each scenario loads the cluster for twelve seconds:
//
//	go test -race -count=1 ./tests/robustness/
//	go test -race -count=1 -v ./tests/robustness/            # with the reports
//
// Longer scenarios take a duration, by flag or environment:
//
//	go test -count=1 -timeout=0 ./tests/robustness/ -robustness.duration=10m
//	CAIRN_ROBUSTNESS_DURATION=10m go test -count=1 -timeout=0 ./tests/robustness/
//
// A soak cycles every kind of fault on fresh clusters, two minutes of
// load each (-robustness.segment), until its duration has passed:
//
//	go test -count=1 -timeout=0 -v -run TestSoak ./tests/robustness/ -robustness.soak=30m
//
// Scenarios run one at a time: each starts three processes and times
// elections, which other clusters on the machine would distort.
//
// The package holds only tests; this file exists for its documentation.
package robustness
