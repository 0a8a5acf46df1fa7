// Command noopkv is the benchmark's ceiling: a gRPC server that implements
// etcd's KV service and answers every Put, Range and Txn at once, with no
// consensus, no disk and no store behind it. Run against it, etcd's
// benchmark tool measures what the client, gRPC and loopback cost on this
// machine, the throughput no real server can beat.
//
//	noopkv --listen 127.0.0.1:23790
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:23790", "address to serve gRPC on")
	flag.Parse()
	if err := run(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "noopkv:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	// Like etcd, allow more than gRPC's default 100 streams per connection
	// so 100 clients over 10 connections never queue on the transport.
	srv := grpc.NewServer(grpc.MaxConcurrentStreams(1 << 20))
	pb.RegisterKVServer(srv, noopKV{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		srv.Stop()
	}()
	return srv.Serve(ln)
}

// noopKV answers at once. Put and Txn bump nothing; Range returns one fixed
// key so a client that reads the response sees a plausible answer.
type noopKV struct {
	pb.UnimplementedKVServer
}

var header = &pb.ResponseHeader{ClusterId: 1, MemberId: 1, Revision: 1, RaftTerm: 1}

var oneKV = []*mvccpb.KeyValue{{Key: []byte("foo"), Value: make([]byte, 256), CreateRevision: 1, ModRevision: 1, Version: 1}}

func (noopKV) Range(context.Context, *pb.RangeRequest) (*pb.RangeResponse, error) {
	return &pb.RangeResponse{Header: header, Kvs: oneKV, Count: 1}, nil
}

func (noopKV) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return &pb.PutResponse{Header: header}, nil
}

func (noopKV) Txn(_ context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	resp := &pb.TxnResponse{Header: header, Succeeded: true}
	for range r.Success {
		resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: header}}})
	}
	return resp, nil
}
