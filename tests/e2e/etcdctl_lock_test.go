package e2e

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// The official etcdctl's lock and elect commands work against Cairn.
func TestEtcdctlLockAndElect(t *testing.T) {
	path := testcluster.Etcdctl(t)
	m, cli, ctx := start(t)
	c := ctl{t, path, m}

	if out := c.run("", "lock", "--ttl=5", "mylock", "--", "sh", "-c", "echo held $ETCD_LOCK_KEY"); !strings.HasPrefix(out, "held mylock/") {
		t.Fatalf("etcdctl lock with a command printed %q", out)
	}
	if g := get(t, ctx, cli, "mylock/", withPrefix()); len(g.Kvs) != 0 {
		t.Fatalf("lock left %v after its command ended", keys(g.Kvs))
	}

	// A candidate leads and prints its key and value; a listener sees it.
	lines := func(args ...string) (*bufio.Scanner, context.CancelFunc) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := c.cmd(cctx, args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); _ = cmd.Wait() })
		return bufio.NewScanner(out), cancel
	}
	next := func(s *bufio.Scanner) string {
		t.Helper()
		if !s.Scan() {
			t.Fatalf("etcdctl output ended: %v", s.Err())
		}
		return s.Text()
	}
	cand, _ := lines("elect", "myelection", "p1")
	if k := next(cand); !strings.HasPrefix(k, "myelection/") {
		t.Fatalf("elect printed key %q", k)
	}
	if v := next(cand); v != "p1" {
		t.Fatalf("elect printed value %q", v)
	}
	listen, _ := lines("elect", "-l", "myelection")
	if k := next(listen); !strings.HasPrefix(k, "myelection/") {
		t.Fatalf("elect -l printed key %q", k)
	}
	if v := next(listen); v != "p1" {
		t.Fatalf("elect -l printed value %q", v)
	}
}

func withPrefix() clientv3.OpOption { return clientv3.WithPrefix() }
