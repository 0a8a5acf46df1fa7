// Package restore tests backup, restore and migration with real
// processes: snapshots saved from etcd 3.7.3 restored into Cairn with
// cairnutl, snapshots saved from Cairn restored into etcd 3.7.3 with the
// official etcdutl, three members restored from one snapshot, revision
// bumps, and files that must be refused. Every comparison is of etcdctl's
// own output against the reference etcd's.
package restore
