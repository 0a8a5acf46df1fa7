package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/testcluster"
	"github.com/cairnkv/cairn/internal/testpki"
)

// kubeadmPKI lays certificates out as kubeadm does under pki/etcd/.
type kubeadmPKI struct {
	dir string
	ca  *testpki.CA
	tls *testcluster.TLS
	// healthcheck and apiserver are the two client certificates kubeadm
	// makes (etcdctl probes, kube-apiserver).
	healthcheck, apiserver *testpki.Leaf
}

func newKubeadmPKI(t *testing.T) *kubeadmPKI {
	dir := filepath.Join(t.TempDir(), "pki", "etcd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewCA(t, dir, "etcd-ca")
	testpki.WriteBundle(t, filepath.Join(dir, "ca.crt"), ca)
	server := ca.Issue("server", "n1", testpki.Opts{})
	ca.Issue("peer", "n1", testpki.Opts{})
	p := &kubeadmPKI{dir: dir, ca: ca,
		healthcheck: ca.Issue("healthcheck-client", "kube-etcd-healthcheck-client", testpki.Opts{NoSANs: true}),
		apiserver:   ca.Issue("apiserver-etcd-client", "kube-apiserver-etcd-client", testpki.Opts{NoSANs: true}),
	}
	p.tls = &testcluster.TLS{CAFile: filepath.Join(dir, "ca.crt"), CertFile: server.CertFile, KeyFile: server.KeyFile,
		ClientCertFile: p.apiserver.CertFile, ClientKeyFile: p.apiserver.KeyFile}
	return p
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpsClient(t *testing.T, caFile string, cert *testpki.Leaf) *http.Client {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		c, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// TestTLSKubeadmCommandLine starts a member with the etcd command line of
// a kubeadm static-pod manifest (mutual TLS on client and peer URLs, the
// metrics URL in plaintext) and uses it as Kubernetes does.
func TestTLSKubeadmCommandLine(t *testing.T) {
	t.Parallel()
	p := newKubeadmPKI(t)
	metrics := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	m := testcluster.NewMember(t, testcluster.Config{TLS: p.tls, Flags: []string{
		"--listen-metrics-urls=" + metrics, "--snapshot-count=10000",
		"--feature-gates=InitialCorruptCheck=true", "--watch-progress-notify-interval=5s",
	}})
	if !strings.HasPrefix(m.ClientURL, "https://") {
		t.Fatalf("client URL %s", m.ClientURL)
	}
	ctx := testContext(t)

	// clientv3 over mutual TLS, as kube-apiserver connects.
	cli := m.Client(t)
	put(t, ctx, cli, "/registry/pods/a", "1")

	// The manifest's probes, on the plaintext metrics URL.
	for _, path := range []string{"/health?exclude=NOSPACE&serializable=true", "/livez", "/readyz"} {
		resp, err := http.Get(metrics + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		if strings.HasPrefix(path, "/health") && !strings.Contains(string(body), `"health":"true"`) {
			t.Fatalf("%s: %s", path, body)
		}
	}

	// The gateway over HTTPS with a client certificate, as curl
	// --cacert --cert --key does; its loopback to gRPC is TLS too.
	hc := httpsClient(t, p.tls.CAFile, p.healthcheck)
	resp, err := hc.Post(m.ClientURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"L3JlZ2lzdHJ5L3BvZHMvYQ=="}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rr struct {
		Kvs []struct{ Value string } `json:"kvs"`
	}
	if err := json.Unmarshal(body, &rr); err != nil || len(rr.Kvs) != 1 || rr.Kvs[0].Value != "MQ==" {
		t.Fatalf("gateway range: %d %s (%v)", resp.StatusCode, body, err)
	}
	// Without a client certificate the handshake is refused.
	if _, err := httpsClient(t, p.tls.CAFile, nil).Get(m.ClientURL + "/health"); err == nil {
		t.Fatal("HTTPS request without a client certificate was served")
	}

	// The official etcdctl, with flags and with ETCDCTL_* variables.
	etcdctl := testcluster.Etcdctl(t)
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, etcdctl, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(nil, "--endpoints="+m.ClientURL, "--cacert="+p.tls.CAFile,
		"--cert="+p.healthcheck.CertFile, "--key="+p.healthcheck.KeyFile, "get", "/registry/pods/a", "--print-value-only")
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("etcdctl get: %v\n%s", err, out)
	}
	out, err = run([]string{"ETCDCTL_ENDPOINTS=" + m.ClientURL, "ETCDCTL_CACERT=" + p.tls.CAFile,
		"ETCDCTL_CERT=" + p.healthcheck.CertFile, "ETCDCTL_KEY=" + p.healthcheck.KeyFile}, "endpoint", "health")
	if err != nil || !strings.Contains(out, "is healthy") {
		t.Fatalf("etcdctl endpoint health: %v\n%s", err, out)
	}
	// Plaintext to the TLS port fails, quickly.
	start := time.Now()
	out, err = run(nil, "--endpoints="+strings.Replace(m.ClientURL, "https://", "http://", 1), "--dial-timeout=3s", "--command-timeout=5s", "get", "x")
	if err == nil {
		t.Fatalf("plaintext etcdctl on the TLS port succeeded: %s", out)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("plaintext client took %v to fail", d)
	}
	// A certificate from another CA is refused.
	other := testpki.NewCA(t, t.TempDir(), "other").Issue("u", "u", testpki.Opts{})
	if out, err = run(nil, "--endpoints="+m.ClientURL, "--cacert="+p.tls.CAFile, "--cert="+other.CertFile,
		"--key="+other.KeyFile, "--dial-timeout=3s", "--command-timeout=5s", "get", "x"); err == nil {
		t.Fatalf("untrusted client certificate accepted: %s", out)
	}
}

// TestTLSRefusedClientCertificates: expired, CRL-revoked and untrusted
// client certificates are refused at the handshake; a revocation written
// while the member runs applies to the next connection.
func TestTLSRefusedClientCertificates(t *testing.T) {
	t.Parallel()
	p := newKubeadmPKI(t)
	crl := filepath.Join(p.dir, "crl.pem")
	p.ca.WriteCRL(crl)
	m := testcluster.NewMember(t, testcluster.Config{TLS: p.tls, Flags: []string{"--client-crl-file=" + crl}})
	ctx := testContext(t)
	dial := func(l *testpki.Leaf) error {
		tc, err := (&testcluster.TLS{CAFile: p.tls.CAFile, ClientCertFile: l.CertFile, ClientKeyFile: l.KeyFile}).ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, TLS: tc, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		defer cli.Close()
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = cli.Get(c, "k")
		return err
	}
	if err := dial(p.healthcheck); err != nil {
		t.Fatalf("valid certificate: %v", err)
	}
	expired := p.ca.Issue("expired", "x", testpki.Opts{NotAfter: time.Now().Add(-time.Hour)})
	if err := dial(expired); err == nil {
		t.Fatal("expired certificate accepted")
	}
	p.ca.WriteCRL(crl, p.healthcheck)
	if err := dial(p.healthcheck); err == nil {
		t.Fatal("revoked certificate accepted")
	}
	if !strings.Contains(m.Logs(), "rejected connection on client endpoint") {
		t.Fatal("the refused handshakes were not logged with etcd's words")
	}
	if !testcluster.Reference() && !strings.Contains(m.Logs(), "tls: reloaded from disk") {
		t.Fatal("the CRL reload was not logged")
	}
}

// TestTLSMissingCertFileNamesIt: a member whose certificate file does not
// exist stops at start-up with a message naming the file.
func TestTLSMissingCertFileNamesIt(t *testing.T) {
	t.Parallel()
	p := newKubeadmPKI(t)
	missing := filepath.Join(p.dir, "missing.crt")
	port := freePort(t)
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	cmd := exec.Command(testcluster.Binary(t), "--data-dir="+t.TempDir(), "--listen-client-urls="+url, "--advertise-client-urls="+url,
		"--listen-peer-urls=http://127.0.0.1:0", "--cert-file="+missing, "--key-file="+p.tls.KeyFile)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), missing) {
		t.Fatalf("got %v, output:\n%s\nwant a failure naming %s", err, out, missing)
	}
}

// TestTLSHTTPSWithoutCertificateIsRefused uses etcd's words.
func TestTLSHTTPSWithoutCertificateIsRefused(t *testing.T) {
	t.Parallel()
	url := fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	cmd := exec.Command(testcluster.Binary(t), "--data-dir="+t.TempDir(), "--listen-client-urls="+url, "--advertise-client-urls="+url,
		"--listen-peer-urls=http://127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	want := "TLS key/cert (--cert-file, --key-file) must be provided for client url " + url + " with HTTPS scheme"
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("got %v, output:\n%s\nwant %q", err, out, want)
	}
}
