package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestWALDirHoldsTheLog: with --wal-dir the write-ahead log lives there,
// not under the data dir, and a crash and restart recover from it.
func TestWALDirHoldsTheLog(t *testing.T) {
	t.Parallel()
	walDir := filepath.Join(t.TempDir(), "wal")
	m := testcluster.NewMember(t, testcluster.Config{Flags: []string{"--wal-dir", walDir}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.Client(t).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if segs, _ := filepath.Glob(filepath.Join(walDir, "*.wal")); len(segs) == 0 {
		t.Fatalf("no WAL segment in --wal-dir %s", walDir)
	}
	if segs, _ := filepath.Glob(filepath.Join(m.DataDir, "member", "wal", "*.wal")); len(segs) != 0 {
		t.Fatalf("WAL segments under the data dir despite --wal-dir: %v", segs)
	}
	m.Kill()
	m.Start()
	resp, err := m.Client(t).Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after a crash with --wal-dir: %v %v", resp, err)
	}
}
