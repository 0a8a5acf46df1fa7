// Package snapshot owns the files a store is backed up to and restored
// from: etcd's format (a bbolt database with etcd's buckets followed by
// its SHA-256, what `etcdctl snapshot save` writes and `etcdutl` reads)
// and Cairn's own stream (package mvcc's WriteSnapshot). It writes a
// Cairn engine as an etcd snapshot, loads either format into an empty
// engine, and reports a file's status as etcdutl does.
//
// It never touches a running member's engine: it reads consistent
// snapshots of one and writes only engines nobody has open (a data
// directory being built by a restore). What a key, a lease or a user is
// stays with packages mvcc, lease, auth and membership; this package only
// maps them to etcd's buckets and back.
package snapshot
