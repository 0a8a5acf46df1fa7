package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// gauge reads one unlabelled gauge from a member's /metrics.
func gauge(t *testing.T, ctx context.Context, m *testcluster.Member, name string) float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	i := strings.Index(string(b), "\n"+name+" ")
	if i < 0 {
		t.Fatalf("no %s on /metrics", name)
	}
	var v float64
	fmt.Sscan(string(b)[i+len(name)+2:], &v)
	return v
}

// TestCompactionShrinksSizeInUse: overwriting keys many times and then
// compacting away the old revisions shrinks
// etcd_mvcc_db_total_size_in_use_in_bytes, the figure the mixin's
// fragmentation alert divides by the size on disk, without a defragment
// (Cairn flushes the compaction's tombstones into the engine's tables,
// whose own compactions then drop the data). Passes against etcd 3.7.3
// too.
func TestCompactionShrinksSizeInUse(t *testing.T) {
	m, cli, ctx := start(t)
	rb := make([]byte, 3072)
	rand.Read(rb)
	val := base64.StdEncoding.EncodeToString(rb) // 4 KiB, incompressible
	var rev int64
	for round := range 20 {
		var ops []clientv3.Op
		for k := range 100 {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("k%03d", k), val))
		}
		resp, err := cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		rev = resp.Header.Revision
	}
	const name = "etcd_mvcc_db_total_size_in_use_in_bytes"
	var before float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		// The figure follows the writes once they are in the engine's
		// tables (Cairn) or committed (etcd).
		if before = gauge(t, ctx, m, name); before > 4e6 || time.Now().After(deadline) {
			break
		}
	}
	if before < 4e6 {
		t.Fatalf("%s is %v after 8 MB of writes", name, before)
	}
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	var after float64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if after = gauge(t, ctx, m, name); after < before/2 || time.Now().After(deadline) {
			break
		}
	}
	if after >= before/2 {
		t.Fatalf("%s went from %v to %v after compacting 19 of 20 revisions of every key", name, before, after)
	}
	t.Logf("%s: %v -> %v", name, before, after)
}
