package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestControlPlaneCompaction lets kube-apiserver's compactor (a Txn on
// compact_rev_key's version, then Compact) run every few seconds, and
// checks that reads at a compacted resource version fail the way they do
// on etcd: an exact list and a continue token from before the compaction
// are 410 Gone. ListFromCacheSnapshot is off, so that such reads go to
// the key-value server (a Range at a revision) instead of being answered
// from the watch cache's snapshots, which outlive etcd's compaction.
func TestControlPlaneCompaction(t *testing.T) {
	c := startCluster(t, 1, plaintext)
	a := startAPIServer(t, c, "--etcd-compaction-interval=3s", "--feature-gates=ListFromCacheSnapshot=false")
	ns := "compact"
	step := a.stepper(t)
	step(fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns), "apply", "-f", "-")
	step(fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: %s\n", ns), "apply", "-f", "-")
	step(pod(ns, "p1", "")+"---\n"+pod(ns, "p2", "")+"---\n"+pod(ns, "p3", ""), "apply", "-f", "-")

	base := "/api/v1/namespaces/" + ns + "/pods"
	old := rawList(t, step, base)
	oldRV, err := strconv.ParseInt(old.Metadata.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("list resourceVersion %q: %v", old.Metadata.ResourceVersion, err)
	}
	page := rawList(t, step, base+"?limit=1")
	if page.Metadata.Continue == "" {
		t.Fatalf("?limit=1 of 3 pods: no continue token")
	}
	pageRV, err := strconv.ParseInt(page.Metadata.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("page resourceVersion %q: %v", page.Metadata.ResourceVersion, err)
	}
	// Before the compaction, both work.
	for _, path := range []string{
		base + "?resourceVersion=" + old.Metadata.ResourceVersion + "&resourceVersionMatch=Exact",
		base + "?limit=1&continue=" + url.QueryEscape(page.Metadata.Continue),
	} {
		if code, body := a.mustGet(t, path); code != 200 {
			t.Fatalf("before compaction: GET %s: %d %s", path, code, body)
		}
	}

	// Those reads went to the key-value server, with RangeStream (on by
	// default since Kubernetes 1.37) unless it is unsupported.
	lists := listsFromEtcd(a.metrics(t))
	t.Logf("lists from etcd: %v with RangeStream, %v paginated", lists["true"], lists["false"])
	if lists["true"] == 0 {
		t.Errorf("no list used RangeStream; kube-apiserver falls back to paginated Range when the server answers Unimplemented")
	}

	// Move the revision on, then wait for a compaction past both (the page
	// was read last, at the later revision).
	step(configMap(ns, "later"), "apply", "-f", "-")
	step("", "label", "pod", "p1", "-n", ns, "moved=on", "--overwrite")
	cli, err := c.members[0].client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	compactRev := waitCompacted(t, cli, max(oldRV, pageRV), 60*time.Second)
	t.Logf("compacted at revision %d (list at %d, first page at %d)", compactRev, oldRV, pageRV)

	for _, tc := range []struct{ name, path string }{
		{"exact list at a compacted revision", base + "?resourceVersion=" + old.Metadata.ResourceVersion + "&resourceVersionMatch=Exact"},
		{"exact page at a compacted revision", base + "?limit=1&resourceVersion=" + old.Metadata.ResourceVersion + "&resourceVersionMatch=Exact"},
		{"continue token from before the compaction", base + "?limit=1&continue=" + url.QueryEscape(page.Metadata.Continue)},
	} {
		code, body := a.mustGet(t, tc.path)
		var status struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		}
		json.Unmarshal([]byte(body), &status)
		t.Logf("%s: %d %s: %s", tc.name, code, status.Reason, status.Message)
		if code != 410 || status.Reason != "Expired" {
			if len(body) > 300 {
				body = body[:300] + "..."
			}
			t.Errorf("%s: GET %s: %d %s, want 410 Expired", tc.name, tc.path, code, strings.TrimSpace(body))
		}
	}
	// The current state is still readable, and writes still work.
	if got := rawList(t, step, base); len(got.Items) != 3 {
		t.Errorf("list after compaction: %d items, want 3", len(got.Items))
	}
	step("", "delete", "pods", "--all", "-n", ns)
}

// mustGet GETs path from the API server, failing the test only when the
// request cannot be made.
func (a *apiServer) mustGet(t *testing.T, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, body, err := a.get(ctx, path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return code, body
}

// waitCompacted waits until the server cli talks to has compacted past
// rev: a Get at rev fails with ErrCompacted. It returns the compaction
// revision kube-apiserver recorded in compact_rev_key.
func waitCompacted(t *testing.T, cli *clientv3.Client, rev int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Get(ctx, "/registry/namespaces/default", clientv3.WithRev(rev))
		var compactRev int64
		if resp, gerr := cli.Get(ctx, "compact_rev_key"); gerr == nil && len(resp.Kvs) == 1 {
			compactRev, _ = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
		}
		cancel()
		if errors.Is(err, rpctypes.ErrCompacted) {
			return compactRev
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("revision %d not compacted after %v", rev, timeout)
	return 0
}
