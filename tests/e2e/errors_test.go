package e2e

import (
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestEmptyKeyErrors(t *testing.T) {
	_, cli, ctx := start(t)
	_, err := cli.Put(ctx, "", "v")
	wantErr(t, err, rpctypes.ErrGRPCEmptyKey)
	_, err = cli.Get(ctx, "")
	wantErr(t, err, rpctypes.ErrGRPCEmptyKey)
	_, err = cli.Delete(ctx, "")
	wantErr(t, err, rpctypes.ErrGRPCEmptyKey)
	_, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(""), "=", "v")).Commit()
	wantErr(t, err, rpctypes.ErrGRPCEmptyKey)
	_, err = cli.Txn(ctx).Then(clientv3.OpPut("", "v")).Commit()
	wantErr(t, err, rpctypes.ErrGRPCEmptyKey)
	_, err = cli.Txn(ctx).Else(clientv3.OpGet("")).Commit()
	wantErr(t, err, rpctypes.ErrGRPCEmptyKey)
	_, err = cli.Txn(ctx).Then(clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpDelete("")}, nil)).Commit()
	wantErr(t, err, rpctypes.ErrGRPCEmptyKey)
}

func TestRequestTooLarge(t *testing.T) {
	_, cli, ctx := start(t, "--max-request-bytes=2048")
	put(t, ctx, cli, "small", strings.Repeat("x", 1500))
	_, err := cli.Put(ctx, "big", strings.Repeat("x", 4096))
	wantErr(t, err, rpctypes.ErrGRPCRequestTooLarge)
	_, err = cli.Txn(ctx).Then(clientv3.OpPut("a", strings.Repeat("x", 1500)), clientv3.OpPut("b", strings.Repeat("x", 1500))).Commit()
	wantErr(t, err, rpctypes.ErrGRPCRequestTooLarge)
	l, err := cli.Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cli.Put(ctx, "big", strings.Repeat("x", 4096), clientv3.WithLease(l.ID))
	wantErr(t, err, rpctypes.ErrGRPCRequestTooLarge)

	// Past the gRPC limit (--max-request-bytes plus 512 KiB of envelope),
	// gRPC itself refuses the message.
	_, err = cli.Put(ctx, "huge", strings.Repeat("x", 2048+512*1024+1))
	if code := status.Code(err); code != codes.ResourceExhausted {
		t.Fatalf("put over the gRPC limit: %v; want ResourceExhausted", err)
	}
	if n := get(t, ctx, cli, "", clientv3.WithFromKey(), clientv3.WithCountOnly()).Count; n != 1 {
		t.Fatalf("%d keys; want only the small one", n)
	}
}

func TestFutureRevisionErrors(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "k", "v") // 2
	_, err := cli.Get(ctx, "k", clientv3.WithRev(3))
	wantErr(t, err, rpctypes.ErrGRPCFutureRev)
	_, err = cli.Get(ctx, "k", clientv3.WithRev(3), clientv3.WithSerializable())
	wantErr(t, err, rpctypes.ErrGRPCFutureRev)
	_, err = cli.Compact(ctx, 3)
	wantErr(t, err, rpctypes.ErrGRPCFutureRev)
	_, err = cli.Txn(ctx).Then(clientv3.OpGet("k", clientv3.WithRev(3))).Commit()
	wantErr(t, err, rpctypes.ErrGRPCFutureRev)
}

func TestLeaseErrors(t *testing.T) {
	_, cli, ctx := start(t)
	_, err := cli.Grant(ctx, 9_000_000_001)
	wantErr(t, err, rpctypes.ErrGRPCLeaseTTLTooLarge)
	if _, err := cli.Grant(ctx, 9_000_000_000); err != nil {
		t.Fatalf("grant at the maximum TTL: %v", err)
	}
	_, err = cli.Put(ctx, "k", "v", clientv3.WithLease(0x1234))
	wantErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
	_, err = cli.Revoke(ctx, 0x1234)
	wantErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
	_, err = cli.KeepAliveOnce(ctx, 0x1234)
	wantErr(t, err, rpctypes.ErrGRPCLeaseNotFound)

	lc := pb.NewLeaseClient(cli.ActiveConnection())
	if _, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 0x1234, TTL: 100}); err != nil {
		t.Fatal(err)
	}
	_, err = lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 0x1234, TTL: 100})
	wantErr(t, err, rpctypes.ErrGRPCLeaseExist)
	if n := get(t, ctx, cli, "k", clientv3.WithCountOnly()).Count; n != 0 {
		t.Fatal("a put with an unknown lease wrote the key")
	}
}
