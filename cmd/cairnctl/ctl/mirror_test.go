//go:build linux

package ctl

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The make-mirror behaviour the session scenarios cannot compare with
// etcdctl's, because it is cairnctl's own: the refusal of a mirror that
// would feed on itself, and --rev keeping the prefix.

// startTestServer starts a single-member server (Cairn, or what
// CAIRN_TESTCLUSTER_BINARY names) and returns it with a client to it.
func startTestServer(t *testing.T) (*target, *clientv3.Client) {
	t.Helper()
	tg := &target{srv: server{"cairn", testcluster.Binary(t)}, name: "n1", ports: freePorts(t, 2)}
	startServer(t, tg, nil)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{tg.endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return tg, cli
}

// runCairnctl runs cairnctl in a process of its own (this test binary, see
// TestMain) with env added to the environment, and returns its output and
// exit code. Tests that keep a client of their own use it rather than
// runCtl: cairnctl sets gRPC's global logger, which must not change under
// a live connection in the same process.
func runCairnctl(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(cairnctlLink(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func mustPut(t *testing.T, cli *clientv3.Client, kvs ...string) int64 {
	t.Helper()
	var rev int64
	for i := 0; i < len(kvs); i += 2 {
		resp, err := cli.Put(context.Background(), kvs[i], kvs[i+1])
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	return rev
}

// keys returns every key and value under prefix, as "k=v" lines.
func keys(t *testing.T, cli *clientv3.Client, prefix string) string {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key)+"="+string(kv.Value))
	}
	return strings.Join(out, " ")
}

func TestMakeMirrorRefusesADestinationOverlappingItsSourceInTheSameCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server; skipped in -short mode")
	}
	tg, cli := startTestServer(t)
	rev := mustPut(t, cli, "/a/1", "x", "/a/b/1", "y", "/c/1", "z")
	ep := tg.endpoint()
	for _, tc := range []struct {
		name  string
		flags []string
		dest  string
	}{
		{"everything onto itself", nil, ep},
		{"a prefix onto itself", []string{"--prefix", "/a/"}, ep},
		{"into a prefix inside the source", []string{"--prefix", "/a/", "--dest-prefix", "/a/b/"}, ep},
		{"into a prefix around the source", []string{"--prefix", "/a/b/", "--dest-prefix", "/a/"}, ep},
		{"to the root", []string{"--prefix", "/a/", "--no-dest-prefix"}, ep},
		{"the same cluster by another URL", []string{"--prefix", "/a/"}, "http://" + ep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"make-mirror"}, tc.flags...), tc.dest)
			out, errOut, code := runCairnctl(t, []string{"ETCDCTL_ENDPOINTS=" + ep}, args...)
			if code != exitBadArgs || out != "" || !strings.Contains(errOut, "overlaps source prefix") || !strings.Contains(errOut, "the mirror would copy its own writes forever") {
				t.Fatalf("got code %d, stdout %q, stderr %q; want a refusal with code %d", code, out, errOut, exitBadArgs)
			}
			// Nothing was written.
			resp, err := cli.Get(context.Background(), "any")
			if err != nil || resp.Header.Revision != rev {
				t.Fatalf("revision %d (%v) after a refused mirror, want %d", resp.Header.Revision, err, rev)
			}
		})
	}
}

// TestMirrorFromARevisionKeepsThePrefix pins where cairnctl parts from
// etcdctl: etcdctl, given --rev without --dest-prefix, strips the source
// prefix (/a/2 lands at /2); cairnctl keeps it, as it does without --rev.
// It also checks that the mirror starts at the revision and follows live
// changes, counting each one.
// TestMakeMirrorFlagConflictIsRefusedWithoutAServer: etcdctl refuses conflicting
// prefix flags only once it has made both clients (which dial lazily).
func TestMakeMirrorFlagConflictIsRefusedWithoutAServer(t *testing.T) {
	_, errOut, code := runCairnctl(t, []string{"ETCDCTL_ENDPOINTS=127.0.0.1:1"}, "make-mirror", "--dest-prefix", "/x", "--no-dest-prefix", "127.0.0.1:1")
	if want := "Error: `--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one\n"; errOut != want || code != exitBadArgs {
		t.Errorf("got %q, code %d; want %q, code %d", errOut, code, want, exitBadArgs)
	}
}

func TestMirrorFromARevisionKeepsThePrefix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers; skipped in -short mode")
	}
	_, src := startTestServer(t)
	_, dst := startTestServer(t)
	mustPut(t, src, "/a/1", "one")
	rev := mustPut(t, src, "/a/2", "two", "/b/1", "other")

	m, err := newMirrorer(&mirrorOptions{prefix: "/a/", rev: rev - 1, maxTxnOps: 128}, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.run(ctx, rev-1) }()
	mustPut(t, src, "/a/3", "three")
	if _, err := src.Delete(context.Background(), "/a/2"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, src, "/a/zz", "end")
	deadline := time.Now().Add(30 * time.Second)
	for keys(t, dst, "/a/zz") == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the mirror did not catch up; destination has %q", keys(t, dst, ""))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, errWatchEnded) && !errors.Is(err, context.Canceled) {
		t.Errorf("run ended with %v", err)
	}
	if got, want := keys(t, dst, ""), "/a/3=three /a/zz=end"; got != want {
		t.Errorf("destination has %q, want %q", got, want)
	}
	// The put of /a/2 (the start revision), its deletion, /a/3 and /a/zz.
	if got := m.total.Load(); got != 4 {
		t.Errorf("counted %d changes, want 4", got)
	}
}
