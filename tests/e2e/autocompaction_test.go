package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestPeriodicAutoCompaction: with --auto-compaction-mode=periodic and a
// one-second retention, history older than about a second is compacted
// without anyone asking.
func TestPeriodicAutoCompaction(t *testing.T) {
	t.Parallel()
	m := testcluster.NewMember(t, testcluster.Config{Flags: []string{
		"--auto-compaction-mode=periodic", "--auto-compaction-retention=1s",
	}})
	cli := m.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := cli.Put(ctx, "k", "1")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := cli.Put(ctx, "k", "more"); err != nil {
			t.Fatal(err)
		}
		_, err := cli.Get(ctx, "k", clientv3.WithRev(first.Header.Revision))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("revision %d still readable after %v with a 1s retention", first.Header.Revision, 15*time.Second)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
