// Package v3electionpb is the Go code of etcd's Election service schema
// (v3election.proto beside this file, a copy of etcd v3.7.3's): its messages,
// its gRPC client and server, and in package gw its grpc-gateway handlers.
// It is generated; change the .proto and run scripts/genproto.sh.
//
// It stands in for go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb,
// which Cairn may not import: the wire and the JSON gateway are the same.
package v3electionpb

//go:generate ../../scripts/genproto.sh
