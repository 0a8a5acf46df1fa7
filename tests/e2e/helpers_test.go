package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// testTimeout bounds each test's requests, far above what any needs, so a
// hung server fails the test rather than the whole package's -timeout.
const testTimeout = 60 * time.Second

// start starts a one-member cluster with the given extra flags and returns
// it with a client and a context bounded by testTimeout. Tests run in
// parallel, each with its own member.
func start(t *testing.T, flags ...string) (*testcluster.Member, *clientv3.Client, context.Context) {
	t.Helper()
	t.Parallel()
	return startAnother(t, flags...)
}

// startAnother is start for a test that has called start already and
// wants a second, independent member.
func startAnother(t *testing.T, flags ...string) (*testcluster.Member, *clientv3.Client, context.Context) {
	t.Helper()
	m := testcluster.NewMember(t, testcluster.Config{Flags: flags})
	return m, m.Client(t), testContext(t)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// wantErr fails the test unless err is want, one of rpctypes' ErrGRPC*
// errors, with the same gRPC code and message. The client hands some of
// them back as status errors and converts others to rpctypes.EtcdError;
// both carry the code and message the server sent.
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	wantCode, wantMsg := status.Code(want), status.Convert(want).Message()
	if err == nil {
		t.Fatalf("got no error; want %v %q", wantCode, wantMsg)
	}
	code, msg := errCodeMsg(err)
	if code != wantCode || msg != wantMsg {
		t.Fatalf("got error %v %q (%v); want %v %q", code, msg, err, wantCode, wantMsg)
	}
}

func errCodeMsg(err error) (codes.Code, string) {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code(), ee.Error()
	}
	s := status.Convert(err)
	return s.Code(), s.Message()
}

// put writes k=v and returns the revision it was written at.
func put(t *testing.T, ctx context.Context, cli *clientv3.Client, k, v string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	resp, err := cli.Put(ctx, k, v, opts...)
	if err != nil {
		t.Fatalf("put %q: %v", k, err)
	}
	return resp.Header.Revision
}

func get(t *testing.T, ctx context.Context, cli *clientv3.Client, k string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	t.Helper()
	resp, err := cli.Get(ctx, k, opts...)
	if err != nil {
		t.Fatalf("get %q: %v", k, err)
	}
	return resp
}

// rev is the store's current revision, read without changing it.
func rev(t *testing.T, ctx context.Context, cli *clientv3.Client) int64 {
	t.Helper()
	return get(t, ctx, cli, "\x00").Header.Revision
}

// keys lists the keys of kvs, for comparing results.
func keys(kvs []*mvccpb.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
}

func kvString(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q=%q c%d m%d v%d l%x", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
}

// checkHeader fails unless h is a complete response header of the member
// at revision want (0: any revision).
func checkHeader(t *testing.T, h *pb.ResponseHeader, want int64) {
	t.Helper()
	if h == nil {
		t.Fatal("no response header")
	}
	if h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm == 0 || h.Revision == 0 {
		t.Fatalf("incomplete header %v", h)
	}
	if want != 0 && h.Revision != want {
		t.Fatalf("header revision %d; want %d", h.Revision, want)
	}
}
