package kube

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// opTimeout bounds each step of the workflow, retries included. It is
// generous so that a step that follows a leader kill has time to fail
// over.
const opTimeout = 30 * time.Second

// TestControlPlaneSingleMember runs kube-apiserver on a one-member cluster
// and scripts a kubectl workflow against it, in plaintext and over
// kubeadm's mutual TLS.
func TestControlPlaneSingleMember(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			var extra []string
			if tr == kubeadmTLSAuth {
				// So that checkAuth sees the member compact while
				// kube-apiserver runs as its non-root user.
				extra = append(extra, "--auto-compaction-retention=3s")
			}
			c := startCluster(t, 1, tr, extra...)
			a := startAPIServer(t, c)
			runWorkflow(t, a, "single", nil)
			checkMetrics(t, a)
			if tr == kubeadmTLSAuth {
				c.checkAuth(t, true)
			}
		})
	}
}

// TestControlPlaneLeaderKill runs the workflow on a three-member cluster
// and SIGKILLs the leader in the middle of it: kubectl must keep working
// after a few seconds, and the killed member must catch up when it is
// restarted. It runs in plaintext and over kubeadm's mutual TLS, where
// the surviving members must also pass the kubelet's probes once a new
// leader is elected, and the restarted one once it has caught up.
//
// The members snapshot their state every 100 entries and keep only 20
// behind it, so the killed member, while it is down, falls behind the
// leader's log and is brought back with a snapshot.
func TestControlPlaneLeaderKill(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) { testLeaderKill(t, tr) })
	}
}

func testLeaderKill(t *testing.T, tr transport) {
	c := startCluster(t, 3, tr, "--snapshot-count=100", "--snapshot-catchup-entries=20")
	a := startAPIServer(t, c)
	var killed *member
	var cmWatch *kubeWatch
	var created []string
	runWorkflow(t, a, "ha", func() {
		// Writes and a watch run through the kill.
		cmWatch = startWatch(t, a, "ha", "configmaps")
		wr := startWriter(t, a, "ha")
		time.Sleep(time.Second)
		killed = c.leader(t)
		t.Logf("SIGKILL leader %s (%s)", killed.name, killed.clientURL)
		killed.proc.kill()
		// The first write after the kill: how long until the API server
		// (through its etcd client) reaches the new leader.
		_, took := a.retry(t, opTimeout, configMap("ha", "after-kill"), "apply", "-f", "-")
		t.Logf("first write after the leader kill succeeded after %v", took.Round(time.Millisecond))
		if took > 15*time.Second {
			t.Errorf("writes failed for %v after the leader was killed; want a few seconds", took)
		}
		newLeader := c.leader(t)
		t.Logf("new leader %s", newLeader.name)
		if tr.mtls() {
			c.waitProbes(t, 10*time.Second)
		}
		time.Sleep(time.Second)
		created = wr.stop()
	})
	checkWritesSurvived(t, a, "ha", created, cmWatch)

	// Enough writes while it is down that the leader's log no longer
	// reaches back to the killed member's last entry.
	createConfigMaps(t, a, "ha", 250)
	t.Logf("restart %s", killed.name)
	killed.start(t)
	if err := killed.waitReady(30 * time.Second); err != nil {
		t.Fatalf("restarted member %s: %v", killed.name, err)
	}
	a.retry(t, opTimeout, configMap("ha", "after-restart"), "apply", "-f", "-")
	c.waitConverged(t, 30*time.Second)
	if tr.mtls() {
		c.waitProbes(t, 10*time.Second)
	}
	out, _ := a.retry(t, opTimeout, "", "get", "configmaps", "-n", "ha", "-o", "name")
	for _, want := range []string{"configmap/after-kill", "configmap/after-restart"} {
		if !strings.Contains(out, want) {
			t.Errorf("configmaps in ha: %q, want %s", out, want)
		}
	}
	checkMetrics(t, a)
	if tr == kubeadmTLSAuth {
		// The restarted member, too, which learned the users and roles
		// from the leader's snapshot.
		c.checkAuth(t, false)
	}
}

