package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// fill writes n keys prefix%05d, 100 to a txn, with values of size bytes.
func fill(t *testing.T, ctx context.Context, cli *clientv3.Client, prefix string, n, size int) {
	t.Helper()
	for i := 0; i < n; i += 100 {
		var ops []clientv3.Op
		for j := i; j < min(i+100, n); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%05d", prefix, j), strings.Repeat(string(rune('a'+j%26)), size)))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// rangeStream reads a whole RangeStream with the raw gRPC client, so each
// chunk can be seen.
func rangeStream(ctx context.Context, cli *clientv3.Client, r *pb.RangeRequest) ([]*pb.RangeResponse, error) {
	s, err := pb.NewKVClient(cli.ActiveConnection()).RangeStream(ctx, r)
	if err != nil {
		return nil, err
	}
	var chunks []*pb.RangeResponse
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return chunks, nil
		}
		if err != nil {
			return chunks, err
		}
		chunks = append(chunks, m.RangeResponse)
	}
}

func TestRangeStreamMergesToRange(t *testing.T) {
	_, cli, ctx := start(t)
	const n = 2500
	fill(t, ctx, cli, "s/", n, 100)
	put(t, ctx, cli, "t", "outside")

	cases := []struct {
		name string
		key  string
		opts []clientv3.OpOption
	}{
		{"prefix", "s/", []clientv3.OpOption{clientv3.WithPrefix()}},
		{"from key", "s/00100", []clientv3.OpOption{clientv3.WithFromKey()}},
		{"limit", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(1500)}},
		{"limit past the end", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(n + 10)}},
		{"keys only", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}},
		{"count only", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}},
		{"at a revision", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(10)}},
		{"serializable", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSerializable()}},
		{"single key", "s/00042", nil},
		{"nothing", "u", nil},
		{"sort by key ascending", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}},
	}
	for _, c := range cases {
		want := get(t, ctx, cli, c.key, c.opts...)
		ch, err := cli.GetStream(ctx, c.key, c.opts...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := clientv3.GetStreamToGetResponse(ch)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !proto.Equal((*pb.RangeResponse)(got), (*pb.RangeResponse)(want)) {
			t.Errorf("%s: stream merged to %d kvs count=%d more=%v header=%v; range gave %d kvs count=%d more=%v header=%v",
				c.name, len(got.Kvs), got.Count, got.More, got.Header, len(want.Kvs), want.Count, want.More, want.Header)
		}
	}
}

func TestRangeStreamChunks(t *testing.T) {
	_, cli, ctx := start(t)
	const n = 2500
	fill(t, ctx, cli, "s/", n, 100)
	head := rev(t, ctx, cli)

	chunks, err := rangeStream(ctx, cli, &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0"), Limit: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 2 {
		t.Fatalf("%d keys came in %d chunk(s); want several", n, len(chunks))
	}
	total := 0
	next := 0
	for i, c := range chunks {
		last := i == len(chunks)-1
		total += len(c.Kvs)
		for _, kv := range c.Kvs {
			if want := fmt.Sprintf("s/%05d", next); string(kv.Key) != want {
				t.Fatalf("chunk %d: key %q; want %q (chunks are disjoint and in order)", i, kv.Key, want)
			}
			next++
		}
		if !last {
			// Header, count and more come on the final chunk only.
			if c.Header != nil || c.Count != 0 || c.More {
				t.Errorf("chunk %d of %d: header %v count %d more %v; want none", i, len(chunks), c.Header, c.Count, c.More)
			}
			continue
		}
		checkHeader(t, c.Header, head)
		if c.Count != n || !c.More {
			t.Errorf("final chunk: count %d more %v; want %d true", c.Count, c.More, n)
		}
	}
	if total != 2000 {
		t.Errorf("%d keys in all chunks; want the limit, 2000", total)
	}

	chunks, err = rangeStream(ctx, cli, &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0"), CountOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 1 || chunks[0].Count != n || len(chunks[0].Kvs) != 0 {
		t.Fatalf("count only: %d chunks, first %v", len(chunks), chunks[0])
	}
	checkHeader(t, chunks[0].Header, head)
}

