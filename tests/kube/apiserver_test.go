package kube

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// kubeVersion is the Kubernetes release the binaries are built at; it must
// match the k8s.io/kubernetes requirement in go.mod (install.sh reads it
// from there).
const kubeVersion = "v1.37.1"

// adminToken is the static bearer token of the test's only user, a member
// of system:masters (authorization is AlwaysAllow anyway).
const adminToken = "cairn-kube-test-token"

// apiServer is a kube-apiserver process on loopback with a kubeconfig for
// kubectl.
type apiServer struct {
	url        string
	kubeconfig string
	kubectlBin string
	proc       *proc
}

// apiServerArgs are the kube-apiserver flags the test uses (and the README
// documents): everything on loopback, a static token, no authorization,
// and etcd as etcdFlags say (--etcd-servers and, over TLS, --etcd-cafile,
// --etcd-certfile and --etcd-keyfile). dir holds the keys, the token file
// and the self-signed serving certificate.
func apiServerArgs(dir string, port int, etcdFlags []string) []string {
	return append(slices.Clone(etcdFlags),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The endpoint reconciler refuses a loopback advertise address;
		// with one API server there is nothing to reconcile.
		"--endpoint-reconciler-type=none",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=AlwaysAllow",
		// Without a controller manager, nothing creates a namespace's
		// "default" service account; the test creates it itself, so the
		// ServiceAccount admission plugin stays on.
	)
}

// startAPIServer starts kube-apiserver against the cluster and waits until
// /readyz answers ok.
// extra are flags added to apiServerArgs.
func startAPIServer(t *testing.T, c *cluster, extra ...string) *apiServer {
	t.Helper()
	bin := kubeBinDir(t)
	dir := t.TempDir()
	writeServiceAccountKeys(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"),
		[]byte(adminToken+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	a := &apiServer{
		url:        fmt.Sprintf("https://127.0.0.1:%d", port),
		kubeconfig: filepath.Join(dir, "kubeconfig"),
		kubectlBin: filepath.Join(bin, "kubectl"),
	}
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: cairn
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: cairn
  context:
    cluster: cairn
    user: admin
current-context: cairn
`, a.url, adminToken)
	if err := os.WriteFile(a.kubeconfig, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	a.proc = startProc(t, "kube-apiserver", filepath.Join(logDir(t), "kube-apiserver.log"),
		filepath.Join(bin, "kube-apiserver"), append(apiServerArgs(dir, port, c.apiServerFlags()), extra...)...)
	start := time.Now()
	if err := a.waitReady(2 * time.Minute); err != nil {
		t.Fatalf("kube-apiserver did not become ready: %v", err)
	}
	t.Logf("kube-apiserver ready in %v", time.Since(start).Round(time.Millisecond))
	return a
}

// writeServiceAccountKeys writes an RSA key pair for signing service
// account tokens: sa.key (PKCS#1) and sa.pub (PKIX).
func writeServiceAccountKeys(t *testing.T, dir string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*pem.Block{
		"sa.key": {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)},
		"sa.pub": {Type: "PUBLIC KEY", Bytes: pub},
	}
	for name, block := range files {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// httpClient talks to every API server the test starts (their serving
// certificates are self-signed).
var httpClient = &http.Client{Transport: &http.Transport{
	TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
	MaxIdleConnsPerHost: 16,
}}

// get does an authenticated GET of path on the API server.
func (a *apiServer) get(ctx context.Context, path string) (int, string, error) {
	return a.do(ctx, http.MethodGet, path, "")
}

// do sends an authenticated request with a JSON body (if not empty) to
// the API server.
func (a *apiServer) do(ctx context.Context, method, path, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitReady polls /readyz until it answers 200.
func (a *apiServer) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if !a.proc.running() {
			return fmt.Errorf("process exited: %v", a.proc.cmd.ProcessState)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		code, body, err := a.get(ctx, "/readyz?verbose")
		cancel()
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d: %s", code, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("timed out; last /readyz: %s", last)
}

// kubectl runs kubectl with the test's kubeconfig and returns its stdout;
// the error includes stderr.
func (a *apiServer) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.kubectlBin, append([]string{"--kubeconfig=" + a.kubeconfig}, args...)...)
	cmd.Env = cleanEnv()
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// must runs kubectl and fails the test if it fails.
func (a *apiServer) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := a.kubectl(context.Background(), "", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apply pipes manifest into kubectl apply -f -.
func (a *apiServer) apply(t *testing.T, manifest string) string {
	t.Helper()
	out, err := a.kubectl(context.Background(), manifest, "apply", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// retry runs kubectl until it succeeds or timeout has passed, and returns
// the output of the successful run and how long it took. The commands
// given to it must be idempotent (apply, label --overwrite, get, ...),
// since a run that timed out may have taken effect.
func (a *apiServer) retry(t *testing.T, timeout time.Duration, stdin string, args ...string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	var last error
	for attempt := 0; time.Since(start) < timeout; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := a.kubectl(ctx, stdin, args...)
		cancel()
		if err == nil {
			return out, time.Since(start)
		}
		last = err
		t.Logf("attempt %d after %v: %v", attempt, time.Since(start).Round(time.Millisecond), err)
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("still failing after %v: %v", timeout, last)
	return "", 0
}

// stepper returns a function that runs one idempotent kubectl command
// with retries (see retry) and returns its output.
func (a *apiServer) stepper(t *testing.T) func(stdin string, args ...string) string {
	return func(stdin string, args ...string) string {
		t.Helper()
		out, _ := a.retry(t, opTimeout, stdin, args...)
		return out
	}
}
