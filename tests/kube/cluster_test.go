package kube

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
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

// transport is how the members, kube-apiserver and the test's own
// client talk to each other.
type transport string

const (
	// plaintext is etcd's defaults: http:// client and peer URLs on
	// 127.0.0.1, no certificates.
	plaintext transport = "plaintext"
	// kubeadmTLS is the command line of kubeadm's etcd static pod
	// (cmd/kubeadm/app/phases/etcd/local.go): mutual TLS on the client
	// and peer URLs with the certificates of kubeadmPKI, each member
	// listening for clients on 127.0.0.1 and on its node's address, and a
	// plaintext metrics URL on 127.0.0.1 for the kubelet's probes.
	// kube-apiserver connects with apiserver-etcd-client, the test with
	// healthcheck-client.
	kubeadmTLS transport = "kubeadm-mtls"
	// kubeadmTLSAuth is kubeadmTLS with auth on, every client a
	// certificate user: before kube-apiserver starts, the test adds root
	// and a user per kubeadm client certificate CN, kube-apiserver's
	// with a non-root role that may read and write every key, and turns
	// auth on (auth_test.go).
	kubeadmTLSAuth transport = "kubeadm-mtls-auth"
)

// transports are the variants the control-plane tests run in.
var transports = []transport{plaintext, kubeadmTLS, kubeadmTLSAuth}

// mtls reports whether the members, kube-apiserver and the test talk
// over kubeadm's mutual TLS.
func (tr transport) mtls() bool { return tr == kubeadmTLS || tr == kubeadmTLSAuth }

// member is one member of the key-value cluster, run as a process.
type member struct {
	name    string
	dataDir string
	// clientURL is the advertised client URL, which the test's own
	// client uses; localURL is the 127.0.0.1 listener that kubeadm's
	// kube-apiserver uses (--etcd-servers=https://127.0.0.1:2379).
	// With plaintext they are the same.
	clientURL string
	localURL  string
	peerURL   string
	// metricsURL is --listen-metrics-urls, where the kubelet probes the
	// member (mtls only).
	metricsURL string
	// pki is the member's node's kubeadm pki directory and tls the
	// healthcheck-client configuration (mtls only).
	pki     string
	tls     *tls.Config
	logPath string
	args    []string
	proc    *proc
	// bin is the server binary the member runs; empty, Cairn's.
	bin string
}

// cluster is n members started with one --initial-cluster, as an etcd
// cluster would be.
type cluster struct {
	transport transport
	members   []*member
}

// startCluster starts n members with fresh data directories on loopback,
// talking over tr, and waits until each answers the Maintenance Status
// RPC (and, over mtls, the kubelet's probes); with kubeadmTLSAuth it then
// turns auth on. extra are flags that
// replace the member's flag of the same name or are added, as kubeadm's
// etcd.local.extraArgs do.
func startCluster(t *testing.T, n int, tr transport, extra ...string) *cluster {
	t.Helper()
	return startClusterOf(t, "", n, tr, extra...)
}