// runWorkflow creates a namespace with service accounts, a config map,
// pods and a deployment, watches the pods, lists them in pages and from
// the watch cache, labels, patches and deletes them. midway, if not nil,
// runs after the pods exist and the watch is open.
func runWorkflow(t *testing.T, a *apiServer, ns string, midway func()) {
	t.Helper()
	step := a.stepper(t)

	step(fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns), "apply", "-f", "-")
	// No controller manager runs, so the ServiceAccount admission plugin
	// would refuse pods until the namespace's "default" account exists.
	for _, sa := range []string{"default", "app"} {
		step(fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: %s\n  namespace: %s\n", sa, ns), "apply", "-f", "-")
	}
	step(configMap(ns, "settings"), "apply", "-f", "-")
	if got := step("", "get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.mode}"); got != "test" {
		t.Errorf("configmap settings data.mode = %q, want test", got)
	}

	w := startWatch(t, a, ns, "pods")

	step(pod(ns, "p1", "app"), "apply", "-f", "-")
	step(pod(ns, "p2", "")+"---\n"+pod(ns, "p3", ""), "apply", "-f", "-")
	if got := step("", "get", "pod", "p2", "-n", ns, "-o", "jsonpath={.spec.serviceAccountName}"); got != "default" {
		t.Errorf("pod p2 serviceAccountName = %q, want default (set by the ServiceAccount admission plugin)", got)
	}

	if midway != nil {
		midway()
	}

	step("", "label", "pod", "p1", "-n", ns, "tier=web", "--overwrite")
	step("", "patch", "pod", "p1", "-n", ns, "--type=merge", "-p", `{"metadata":{"annotations":{"cairn.test/patched":"yes"}}}`)
	if got := step("", "get", "pod", "p1", "-n", ns, "-o", `jsonpath={.metadata.labels.tier}/{.metadata.annotations.cairn\.test/patched}`); got != "web/yes" {
		t.Errorf("pod p1 label/annotation = %q, want web/yes", got)
	}
	if got := step("", "get", "pods", "-n", ns, "-l", "tier=web", "-o", "name"); strings.TrimSpace(got) != "pod/p1" {
		t.Errorf("pods with tier=web: %q, want pod/p1", got)
	}

	step(deployment(ns, "web", 2), "apply", "-f", "-")
	step("", "scale", "deployment", "web", "-n", ns, "--replicas=3")
	if got := step("", "get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}"); got != "3" {
		t.Errorf("deployment web replicas = %q, want 3", got)
	}

	checkLists(t, a, ns, step)

	step("", "delete", "pod", "p1", "-n", ns, "--ignore-not-found")
	// kubectl delete sets the deletion timestamp (graceful deletion, one
	// MODIFIED) and, with no kubelet to wait for, the pod is removed.
	w.expectPodLifecycle(t, "p1", []string{"ADDED", "MODIFIED+label", "MODIFIED+label+patch", "MODIFIED+label+patch+deleting", "DELETED+label+patch+deleting"})

	step("", "delete", "pods", "p2", "p3", "-n", ns, "--ignore-not-found")
	step("", "delete", "deployment", "web", "-n", ns, "--ignore-not-found")
	if got := step("", "get", "pods", "-n", ns, "-o", "name"); strings.TrimSpace(got) != "" {
		t.Errorf("pods left in %s after deleting them: %q", ns, got)
	}
}

// checkLists lists the namespace's three pods whole, in pages of one (with
// kubectl --chunk-size and with ?limit= and continue tokens), from the
// watch cache (resourceVersion=0) and at an exact resource version.
func checkLists(t *testing.T, a *apiServer, ns string, step func(string, ...string) string) {
	t.Helper()
	want := "pod/p1\npod/p2\npod/p3"
	if got := strings.TrimSpace(step("", "get", "pods", "-n", ns, "-o", "name")); got != want {
		t.Errorf("get pods: %q, want %q", got, want)
	}
	if got := strings.TrimSpace(step("", "get", "pods", "-n", ns, "-o", "name", "--chunk-size=1")); got != want {
		t.Errorf("get pods --chunk-size=1: %q, want %q", got, want)
	}

	base := "/api/v1/namespaces/" + ns + "/pods"
	var names []string
	cont := ""
	for page := 0; ; page++ {
		path := base + "?limit=1"
		if cont != "" {
			path += "&continue=" + cont
		}
		l := rawList(t, step, path)
		if len(l.Items) != 1 {
			t.Errorf("%s: %d items, want 1", path, len(l.Items))
		}
		for _, it := range l.Items {
			names = append(names, it.Metadata.Name)
		}
		cont = l.Metadata.Continue
		if page < 2 && cont == "" {
			t.Errorf("%s: no continue token on page %d of 3", path, page+1)
		}
		if cont == "" || page >= 5 {
			break
		}
		if page == 2 {
			t.Errorf("%s: continue token after the last page (remainingItemCount %v)", path, l.Metadata.RemainingItemCount)
		}
	}
	if got := strings.Join(names, ","); got != "p1,p2,p3" {
		t.Errorf("pages of ?limit=1: %s, want p1,p2,p3", got)
	}

	cached := rawList(t, step, base+"?resourceVersion=0")
	if len(cached.Items) != 3 {
		t.Errorf("?resourceVersion=0: %d items, want 3", len(cached.Items))
	}
	if got := rawList(t, step, base+"?resourceVersion=0&limit=1"); len(got.Items) < 1 {
		t.Errorf("?resourceVersion=0&limit=1: no items")
	}
	full := rawList(t, step, base)
	rv := full.Metadata.ResourceVersion
	if n, err := strconv.ParseInt(rv, 10, 64); err != nil || n <= 0 {
		t.Errorf("list resourceVersion %q is not a positive integer", rv)
	}
	for _, match := range []string{"Exact", "NotOlderThan"} {
		path := base + "?resourceVersion=" + rv + "&resourceVersionMatch=" + match
		if got := rawList(t, step, path); len(got.Items) != 3 {
			t.Errorf("%s: %d items, want 3", path, len(got.Items))
		}
	}
	// A page at an exact old revision is served from etcd (Range with a
	// revision), not from the cache.
	path := base + "?limit=2&resourceVersion=" + rv + "&resourceVersionMatch=Exact"
	if got := rawList(t, step, path); len(got.Items) != 2 || got.Metadata.Continue == "" {
		t.Errorf("%s: %d items, continue %q; want 2 and a token", path, len(got.Items), got.Metadata.Continue)
	}
}

