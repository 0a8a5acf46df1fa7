// Package coord serves etcd's coordination services, v3lockpb.Lock and
// v3electionpb.Election, on the client gRPC server.
//
// Like etcd's, both services are clients of the KV and lease API: each
// RPC runs go.etcd.io/etcd/client/v3/concurrency over a clientv3 client
// connected in-process to the same gRPC server, so the keys it writes
// (name/<lease-hex>) are exactly those a concurrency.Mutex or
// concurrency.Election writes, and an RPC caller and a library caller
// contend for the same lock or election.
//
// It owns only the translation from RPC to concurrency call. It must never
// write storage, propose Raft entries or keep state of its own between
// calls: a lock or a leadership exists only as a key with a lease, so it
// survives a restart or a leader change of the member that granted it and
// vanishes when the lease does.
package coord
