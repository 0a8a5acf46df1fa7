package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestRestartAfterLogSnapshots: with a small --snapshot-count the member
// takes log snapshots (flushing the store, marking the WAL, compacting
// raft's log) many times; after a crash and after a clean stop it comes
// back with every key and the same revision.
func TestRestartAfterLogSnapshots(t *testing.T) {
	t.Parallel()
	m := testcluster.NewMember(t, testcluster.Config{Flags: []string{"--snapshot-count=50"}})
	cli := m.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 600
	for i := 0; i < n; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("snap/%04d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		cli := m.Client(t)
		resp, err := cli.Get(ctx, "snap/", clientv3.WithPrefix())
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if len(resp.Kvs) != n || resp.Header.Revision != n+1 {
			t.Fatalf("%s: %d keys at revision %d, want %d at %d", when, len(resp.Kvs), resp.Header.Revision, n, n+1)
		}
		if _, err := cli.Put(ctx, "after/"+when, "x"); err != nil {
			t.Fatalf("%s: write: %v", when, err)
		}
		if _, err := cli.Delete(ctx, "after/"+when); err != nil {
			t.Fatalf("%s: delete: %v", when, err)
		}
	}
	m.Kill()
	m.Start()
	check("crash")
	m.Stop()
	m.Start()
	// The two writes of the first check took revisions n+2 and n+3.
	resp, err := m.Client(t).Get(ctx, "snap/0000")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Revision != n+3 {
		t.Fatalf("after clean restart: revision %d, want %d", resp.Header.Revision, n+3)
	}
}