// startClusterOf is startCluster with members running bin (etcd, for a
// test that starts from etcd); empty, Cairn.
func startClusterOf(t *testing.T, bin string, n int, tr transport, extra ...string) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{transport: tr}
	var pki *kubeadmPKI
	if tr.mtls() {
		pki = newKubeadmPKI(t)
	}
	var initial []string
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i), bin: bin}
		m.dataDir = filepath.Join(dir, m.name+".data")
		m.logPath = filepath.Join(logDir(t), m.name+".log")
		switch tr {
		case plaintext:
			m.clientURL = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
			m.localURL = m.clientURL
			m.peerURL = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		case kubeadmTLS, kubeadmTLSAuth:
			// Each member stands for a control plane node with its own
			// address (any 127/8 address is loopback on Linux) and its
			// own certificates, issued by the one etcd CA.
			nodeIP := net.IPv4(127, 0, 0, byte(2+i))
			port := freePort(t, nodeIP.String())
			m.clientURL = fmt.Sprintf("https://%s:%d", nodeIP, port)
			m.localURL = fmt.Sprintf("https://127.0.0.1:%d", port)
			m.peerURL = fmt.Sprintf("https://%s:%d", nodeIP, freePort(t, nodeIP.String()))
			m.metricsURL = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
			m.pki = pki.writeNode(t, filepath.Join(dir, m.name+".node"), m.name, nodeIP)
			m.tls = clientTLS(t, m.pki, etcdHealthcheckCert, etcdHealthcheckKey)
		default:
			t.Fatalf("unknown transport %q", tr)
		}
		initial = append(initial, m.name+"="+m.peerURL)
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.args = []string{
			"--name=" + m.name,
			"--data-dir=" + m.dataDir,
			"--advertise-client-urls=" + m.clientURL,
			"--listen-peer-urls=" + m.peerURL,
			"--initial-advertise-peer-urls=" + m.peerURL,
			"--initial-cluster=" + strings.Join(initial, ","),
			"--initial-cluster-token=kube-" + filepath.Base(dir),
			"--initial-cluster-state=new",
		}
		if tr == plaintext {
			m.args = append(m.args, "--listen-client-urls="+m.clientURL)
		} else {
			m.args = append(m.args,
				"--listen-client-urls="+m.localURL+","+m.clientURL,
				"--cert-file="+filepath.Join(m.pki, etcdServerCert),
				"--key-file="+filepath.Join(m.pki, etcdServerKey),
				"--trusted-ca-file="+filepath.Join(m.pki, etcdCACert),
				"--client-cert-auth=true",
				"--peer-cert-file="+filepath.Join(m.pki, etcdPeerCert),
				"--peer-key-file="+filepath.Join(m.pki, etcdPeerKey),
				"--peer-trusted-ca-file="+filepath.Join(m.pki, etcdCACert),
				"--peer-client-cert-auth=true",
				"--snapshot-count=10000",
				"--listen-metrics-urls="+m.metricsURL,
				"--feature-gates=InitialCorruptCheck=true",
				"--watch-progress-notify-interval=5s",
			)
		}
		if tr == kubeadmTLSAuth {
			// kube-apiserver's compactor is off (apiServerFlags): etcd
			// 3.7 lets only root call Compact. The members compact
			// their own history instead, keeping about what
			// kube-apiserver's default 5m interval keeps.
			m.args = append(m.args, "--auto-compaction-mode=periodic", "--auto-compaction-retention=5m")
		}
		m.args = setFlags(m.args, extra)
		m.start(t)
	}
	for _, m := range c.members {
		if err := m.waitReady(30 * time.Second); err != nil {
			t.Fatalf("member %s did not become ready: %v", m.name, err)
		}
	}
	if tr == kubeadmTLSAuth {
		c.enableAuth(t)
	}
	// Under kubeadmTLSAuth the probes, which carry no credentials, are
	// checked with auth on.
	if tr.mtls() {
		c.waitProbes(t, 10*time.Second)
	}
	return c
}

// setFlags returns args with each --name=value of extra replacing the
// flag of the same name, or appended if there is none.
func setFlags(args, extra []string) []string {
	args = slices.Clone(args)
	for _, e := range extra {
		name, _, _ := strings.Cut(e, "=")
		i := slices.IndexFunc(args, func(a string) bool { return a == name || strings.HasPrefix(a, name+"=") })
		if i >= 0 {
			args[i] = e
		} else {
			args = append(args, e)
		}
	}
	return args
}

// start (re)starts the member's process with its flags and data directory.
func (m *member) start(t *testing.T) {
	t.Helper()
	bin := m.bin
	if bin == "" {
		bin = serverBinary
	}
	m.proc = startProc(t, "member "+m.name, m.logPath, bin, m.args...)
}

// apiServerFlags are kube-apiserver's flags for reaching the cluster:
// every member's 127.0.0.1 listener (a kubeadm kube-apiserver lists only
// its own node's member; listing all lets it survive the leader kill)
// and, over mtls, the etcd CA and apiserver-etcd-client of the
// first member's node; under kubeadmTLSAuth, no compactor.
func (c *cluster) apiServerFlags() []string {
	var urls []string
	for _, m := range c.members {
		urls = append(urls, m.localURL)
	}
	flags := []string{"--etcd-servers=" + strings.Join(urls, ",")}
	if c.transport.mtls() {
		pki := c.members[0].pki
		flags = append(flags,
			"--etcd-cafile="+filepath.Join(pki, etcdCACert),
			"--etcd-certfile="+filepath.Join(pki, apiserverEtcdCert),
			"--etcd-keyfile="+filepath.Join(pki, apiserverEtcdKey),
		)
	}
	if c.transport == kubeadmTLSAuth {
		// Its user is not root, and etcd 3.7 refuses Compact to any
		// other user (the members auto-compact instead; startCluster).
		flags = append(flags, "--etcd-compaction-interval=0")
	}
	return flags
}

// client returns a client of the member alone (its advertised URL), with
// the healthcheck-client certificate over mtls (under kubeadmTLSAuth,
// its user is healthcheckUser).
func (m *member) client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{m.clientURL},
		DialTimeout: 2 * time.Second,
		TLS:         m.tls,
		Logger:      zap.NewNop(),
	})
}

// status asks the member itself for its Maintenance Status.
func (m *member) status(ctx context.Context) (*clientv3.StatusResponse, error) {
	cli, err := m.client()
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
