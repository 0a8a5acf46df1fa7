package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// run runs a command and returns its stdout; stderr goes into the error.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fill writes a history with every kind of change the formats carry:
// puts, overwrites, deletes, multi-op transactions, leases with attached
// keys (one revoked), a compaction, and more writes after it.
func fill(t *testing.T, ctx context.Context, cli *clientv3.Client) {
	t.Helper()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		must(cli.Put(ctx, fmt.Sprintf("k/%02d", i), fmt.Sprintf("v%d", i)))
	}
	must(cli.Put(ctx, "k/03", "again"))
	must(cli.Delete(ctx, "k/04"))
	must(cli.Delete(ctx, "k/1", clientv3.WithPrefix()))
	must(cli.Txn(ctx).Then(clientv3.OpPut("t/a", "1"), clientv3.OpPut("t/b", "2"), clientv3.OpDelete("k/05")).Commit())
	l1, err := cli.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := cli.Grant(ctx, 7200)
	if err != nil {
		t.Fatal(err)
	}
	l3, err := cli.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	must(cli.Put(ctx, "lease/a", "x", clientv3.WithLease(l1.ID)))
	must(cli.Put(ctx, "lease/b", "y", clientv3.WithLease(l1.ID)))
	must(cli.Put(ctx, "lease/c", "z", clientv3.WithLease(l2.ID)))
	must(cli.Put(ctx, "lease/d", "gone", clientv3.WithLease(l3.ID)))
	must(cli.Revoke(ctx, l3.ID))
	must(cli.Put(ctx, "bin\x00ary", "\x00\xff"))
	resp, err := cli.Put(ctx, "k/00", "before compaction")
	if err != nil {
		t.Fatal(err)
	}
	must(cli.Compact(ctx, resp.Header.Revision-3))
	must(cli.Put(ctx, "k/00", "after compaction"))
	must(cli.Delete(ctx, "t/a"))
	must(cli.Put(ctx, "last", "1"))
}

// view is what a client sees of a store: every key at every retained
// revision (etcdctl's JSON, header without the member's identity), the
// leases with their keys, and the compaction point.
type view struct {
	Rev     int64
	Compact int64 // the oldest readable revision (1 if none compacted)
	AtRev   map[int64]string
	Leases  string
}

func readView(t *testing.T, endpoint string, from int64) view {
	t.Helper()
	ctl := testcluster.Etcdctl(t)
	v := view{AtRev: map[int64]string{}}
	var hdr struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	out := mustRun(t, ctl, "--endpoints", endpoint, "get", "", "--prefix", "-w", "json")
	if err := json.Unmarshal([]byte(out), &hdr); err != nil {
		t.Fatal(err)
	}
	v.Rev = hdr.Header.Revision
	for r := from; r <= v.Rev; r++ {
		out, err := run(t, ctl, "--endpoints", endpoint, "get", "", "--prefix", "-w", "json", "--rev", fmt.Sprint(r))
		if err != nil {
			if strings.Contains(err.Error(), "required revision has been compacted") {
				v.Compact = r + 1 // the oldest revision still readable
				continue
			}
			t.Fatal(err)
		}
		v.AtRev[r] = stripIdentity(t, out)
	}
	ids := mustRun(t, ctl, "--endpoints", endpoint, "lease", "list", "-w", "json")
	var ll struct {
		Leases []struct {
			ID int64 `json:"id"`
		} `json:"leases"`
	}
	if err := json.Unmarshal([]byte(ids), &ll); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range ll.Leases {
		out := mustRun(t, ctl, "--endpoints", endpoint, "lease", "timetolive", fmt.Sprintf("%x", l.ID), "--keys", "-w", "json")
		var ttl struct {
			ID       int64    `json:"id"`
			Granted  int64    `json:"granted-ttl"`
			Keys     []string `json:"keys"`
			TTL      int64    `json:"ttl"`
			Remained int64    `json:"remaining"`
		}
		if err := json.Unmarshal([]byte(out), &ttl); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		// etcd lists a lease's keys in its map's order, which varies
		// from call to call: compare them as a set.
		slices.Sort(ttl.Keys)
		fmt.Fprintf(&b, "%x granted %d keys %q\n", ttl.ID, ttl.Granted, ttl.Keys)
	}
	v.Leases = b.String()
	return v
}

// stripIdentity removes the header fields that name the cluster, member
// and term (they differ between any two clusters) and keeps the rest.
func stripIdentity(t *testing.T, out string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if h, ok := m["header"].(map[string]any); ok {
		delete(h, "cluster_id")
		delete(h, "member_id")
		delete(h, "raft_term")
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func diffViews(t *testing.T, what string, want, got view) {
	t.Helper()
	if want.Rev != got.Rev || want.Compact != got.Compact {
		t.Errorf("%s: revision %d compacted below %d, want %d and %d", what, got.Rev, got.Compact, want.Rev, want.Compact)
	}
	for r, w := range want.AtRev {
		if g := got.AtRev[r]; g != w {
			t.Errorf("%s: at revision %d\n got %s\nwant %s", what, r, g, w)
		}
	}
	if want.Leases != got.Leases {
		t.Errorf("%s: leases\n got %s\nwant %s", what, got.Leases, want.Leases)
	}
}

// saveSnapshot saves a snapshot of endpoint with the official etcdctl.
func saveSnapshot(t *testing.T, endpoint string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snapshot.db")
	mustRun(t, testcluster.Etcdctl(t), "--endpoints", endpoint, "snapshot", "save", path)
	return path
}

// restoreInto stops every member of c, replaces its data directory with
// one restore tool makes from snap (cairnutl or etcdutl, same flags), and
// starts them all again.
func restoreInto(t *testing.T, c *testcluster.Cluster, tool, snap string, extra ...string) {
	t.Helper()
	for _, m := range c.Members {
		m.Stop()
	}
	for _, m := range c.Members {
		if err := os.RemoveAll(m.DataDir); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"snapshot", "restore", snap, "--name", m.Name, "--data-dir", m.DataDir,
			"--initial-cluster", c.InitialClusterFlag(), "--initial-advertise-peer-urls", m.AdvertisePeerURL()}, extra...)
		mustRun(t, tool, args...)
	}
	for _, m := range c.Members {
		m.Launch()
	}
	for _, m := range c.Members {
		m.Wait()
	}
}