// list is the part of a Kubernetes list response the test reads.
type list struct {
	Metadata struct {
		ResourceVersion    string `json:"resourceVersion"`
		Continue           string `json:"continue"`
		RemainingItemCount *int64 `json:"remainingItemCount"`
	} `json:"metadata"`
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	} `json:"items"`
}

func rawList(t *testing.T, step func(string, ...string) string, path string) list {
	t.Helper()
	out := step("", "get", "--raw", path)
	var l list
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("get --raw %s: %v: %s", path, err, out)
	}
	return l
}

// kubeWatch is a running "kubectl get <resource> --watch --output-watch-events".
type kubeWatch struct {
	events chan watchEvent
	stderr *strings.Builder
}

type watchEvent struct {
	Type   string `json:"type"`
	Object struct {
		Metadata struct {
			Name              string            `json:"name"`
			ResourceVersion   string            `json:"resourceVersion"`
			Labels            map[string]string `json:"labels"`
			Annotations       map[string]string `json:"annotations"`
			DeletionTimestamp string            `json:"deletionTimestamp"`
		} `json:"metadata"`
	} `json:"object"`
}

// String describes the event by what the workflow changes: the tier
// label, the patched annotation and the deletion timestamp.
func (ev watchEvent) String() string {
	m := ev.Object.Metadata
	s := ev.Type
	if m.Labels["tier"] != "" {
		s += "+label"
	}
	if m.Annotations["cairn.test/patched"] != "" {
		s += "+patch"
	}
	if m.DeletionTimestamp != "" {
		s += "+deleting"
	}
	return s
}

func startWatch(t *testing.T, a *apiServer, ns, resource string) *kubeWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, a.kubectlBin, "--kubeconfig="+a.kubeconfig,
		"get", resource, "-n", ns, "--watch", "--output-watch-events", "-o", "json")
	cmd.Env = cleanEnv()
	cmd.WaitDelay = 5 * time.Second
	w := &kubeWatch{events: make(chan watchEvent, 10000), stderr: &strings.Builder{}}
	cmd.Stderr = w.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(w.events)
		dec := json.NewDecoder(bufio.NewReader(stdout))
		for {
			var ev watchEvent
			if err := dec.Decode(&ev); err != nil {
				if err != io.EOF && ctx.Err() == nil {
					w.stderr.WriteString("decode: " + err.Error() + "\n")
				}
				io.Copy(io.Discard, stdout)
				return
			}
			w.events <- ev
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cmd.Wait()
	})
	return w
}

// expectPodLifecycle reads watch events until the named pod's DELETED and
// checks that its events had the given types, in order, and that resource
// versions only grew.
func (w *kubeWatch) expectPodLifecycle(t *testing.T, name string, want []string) {
	t.Helper()
	var got []string
	var lastRV int64
	timeout := time.After(opTimeout)
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				t.Fatalf("kubectl watch ended before %s was deleted; events for it: %v; stderr: %s", name, got, w.stderr.String())
			}
			rv, err := strconv.ParseInt(ev.Object.Metadata.ResourceVersion, 10, 64)
			if err != nil {
				t.Errorf("watch event %s %s: resourceVersion %q", ev.Type, ev.Object.Metadata.Name, ev.Object.Metadata.ResourceVersion)
			}
			// A DELETED event carries the deleted object at the delete's
			// revision, so versions grow across all events.
			if rv <= lastRV {
				t.Errorf("watch event %s %s at resourceVersion %d after %d", ev.Type, ev.Object.Metadata.Name, rv, lastRV)
			}
			lastRV = rv
			if ev.Object.Metadata.Name != name {
				continue
			}
			got = append(got, ev.String())
			if ev.Type != "DELETED" {
				continue
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("watch events for pod %s: %v, want %v", name, got, want)
			} else {
				t.Logf("watch events for pod %s: %v", name, got)
			}
			return
		case <-timeout:
			t.Fatalf("no DELETED event for pod %s after %v; events for it: %v; stderr: %s", name, opTimeout, got, w.stderr.String())
		}
	}
}

