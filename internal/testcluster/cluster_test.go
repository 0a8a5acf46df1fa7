package testcluster_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

func TestMemberSurvivesKillAndRestart(t *testing.T) {
	m := testcluster.NewMember(t, testcluster.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cli := m.Client(t)
	put, err := cli.Put(ctx, "k", "v1")
	if err != nil {
		t.Fatal(err)
	}
	oldPID := m.PID()

	m.Kill()
	if m.Running() || m.PID() != 0 {
		t.Fatalf("after Kill: Running=%v PID=%d", m.Running(), m.PID())
	}
	m.Start()
	if m.PID() == oldPID {
		t.Fatalf("Start reused pid %d", oldPID)
	}
	// The client made before the crash reconnects to the same URL.
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" || resp.Kvs[0].ModRevision != put.Header.Revision {
		t.Fatalf("after kill and start: %v; want k=v1 at revision %d", resp.Kvs, put.Header.Revision)
	}

	m.Restart()
	if _, err := cli.Put(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	m.Start()
	resp, err = m.Client(t).Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v2" {
		t.Fatalf("after stop and start: %v; want k=v2", resp.Kvs)
	}
	if logs := m.Logs(); strings.Count(logs, "=== testcluster: start ") != 4 {
		t.Fatalf("logs should show 4 starts:\n%s", logs)
	}
}

func TestExtraFlagsReachTheMember(t *testing.T) {
	m := testcluster.NewMember(t, testcluster.Config{Flags: []string{"--max-txn-ops=1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := m.Client(t)
	_, err := cli.Txn(ctx).Then(clientOpPuts("a", "b")...).Commit()
	if err == nil || !strings.Contains(err.Error(), "too many operations in txn request") {
		t.Fatalf("two ops with --max-txn-ops=1: err = %v; want too many operations", err)
	}

	// Per-member flags, changed between runs, override the cluster's.
	m.Stop()
	m.Flags = []string{"--max-txn-ops=2"}
	m.Start()
	if _, err := m.Client(t).Txn(ctx).Then(clientOpPuts("a", "b")...).Commit(); err != nil {
		t.Fatalf("two ops with --max-txn-ops=2: %v", err)
	}
}

func TestCleanupKillsMembers(t *testing.T) {
	var pid int
	t.Run("inner", func(t *testing.T) {
		m := testcluster.NewMember(t, testcluster.Config{})
		pid = m.PID()
		if pid == 0 {
			t.Fatal("no pid for a running member")
		}
	})
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("member pid %d still exists after its test ended (kill -0: %v)", pid, err)
	}
}

func TestEndpointsAreDistinct(t *testing.T) {
	a := testcluster.NewMember(t, testcluster.Config{})
	b := testcluster.NewMember(t, testcluster.Config{})
	if a.Endpoint() == b.Endpoint() || a.DataDir == b.DataDir {
		t.Fatalf("two members share an endpoint or data dir: %s %s, %s %s", a.Endpoint(), a.DataDir, b.Endpoint(), b.DataDir)
	}
}