func TestRangeStreamErrors(t *testing.T) {
	_, cli, ctx := start(t)
	fill(t, ctx, cli, "s/", 300, 10) // revisions 2, 3, 4
	if _, err := cli.Compact(ctx, 3); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		req  *pb.RangeRequest
		want error
	}{
		{"empty key", &pb.RangeRequest{}, rpctypes.ErrGRPCEmptyKey},
		{"compacted", &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0"), Revision: 2}, rpctypes.ErrGRPCCompacted},
		{"future", &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0"), Revision: 5}, rpctypes.ErrGRPCFutureRev},
		{"sort descending", &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0"), SortOrder: pb.RangeRequest_DESCEND},
			status.Error(codes.Unimplemented, "RangeStream does not support custom sort orders")},
		{"sort by value", &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0"), SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_VALUE},
			status.Error(codes.Unimplemented, "RangeStream does not support custom sort orders")},
		{"filter", &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0"), MinModRevision: 3},
			status.Error(codes.Unimplemented, "RangeStream does not support revision filters")},
	}
	for _, c := range cases {
		_, err := rangeStream(ctx, cli, c.req)
		t.Run(c.name, func(t *testing.T) { wantErr(t, err, c.want) })
	}
}

// A RangeStream reads one revision throughout: writes made while it is
// being read do not show in its later chunks.
func TestRangeStreamIsPinnedToOneRevision(t *testing.T) {
	_, cli, ctx := start(t)
	const n = 5000
	fill(t, ctx, cli, "s/", n, 200) // 1 MB: more than flow control lets through unread
	head := rev(t, ctx, cli)

	s, err := pb.NewKVClient(cli.ActiveConnection()).RangeStream(ctx, &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0")})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	// Change keys past the first chunk: rewrite the last, delete one, add one.
	put(t, ctx, cli, fmt.Sprintf("s/%05d", n-1), "changed")
	if _, err := cli.Delete(ctx, fmt.Sprintf("s/%05d", n-2)); err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "s/99999", "new")

	kvs := first.RangeResponse.Kvs
	var last *pb.RangeResponse
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kvs = append(kvs, m.RangeResponse.Kvs...)
		last = m.RangeResponse
	}
	if last == nil {
		t.Fatalf("%d keys came in one chunk; the test needs several", len(first.RangeResponse.Kvs))
	}
	if len(kvs) != n || last.Count != n {
		t.Fatalf("stream gave %d keys, count %d; want the %d there when it began", len(kvs), last.Count, n)
	}
	if got := string(kvs[n-1].Value); got == "changed" || kvs[n-1].ModRevision > head {
		t.Fatalf("stream shows a write made while it was read: %s", kvString(kvs[n-1]))
	}
	checkHeader(t, last.Header, head)
}

// RangeStream sizes its messages by bytes, as etcd 3.7 does: large values
// go a few at a time so no message grows far past --max-request-bytes,
// small ones in growing batches.
func TestRangeStreamMessagesFollowValueSize(t *testing.T) {
	_, cli, ctx := start(t)
	const big = 256 << 10
	for i := 0; i < 40; i++ {
		put(t, ctx, cli, fmt.Sprintf("big/%03d", i), strings.Repeat("x", big))
	}
	chunks, err := rangeStream(ctx, cli, &pb.RangeRequest{Key: []byte("big/"), RangeEnd: []byte("big0")})
	if err != nil {
		t.Fatal(err)
	}
	const limit = 3 << 20 // twice the default --max-request-bytes
	total := 0
	for i, c := range chunks {
		if n := proto.Size(c); n > limit {
			t.Errorf("message %d is %d bytes (%d keys)", i, n, len(c.Kvs))
		}
		total += len(c.Kvs)
	}
	if total != 40 || len(chunks) < 4 {
		t.Fatalf("%d keys in %d messages; want 40 keys in several messages", total, len(chunks))
	}

	fill(t, ctx, cli, "small/", 5000, 10)
	chunks, err = rangeStream(ctx, cli, &pb.RangeRequest{Key: []byte("small/"), RangeEnd: []byte("small0")})
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 2 || len(chunks) > 12 || len(chunks[0].Kvs) != 10 {
		t.Fatalf("5,000 small keys came in %d messages, the first with %d keys; want the first with 10, then growing", len(chunks), len(chunks[0].Kvs))
	}
}
