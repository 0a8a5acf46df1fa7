// Package v3lockpb is the Go code of etcd's Lock service schema
// (v3lock.proto beside this file, a copy of etcd v3.7.3's): its messages,
// its gRPC client and server, and in package gw its grpc-gateway handlers.
// It is generated; change the .proto and run scripts/genproto.sh.
//
// It stands in for go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb,
// which Cairn may not import: the wire and the JSON gateway are the same.
package v3lockpb

//go:generate ../../scripts/genproto.sh
