package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/testcluster"
	"github.com/cairnkv/cairn/internal/testpki"
)

// The client listener forms of etcd 3.7 beyond one http URL: split gRPC
// and HTTP URLs, the gateway switched off, unix sockets, auto-TLS, https
// metrics URLs, and the peer port's certificate checks. Each test passes
// against etcd 3.7.3 too (scripts/test.sh runs them there).

// proc is a member started straight from the binary, for command lines
// the harness does not build.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProc runs the member binary with args in dir and waits for etcd's
// "ready to serve client requests"; it is killed by PID at cleanup.
func startProc(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p := startProcNoWait(t, dir, args...)
	deadline := time.After(30 * time.Second)
	for !strings.Contains(p.logs(), "ready to serve client requests") {
		select {
		case <-p.done:
			t.Fatalf("member exited before it was ready:\n%s", p.logs())
		case <-deadline:
			t.Fatalf("member not ready after 30s:\n%s", p.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return p
}

// runFailing runs the binary with args and returns its output, failing
// the test unless it exits with an error within 30 s.
func runFailing(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testcluster.Binary(t), args...).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("member did not fail (%v):\n%s", err, out)
	}
	return string(out)
}

func loopbackURL(t *testing.T, scheme string) string {
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, freePort(t))
}

func newClient(t *testing.T, cfg clientv3.Config) *clientv3.Client {
	t.Helper()
	cfg.DialTimeout = 5 * time.Second
	cfg.Logger = zap.NewNop()
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func httpGet(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestListenClientHTTPURLsSplitTraffic: with --listen-client-http-urls the
// client URL serves gRPC only and the HTTP URL serves the gateway and
// /health only.
func TestListenClientHTTPURLsSplitTraffic(t *testing.T) {
	httpURL := loopbackURL(t, "http")
	m, cli, ctx := start(t, "--listen-client-http-urls="+httpURL)
	put(t, ctx, cli, "split", "v")

	resp, err := http.Post(httpURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"c3BsaXQ="}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"value":"dg=="`) {
		t.Fatalf("gateway range on the HTTP URL: %d %s", resp.StatusCode, body)
	}
	if code, body, err := httpGet(http.DefaultClient, httpURL+"/health"); err != nil || code != 200 || !strings.Contains(body, `"health":"true"`) {
		t.Fatalf("/health on the HTTP URL: %d %s %v", code, body, err)
	}
	// HTTP on the gRPC-only client URL is not served.
	hc := &http.Client{Timeout: 5 * time.Second}
	if code, body, err := httpGet(hc, m.ClientURL+"/health"); err == nil && code == 200 {
		t.Fatalf("/health was served on the gRPC-only client URL: %s", body)
	}
	// gRPC on the HTTP URL is not served.
	hcli := newClient(t, clientv3.Config{Endpoints: []string{httpURL}})
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := hcli.Get(cctx, "split"); err == nil {
		t.Fatal("gRPC was served on the HTTP-only URL")
	}
}

// TestListenClientHTTPURLsSameURLRefused uses etcd's words.
func TestListenClientHTTPURLsSameURLRefused(t *testing.T) {
	t.Parallel()
	u := loopbackURL(t, "http")
	out := runFailing(t, "--data-dir="+t.TempDir(), "--listen-client-urls="+u, "--advertise-client-urls="+u,
		"--listen-client-http-urls="+u, "--listen-peer-urls="+loopbackURL(t, "http"))
	want := "cannot bind both --listen-client-urls and --listen-client-http-urls on the same url " + u
	if !strings.Contains(out, want) {
		t.Fatalf("output:\n%s\nwant %q", out, want)
	}
}

// TestGatewayDisabled: --enable-grpc-gateway=false drops /v3/ and keeps
// /health.
func TestGatewayDisabled(t *testing.T) {
	m, cli, ctx := start(t, "--enable-grpc-gateway=false")
	put(t, ctx, cli, "k", "v")
	resp, err := http.Post(m.ClientURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"aw=="}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/v3/kv/range with the gateway off: %d, want 404", resp.StatusCode)
	}
	if code, body, err := httpGet(http.DefaultClient, m.ClientURL+"/health"); err != nil || code != 200 {
		t.Fatalf("/health: %d %s %v", code, body, err)
	}
}

// TestUnixSocketClientURL: a unix:// client URL serves clientv3, the
// official etcdctl and the gateway over the socket.
func TestUnixSocketClientURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// etcd takes the socket path from host and path: unix://localhost:N
	// is the file "localhost:N" in the working directory.
	sock := fmt.Sprintf("unix://localhost:%d", freePort(t))
	peer := loopbackURL(t, "http")
	startProc(t, dir, "--data-dir="+filepath.Join(dir, "data"), "--listen-client-urls="+sock,
		"--advertise-client-urls="+sock, "--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer, "--initial-cluster=default="+peer)
	path := filepath.Join(dir, strings.TrimPrefix(sock, "unix://"))
	ctx := testContext(t)
	cli := newClient(t, clientv3.Config{Endpoints: []string{"unix://" + path}})
	put(t, ctx, cli, "sock", "v")

	out, err := exec.CommandContext(ctx, testcluster.Etcdctl(t), "--endpoints=unix://"+path, "get", "sock", "--print-value-only").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "v" {
		t.Fatalf("etcdctl over the socket: %v\n%s", err, out)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}}
	if code, body, err := httpGet(hc, "http://socket/health"); err != nil || code != 200 || !strings.Contains(body, `"health":"true"`) {
		t.Fatalf("/health over the socket: %d %s %v", code, body, err)
	}
}

// TestAutoTLS: --auto-tls and --peer-auto-tls (etcd's test tooling's
// default) make self-signed certificates; etcdctl connects with
// --insecure-skip-tls-verify.
func TestAutoTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	client, peer := loopbackURL(t, "https"), loopbackURL(t, "https")
	startProc(t, dir, "--name=a", "--data-dir="+filepath.Join(dir, "data"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client, "--auto-tls",
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer, "--initial-cluster=a="+peer, "--peer-auto-tls")
	ctx := testContext(t)
	etcdctl := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, testcluster.Etcdctl(t), append([]string{"--endpoints=" + client,
			"--insecure-skip-tls-verify", "--insecure-transport=false", "--dial-timeout=5s"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := etcdctl("put", "auto", "tls"); err != nil || strings.TrimSpace(out) != "OK" {
		t.Fatalf("etcdctl put: %v\n%s", err, out)
	}
	if out, err := etcdctl("get", "auto", "--print-value-only"); err != nil || strings.TrimSpace(out) != "tls" {
		t.Fatalf("etcdctl get: %v\n%s", err, out)
	}
	// The self-signed certificate is not trusted without the skip.
	out, err := exec.CommandContext(ctx, testcluster.Etcdctl(t), "--endpoints="+client, "--dial-timeout=3s",
		"--command-timeout=5s", "get", "auto").CombinedOutput()
	if err == nil {
		t.Fatalf("etcdctl trusted the self-signed certificate: %s", out)
	}
}

// TestMetricsURLOverHTTPS: an https metrics URL serves the probes with the
// client certificate and its client-certificate rules; without
// --cert-file the member refuses to start with etcd's words.
func TestMetricsURLOverHTTPS(t *testing.T) {
	t.Parallel()
	p := newKubeadmPKI(t)
	metrics := loopbackURL(t, "https")
	testcluster.NewMember(t, testcluster.Config{TLS: p.tls, Flags: []string{"--listen-metrics-urls=" + metrics}})
	if code, body, err := httpGet(httpsClient(t, p.tls.CAFile, p.healthcheck), metrics+"/health"); err != nil || code != 200 || !strings.Contains(body, `"health":"true"`) {
		t.Fatalf("/health on the https metrics URL: %d %s %v", code, body, err)
	}
	if _, _, err := httpGet(httpsClient(t, p.tls.CAFile, nil), metrics+"/health"); err == nil {
		t.Fatal("the https metrics URL served a client without a certificate")
	}

	u := loopbackURL(t, "http")
	out := runFailing(t, "--data-dir="+t.TempDir(), "--listen-client-urls="+u, "--advertise-client-urls="+u,
		"--listen-peer-urls="+loopbackURL(t, "http"), "--listen-metrics-urls="+loopbackURL(t, "https"))
	want := "client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url"
	if !strings.Contains(out, want) {
		t.Fatalf("output:\n%s\nwant %q", out, want)
	}
}

// TestPeerPortChecksCertificates: the peer port refuses a certificate
// whose CN is not --peer-cert-allowed-cn, one revoked by --peer-crl-file
// (re-read while the member runs), and one whose IP SANs do not name the
// caller; it accepts the allowed one.
func TestPeerPortChecksCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "peer-ca")
	testpki.WriteBundle(t, filepath.Join(dir, "ca.crt"), ca)
	member := ca.Issue("member", "member", testpki.Opts{})
	crl := filepath.Join(dir, "peer.crl")
	ca.WriteCRL(crl)
	peer := loopbackURL(t, "https")
	client := loopbackURL(t, "http")
	startProc(t, dir, "--name=a", "--data-dir="+filepath.Join(dir, "data"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer, "--initial-cluster=a="+peer,
		"--peer-cert-file="+member.CertFile, "--peer-key-file="+member.KeyFile,
		"--peer-trusted-ca-file="+filepath.Join(dir, "ca.crt"), "--peer-client-cert-auth",
		"--peer-cert-allowed-cn=member", "--peer-crl-file="+crl)

	host := strings.TrimPrefix(peer, "https://")
	dial := func(l *testpki.Leaf) error {
		c, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", host,
			&tls.Config{Certificates: []tls.Certificate{c}, InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		defer conn.Close()
		// With TLS 1.3 the server's verdict on the client certificate
		// arrives after the handshake: read until it does.
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err = conn.Read(make([]byte, 1))
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return err
		}
		return nil
	}
	if err := dial(ca.Issue("other-cn", "intruder", testpki.Opts{})); err == nil {
		t.Fatal("a peer certificate with a CN not allowed was accepted")
	}
	if err := dial(ca.Issue("wrong-ip", "member", testpki.Opts{Hosts: []string{"10.9.9.9"}})); err == nil {
		t.Fatal("a peer certificate whose IP SANs do not name the caller was accepted")
	}
	good := ca.Issue("good", "member", testpki.Opts{})
	if err := dial(good); err != nil {
		t.Fatalf("the allowed peer certificate was refused: %v", err)
	}
	ca.WriteCRL(crl, good)
	deadline := time.Now().Add(10 * time.Second)
	for dial(good) == nil {
		if time.Now().After(deadline) {
			t.Fatal("a revoked peer certificate is still accepted 10 s after the CRL changed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPeerAutoTLSCluster: three members whose peer URLs are https with
// --peer-auto-tls only (each a self-signed certificate, as etcd's own
// test tooling starts them) form a cluster, replicate a write to every
// member, and take a killed and restarted member back. The same test
// passes against etcd 3.7.3.
func TestPeerAutoTLSCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	names := []string{"a", "b", "c"}
	var clients, peers, initial []string
	for _, n := range names {
		clients = append(clients, loopbackURL(t, "http"))
		peers = append(peers, loopbackURL(t, "https"))
		initial = append(initial, n+"="+peers[len(peers)-1])
	}
	args := func(i int) []string {
		return []string{"--name=" + names[i], "--data-dir=" + filepath.Join(dir, names[i]),
			"--listen-client-urls=" + clients[i], "--advertise-client-urls=" + clients[i],
			"--listen-peer-urls=" + peers[i], "--initial-advertise-peer-urls=" + peers[i],
			"--initial-cluster=" + strings.Join(initial, ","), "--peer-auto-tls"}
	}
	procs := make([]*proc, len(names))
	var wg sync.WaitGroup
	for i := range names {
		wg.Add(1)
		go func() { defer wg.Done(); procs[i] = startProcNoWait(t, dir, args(i)...) }()
	}
	wg.Wait()
	// Three processes starting at once on a loaded machine may take a
	// while: more than testContext's bound.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cli := newClient(t, clientv3.Config{Endpoints: clients})
	var rev int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := cli.Put(pctx, "auto", "peer-tls")
		cancel()
		if err == nil {
			rev = resp.Header.Revision
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write over peer auto-TLS in 30 s: %v\n%s", err, procs[0].logs())
		}
	}
	seen := func(what string) {
		t.Helper()
		for i, u := range clients {
			// A fresh client per attempt, each with its own timeout: a
			// member still starting on a loaded machine must not leave
			// one client in gRPC's growing reconnect backoff.
			get := func() (*clientv3.GetResponse, error) {
				mc := newClient(t, clientv3.Config{Endpoints: []string{u}})
				defer mc.Close()
				gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				return mc.Get(gctx, "auto", clientv3.WithSerializable())
			}
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				g, err := get()
				// At rev or later: a retried write that timed out may
				// have been committed too, and then again.
				if err == nil && len(g.Kvs) == 1 && g.Kvs[0].ModRevision >= rev {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: member %s never served the write at revision %d (%v, %v); its output:\n%s", what, names[i], rev, g, err, procs[i].logs())
				}
			}
		}
	}
	seen("after start")
	if ml, err := cli.MemberList(ctx); err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list: %v %v", ml, err)
	}
	// A killed member restarts with its self-signed certificate and its
	// peers take it back.
	_ = procs[2].cmd.Process.Kill()
	<-procs[2].done
	// If it was the leader, the two others elect one first: retry the
	// write through that election.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := cli.Put(pctx, "auto", "again")
		cancel()
		if err == nil {
			rev = resp.Header.Revision
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write after a member was killed: %v", err)
		}
	}
	procs[2] = startProcNoWait(t, dir, args(2)...)
	seen("after a restart")
}

// startProcNoWait is startProc for a member that cannot be ready alone:
// it returns once the process runs.
func startProcNoWait(t *testing.T, dir string, args ...string) *proc {
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(testcluster.Binary(t), args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p, p
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if err := p.cmd.Start(); err != nil {
		t.Error(err)
		close(p.done)
		return p
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}
