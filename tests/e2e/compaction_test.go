package e2e

import (
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestCompaction(t *testing.T) {
	_, cli, ctx := start(t)
	for i := range 5 {
		put(t, ctx, cli, "k", fmt.Sprint(i)) // 2..6
	}
	put(t, ctx, cli, "gone", "x") // 7
	if _, err := cli.Delete(ctx, "gone"); err != nil {
		t.Fatal(err) // 8
	}

	c, err := cli.Compact(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, c.Header, 8)

	for _, r := range []int64{1, 2, 3} {
		_, err := cli.Get(ctx, "k", clientv3.WithRev(r))
		wantErr(t, err, rpctypes.ErrGRPCCompacted)
		_, err = cli.Get(ctx, "k", clientv3.WithRev(r), clientv3.WithSerializable())
		wantErr(t, err, rpctypes.ErrGRPCCompacted)
	}
	_, err = cli.Txn(ctx).Then(clientv3.OpGet("k", clientv3.WithRev(3))).Commit()
	wantErr(t, err, rpctypes.ErrGRPCCompacted)

	for r, want := range map[int64]string{4: "2", 5: "3", 6: "4", 0: "4"} {
		resp := get(t, ctx, cli, "k", clientv3.WithRev(r))
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != want {
			t.Errorf("at revision %d: %v; want %s", r, resp.Kvs, want)
		}
	}
	// History kept at and after the compaction revision still reads.
	if resp := get(t, ctx, cli, "gone", clientv3.WithRev(7)); len(resp.Kvs) != 1 {
		t.Errorf("deleted key at 7: %v", resp.Kvs)
	}
	// The key's creation is older than the compaction; it keeps it.
	if kv := get(t, ctx, cli, "k").Kvs[0]; kv.CreateRevision != 2 || kv.Version != 5 {
		t.Errorf("k after compaction: %s; want create 2, version 5", kvString(kv))
	}

	// A hash of compacted history is refused like a read of it.
	_, err = cli.HashKV(ctx, cli.Endpoints()[0], 3)
	wantErr(t, err, rpctypes.ErrGRPCCompacted)

	// Compacting again at or below the compacted revision fails.
	_, err = cli.Compact(ctx, 4)
	wantErr(t, err, rpctypes.ErrGRPCCompacted)
	_, err = cli.Compact(ctx, 3)
	wantErr(t, err, rpctypes.ErrGRPCCompacted)
	_, err = cli.Compact(ctx, 9)
	wantErr(t, err, rpctypes.ErrGRPCFutureRev)

	// Compacting at the current revision, physically, then writing on.
	if _, err := cli.Compact(ctx, 8, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	_, err = cli.Get(ctx, "gone", clientv3.WithRev(7))
	wantErr(t, err, rpctypes.ErrGRPCCompacted)
	if r := put(t, ctx, cli, "k", "5"); r != 9 {
		t.Errorf("put after compaction at revision %d; want 9", r)
	}
	if kv := get(t, ctx, cli, "k").Kvs[0]; kv.Version != 6 || kv.CreateRevision != 2 {
		t.Errorf("k after compaction and put: %s; want version 6 create 2", kvString(kv))
	}
	// The hash of the history kept reports the compaction.
	h, err := cli.HashKV(ctx, cli.Endpoints()[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.CompactRevision != 8 || h.HashRevision != 9 {
		t.Errorf("HashKV: compact revision %d hash revision %d; want 8 and 9", h.CompactRevision, h.HashRevision)
	}
}
