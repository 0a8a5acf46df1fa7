// Package mvcc owns the multi-version key-value store: revisions, ranges
// at any retained revision, the write transaction the state machine
// applies, compaction of old revisions, and watch fan-out.
//
// It never talks to the network and never decides what to write: the apply
// package feeds it committed Raft entries one at a time through TxnWrite,
// and readers call Range on the Store. Every TxnWrite ends with the Raft
// index it applied, stored in the same atomic engine batch as the data, so
// after a crash the store knows exactly which log entries to replay.
//
// Revisions follow etcd: the store starts at revision 1; each write
// transaction that changes anything takes the next main revision, and each
// change within it the next sub revision. Reads never change the revision.
//
// The engine key layout is described in keys.go.
package mvcc
