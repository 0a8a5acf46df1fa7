package faults

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestRestartWithOnlyClusterInfo: a member killed (or cut off by a power
// loss) after it saved member/cluster.json but before its WAL held a
// record leaves a data dir with cluster.json alone. Found by the
// walSkipFsync power-cut run, where raft panicked on restart ("no peers
// given; use RestartNode instead"); the member must start from its
// initial cluster instead, as if for the first time.
func TestRestartWithOnlyClusterInfo(t *testing.T) {
	m := testcluster.NewMember(t, testcluster.Config{})
	m.Stop()
	member := filepath.Join(m.DataDir, "member")
	des, err := os.ReadDir(member)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.Name() != "cluster.json" {
			if err := os.RemoveAll(filepath.Join(member, de.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	m.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := m.Client(t)
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put after the restart: %v", err)
	}
}
