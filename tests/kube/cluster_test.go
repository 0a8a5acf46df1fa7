package kube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// serverBinary is the key-value server under test: Cairn built from the
// repository, or $CAIRN_KUBE_SERVER_BINARY (for example bin/etcd, to check
// that a failure is Cairn's and not the test's). Set by TestMain.
var serverBinary string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if bin := os.Getenv("CAIRN_KUBE_SERVER_BINARY"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		serverBinary = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "cairn-kube-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	serverBinary = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", serverBinary, "./cmd/cairn")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build cairn: %v\n", err)
		return 1
	}
	return m.Run()
}

// member is one member of the key-value cluster, run as a process.
type member struct {
	name      string
	dataDir   string
	clientURL string
	peerURL   string
	logPath   string
	args      []string
	proc      *proc
}

// cluster is n members started with one --initial-cluster, as an etcd
// cluster would be.
type cluster struct {
	members []*member
}

// startCluster starts n members with fresh data directories on loopback,
// with extra flags added to each, and waits until each answers the
// Maintenance Status RPC.
func startCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{}
	var initial []string
	for i := range n {
		m := &member{
			name:      fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		}
		m.dataDir = filepath.Join(dir, m.name+".data")
		m.logPath = filepath.Join(logDir(t), m.name+".log")
		initial = append(initial, m.name+"="+m.peerURL)
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.args = []string{
			"--name=" + m.name,
			"--data-dir=" + m.dataDir,
			"--listen-client-urls=" + m.clientURL,
			"--advertise-client-urls=" + m.clientURL,
			"--listen-peer-urls=" + m.peerURL,
			"--initial-advertise-peer-urls=" + m.peerURL,
			"--initial-cluster=" + strings.Join(initial, ","),
			"--initial-cluster-token=kube-" + filepath.Base(dir),
			"--initial-cluster-state=new",
		}
		m.args = append(m.args, extra...)
		m.start(t)
	}
	for _, m := range c.members {
		if err := m.waitReady(30 * time.Second); err != nil {
			t.Fatalf("member %s did not become ready: %v", m.name, err)
		}
	}
	return c
}

// start (re)starts the member's process with its flags and data directory.
func (m *member) start(t *testing.T) {
	t.Helper()
	m.proc = startProc(t, "member "+m.name, m.logPath, serverBinary, m.args...)
}

// clientURLs is the --etcd-servers value for kube-apiserver.
func (c *cluster) clientURLs() string {
	var urls []string
	for _, m := range c.members {
		urls = append(urls, m.clientURL)
	}
	return strings.Join(urls, ",")
}

// status asks the member itself for its Maintenance Status.
func (m *member) status(ctx context.Context) (*clientv3.StatusResponse, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.clientURL},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cli.Status(ctx, m.clientURL)
}

// waitReady polls Status until the member answers and knows a leader.
func (m *member) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if !m.proc.running() {
			return fmt.Errorf("process exited: %v", m.proc.cmd.ProcessState)
		}
		st, err := m.status(context.Background())
		if err == nil && st.Leader != 0 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("no leader yet")
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("timed out; last: %v", last)
}

// leader returns the member that says it is the leader (Status.Leader is
// its own ID).
func (c *cluster) leader(t *testing.T) *member {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range c.members {
			if !m.proc.running() {
				continue
			}
			st, err := m.status(context.Background())
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return m
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("no member reports itself the leader")
	return nil
}

// waitConverged waits until every member has reached the highest revision
// any member reported when it was called, i.e. a restarted member has
// caught up. (kube-apiserver keeps writing, so the revisions need not be
// equal at any one moment.)
func (c *cluster) waitConverged(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var target int64
	var last string
	for time.Now().Before(deadline) {
		var revs []int64
		var desc []string
		for _, m := range c.members {
			st, err := m.status(context.Background())
			if err != nil {
				desc = append(desc, fmt.Sprintf("%s: %v", m.name, err))
				continue
			}
			revs = append(revs, st.Header.Revision)
			desc = append(desc, fmt.Sprintf("%s: rev %d applied %d leader %x", m.name, st.Header.Revision, st.RaftAppliedIndex, st.Leader))
		}
		last = strings.Join(desc, "; ")
		if target == 0 && len(revs) > 0 {
			target = slices.Max(revs)
		}
		if target != 0 && len(revs) == len(c.members) && slices.Min(revs) >= target {
			t.Logf("members reached revision %d: %s", target, last)
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("members did not reach revision %d in %v: %s", target, timeout, last)
}