// checkMetrics scrapes kube-apiserver's metrics and checks that consistent
// lists were served from the watch cache, which kube-apiserver enables
// only when every etcd endpoint reports version 3.5.13 or later in Status
// and watch progress requests work; that lists that reached etcd used
// RangeStream; and that the watch cache never disagreed with etcd.
func checkMetrics(t *testing.T, a *apiServer) {
	t.Helper()
	// A consistent list (no resourceVersion) of something cached.
	a.retry(t, opTimeout, "", "get", "configmaps", "-A")
	body := a.metrics(t)
	if dir := os.Getenv("CAIRN_KUBE_LOG_DIR"); dir != "" {
		os.WriteFile(filepath.Join(logDir(t), "metrics.txt"), []byte(body), 0o644)
	}
	var reads, checks, errs []string
	success := false
	for _, line := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(line, "apiserver_watch_cache_consistent_read_total{"):
			reads = append(reads, line)
			if strings.Contains(line, `success="true"`) && !strings.HasSuffix(line, " 0") {
				success = true
			}
		case strings.HasPrefix(line, "apiserver_storage_consistency_checks_total{"):
			checks = append(checks, line)
		case strings.HasPrefix(line, "etcd_request_errors_total{"):
			errs = append(errs, line)
		}
	}
	streamed := listsFromEtcd(body)
	t.Logf("apiserver_watch_cache_consistent_read_total:\n%s", strings.Join(reads, "\n"))
	if len(checks) > 0 {
		t.Logf("apiserver_storage_consistency_checks_total:\n%s", strings.Join(checks, "\n"))
	}
	if len(errs) > 0 {
		t.Logf("etcd_request_errors_total:\n%s", strings.Join(errs, "\n"))
	}
	// With the watch cache's snapshots, the workflow's lists rarely reach
	// etcd; TestControlPlaneCompaction checks that those that do stream.
	t.Logf("lists from etcd: %v with RangeStream, %v paginated", streamed["true"], streamed["false"])
	for _, line := range checks {
		if strings.Contains(line, `status="failure"`) && !strings.HasSuffix(line, " 0") {
			t.Errorf("watch cache and etcd disagreed: %s", line)
		}
	}
	if !success {
		var hints []string
		for _, line := range strings.Split(a.proc.log(), "\n") {
			if strings.Contains(line, "RequestWatchProgress") || strings.Contains(line, "etcd version") {
				hints = append(hints, line)
			}
		}
		t.Errorf("no successful consistent read from the watch cache; apiserver log lines about it:\n%s", strings.Join(hints, "\n"))
	}
}

func configMap(ns, name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
  namespace: %s
data:
  mode: test
`, name, ns)
}

// pod is a pod manifest; with no scheduler or kubelet it stays Pending,
// which is all the API server needs.
func pod(ns, name, serviceAccount string) string {
	sa := ""
	if serviceAccount != "" {
		sa = "  serviceAccountName: " + serviceAccount + "\n"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels:
    app: demo
spec:
%s  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
`, name, ns, sa)
}

func deployment(ns, name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
spec:
  replicas: %d
  selector:
    matchLabels:
      app: %s
  template:
    metadata:
      labels:
        app: %s
    spec:
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10
`, name, ns, replicas, name, name)
}

// metrics returns kube-apiserver's /metrics.
func (a *apiServer) metrics(t *testing.T) string {
	t.Helper()
	code, body := a.mustGet(t, "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	return body
}

// listsFromEtcd counts the lists that reached etcd, by whether they used
// RangeStream ("true") or paginated Range calls ("false"), from the
// apiserver_storage_list_duration_seconds histogram.
func listsFromEtcd(metrics string) map[string]float64 {
	n := map[string]float64{}
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "apiserver_storage_list_duration_seconds_count{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, _ := strconv.ParseFloat(line[i+1:], 64)
		if strings.Contains(line, `streamed="true"`) {
			n["true"] += v
		} else {
			n["false"] += v
		}
	}
	return n
}
