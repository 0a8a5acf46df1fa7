package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/server"
)

// freeLoopbackAddr returns a loopback address with a port nothing listens
// on right now.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startMember starts a real single-member server on loopback and returns a
// client connection to it, once it has a leader and answers a Put.
func startMember(t testing.TB) (*server.Server, *grpc.ClientConn) {
	t.Helper()
	cfg := server.NewConfig()
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.HeartbeatInterval = 10 * time.Millisecond
	cfg.ElectionTimeout = 100 * time.Millisecond
	client := url.URL{Scheme: "http", Host: freeLoopbackAddr(t)}
	peer := url.URL{Scheme: "http", Host: freeLoopbackAddr(t)}
	cfg.ListenClientURLs = []url.URL{client}
	cfg.AdvertiseClientURLs = []url.URL{client}
	cfg.ListenPeerURLs = []url.URL{peer}
	cfg.InitialAdvertisePeerURLs = []url.URL{peer}
	cfg.InitialCluster = map[string][]url.URL{cfg.Name: {peer}}
	srv, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(client.Host, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := pb.NewKVClient(conn).Put(ctx, &pb.PutRequest{Key: []byte("ready")})
		cancel()
		if err == nil {
			return srv, conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("member not ready after 20s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkRPCError accepts a request's error only if the server produced it
// deliberately: a gRPC status with a code other than Unknown (an internal
// error passed through unmapped), Internal, or those of a dead or stuck
// server.
func checkRPCError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%s: error %v is not a gRPC status", what, err)
	}
	switch st.Code() {
	case codes.Unknown, codes.Internal, codes.Unavailable, codes.DeadlineExceeded:
		t.Fatalf("%s: %v", what, err)
	}
}

// FuzzServerRequests sends arbitrary bytes, decoded as a Range, Put,
// DeleteRange, Txn or Watch request, to a real in-process member and
// checks that it answers with a result or a deliberate gRPC status, and
// that a Put and a Get still succeed afterwards.
func FuzzServerRequests(f *testing.F) {
	srv, conn := startMember(f)
	kv := pb.NewKVClient(conn)
	watch := pb.NewWatchClient(conn)

	seed := func(kind uint8, m proto.Message) {
		data, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kind, data)
	}
	seed(0, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Limit: 3, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VALUE})
	seed(0, &pb.RangeRequest{Key: []byte("a"), Revision: 1 << 40})
	seed(0, &pb.RangeRequest{Key: []byte("a"), SortTarget: 42})
	seed(0, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true, MinCreateRevision: -1, MaxModRevision: -5})
	seed(1, &pb.PutRequest{Key: []byte("a\x00\xff"), Value: []byte("v"), PrevKv: true})
	seed(1, &pb.PutRequest{Key: []byte("a"), Lease: 12345})
	seed(1, &pb.PutRequest{Key: []byte("missing"), IgnoreValue: true, IgnoreLease: true})
	seed(2, &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b"), PrevKv: true})
	seed(2, &pb.DeleteRangeRequest{Key: []byte("z"), RangeEnd: []byte("a")})
	seed(3, &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VALUE, Result: 9, TargetUnion: &pb.Compare_Value{Value: []byte("x")}}},
		Success: []*pb.RequestOp{
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("t1")}}},
			{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: []*pb.RequestOp{
				{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("t1"), Revision: -3}}},
				{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("t2")}}},
			}}}},
		},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("t1"), IgnoreValue: true}}}},
	})
	seed(3, &pb.TxnRequest{Success: []*pb.RequestOp{{}}})
	seed(4, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("a"), RangeEnd: []byte{0}, StartRevision: 1, PrevKv: true, Fragment: true, ProgressNotify: true}}})
	seed(4, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("b"), RangeEnd: []byte("a"), StartRevision: -7, WatchId: -1}}})
	seed(4, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 3}}})
	seed(4, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})

	probe := 0
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var what string
		var err error
		switch kind % 5 {
		case 0:
			r := &pb.RangeRequest{}
			if proto.Unmarshal(data, r) != nil {
				return
			}
			what = fmt.Sprintf("Range(%v)", r)
			_, err = kv.Range(ctx, r)
		case 1:
			r := &pb.PutRequest{}
			if proto.Unmarshal(data, r) != nil {
				return
			}
			what = fmt.Sprintf("Put(%v)", r)
			_, err = kv.Put(ctx, r)
		case 2:
			r := &pb.DeleteRangeRequest{}
			if proto.Unmarshal(data, r) != nil {
				return
			}
			what = fmt.Sprintf("DeleteRange(%v)", r)
			_, err = kv.DeleteRange(ctx, r)
		case 3:
			r := &pb.TxnRequest{}
			if proto.Unmarshal(data, r) != nil {
				return
			}
			what = fmt.Sprintf("Txn(%v)", r)
			_, err = kv.Txn(ctx, r)
		case 4:
			r := &pb.WatchRequest{}
			if proto.Unmarshal(data, r) != nil {
				return
			}
			what = fmt.Sprintf("Watch(%v)", r)
			err = watchOnce(ctx, watch, r)
		}
		checkRPCError(t, what, err)

		select {
		case <-srv.Done():
			t.Fatalf("member stopped after %s: %v", what, srv.Err())
		default:
		}
		// The member still serves writes and reads.
		probe++
		val := []byte(fmt.Sprint(probe))
		pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer pcancel()
		if _, err := kv.Put(pctx, &pb.PutRequest{Key: []byte("fuzz-probe"), Value: val}); err != nil {
			t.Fatalf("Put after %s: %v", what, err)
		}
		rr, err := kv.Range(pctx, &pb.RangeRequest{Key: []byte("fuzz-probe")})
		if err != nil || len(rr.Kvs) != 1 || string(rr.Kvs[0].Value) != string(val) {
			t.Fatalf("Get after %s: %v, %v", what, rr, err)
		}
	})
}

// watchOnce sends r on a new Watch stream, half-closes it and reads what
// the server sends for a moment.
func watchOnce(ctx context.Context, c pb.WatchClient, r *pb.WatchRequest) error {
	// A half-closed watch stream stays open (as etcd's), so the stream
	// is read for a moment and then canceled by the client.
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	stream, err := c.Watch(sctx)
	if err != nil {
		return err
	}
	if err := stream.Send(r); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if status.Code(err) == codes.DeadlineExceeded {
				// The server ends the stream at the deadline it was
				// sent, which may come a moment before the client's
				// own timer: wait for that before judging.
				<-sctx.Done()
			}
			if errors.Is(err, io.EOF) || sctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
