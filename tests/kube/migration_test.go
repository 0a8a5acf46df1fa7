package kube

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The migration runbook of docs/OPERATIONS.md, end to end: kube-apiserver
// fills an etcd 3.7.3; the apiserver stops, etcdctl saves a snapshot,
// cairnutl restores it into Cairn on the same URLs, a new apiserver
// starts: it lists the same objects with the same resourceVersions and
// contents, a list at the old resourceVersion answers, and new writes
// get higher resourceVersions.
func TestMigrateControlPlaneFromEtcd(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	etcd, etcdctl := filepath.Join(root, "bin", "etcd"), filepath.Join(root, "bin", "etcdctl")
	for _, p := range []string{etcd, etcdctl} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("no %s: run scripts/install-tools.sh", p)
		}
	}
	cairnutl := filepath.Join(t.TempDir(), "cairnutl")
	build := exec.Command("go", "build", "-o", cairnutl, "./cmd/cairnutl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cairnutl: %v\n%s", err, out)
	}

	c := startClusterOf(t, etcd, 1, plaintext)
	a := startAPIServer(t, c)
	const ns = "migrate"
	a.must(t, "create", "namespace", ns)
	for i := range 15 {
		a.must(t, "-n", ns, "create", "configmap", fmt.Sprintf("cm-%02d", i), fmt.Sprintf("--from-literal=k=v%d", i))
	}
	for i := range 5 {
		a.must(t, "-n", ns, "create", "secret", "generic", fmt.Sprintf("s-%d", i), fmt.Sprintf("--from-literal=p=%d", i))
	}
	a.must(t, "-n", ns, "label", "configmap", "cm-01", "updated=yes")
	a.must(t, "-n", ns, "delete", "configmap", "cm-02")
	before, listRV := objects(t, a, ns)
	a.proc.stop()

	m := c.members[0]
	snap := filepath.Join(t.TempDir(), "etcd.db")
	if out, err := exec.Command(etcdctl, "--endpoints", m.clientURL, "snapshot", "save", snap).CombinedOutput(); err != nil {
		t.Fatalf("etcdctl snapshot save: %v\n%s", err, out)
	}
	m.proc.stop()
	token := ""
	for _, arg := range m.args {
		if v, ok := strings.CutPrefix(arg, "--initial-cluster-token="); ok {
			token = v
		}
	}
	dataDir := m.dataDir + ".cairn"
	if out, err := exec.Command(cairnutl, "snapshot", "restore", snap, "--name", m.name, "--data-dir", dataDir,
		"--initial-cluster", m.name+"="+m.peerURL, "--initial-cluster-token", token,
		"--initial-advertise-peer-urls", m.peerURL).CombinedOutput(); err != nil {
		t.Fatalf("cairnutl snapshot restore: %v\n%s", err, out)
	}
	m.bin, m.dataDir = "", dataDir
	m.args = setFlags(m.args, []string{"--data-dir=" + dataDir})
	m.start(t)
	if err := m.waitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	a2 := startAPIServer(t, c)
	after, _ := objects(t, a2, ns)
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatalf("objects after migrating to Cairn:\n%s\nbefore, on etcd:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	// A list at the resourceVersion seen on etcd is served from the
	// migrated history.
	out := a2.must(t, "get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/configmaps?resourceVersion=%s&resourceVersionMatch=Exact", ns, listRV))
	var l list
	if err := json.Unmarshal([]byte(out), &l); err != nil || l.Metadata.ResourceVersion != listRV {
		t.Fatalf("list at resourceVersion %s after migration: %v %s", listRV, err, out)
	}
	a2.must(t, "-n", ns, "create", "configmap", "after-migration", "--from-literal=k=new")
	var obj struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(a2.must(t, "-n", ns, "get", "configmap", "after-migration", "-o", "json")), &obj); err != nil {
		t.Fatal(err)
	}
	newRV, _ := strconv.ParseInt(obj.Metadata.ResourceVersion, 10, 64)
	oldRV, _ := strconv.ParseInt(listRV, 10, 64)
	if newRV <= oldRV {
		t.Fatalf("a write after the migration got resourceVersion %d, not above %d", newRV, oldRV)
	}
}

// objects lists the namespace's configmaps and secrets as
// "kind/name rv=... data=..." lines, and the list's resourceVersion.
func objects(t *testing.T, a *apiServer, ns string) ([]string, string) {
	t.Helper()
	var l struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []struct {
			Metadata struct {
				Name            string            `json:"name"`
				ResourceVersion string            `json:"resourceVersion"`
				Labels          map[string]string `json:"labels"`
			} `json:"metadata"`
			Data map[string]string `json:"data"`
		} `json:"items"`
	}
	var lines []string
	var rv string
	for _, kind := range []string{"configmaps", "secrets"} {
		out := a.must(t, "get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/%s", ns, kind))
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("list %s: %v: %s", kind, err, out)
		}
		if kind == "configmaps" {
			rv = l.Metadata.ResourceVersion
		}
		for _, it := range l.Items {
			lines = append(lines, fmt.Sprintf("%s/%s rv=%s labels=%v data=%v", kind, it.Metadata.Name, it.Metadata.ResourceVersion, it.Metadata.Labels, it.Data))
		}
	}
	sort.Strings(lines)
	return lines, rv
}
