package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnkv/cairn/bench/internal/kubestat"
)

// The Kubernetes-shaped workload (-kube, or -only kube): kube-apiserver,
// at the version tests/kube builds, against three members of each target
// in turn, driven by bench/cmd/kubeload through client-go. It takes a
// minute or more per target, so it is not in the default set.
const (
	kubeName    = "kube workload"
	kubeVersion = "v1.37.1"
	// kubeToken is the static bearer token of the load program's user
	// (system:masters; authorization is AlwaysAllow anyway).
	kubeToken = "cairn-bench-kube-token"
	// kubeEventTTL is --event-ttl: kube-apiserver stores each Event with
	// a lease of this TTL (its default, named so the table can say it).
	kubeEventTTL = "1h"
)

// kubeSample is the workload run once against one target.
type kubeSample struct {
	res kubestat.Result
	// storeCPU is the user+system CPU of the three members from
	// kube-apiserver being ready until the load program exited;
	// storeRSS the largest member's VmHWM over the same span, and disk
	// the largest member's data directory after it.
	storeCPU float64
	storeRSS int64
	disk     int64
	// The same for kube-apiserver, and the load program's CPU.
	apiCPU  float64
	apiRSS  int64
	loadCPU float64
}

// kubeAPIServer is the kube-apiserver binary: -kube-bin's, or the one
// tests/kube/install.sh builds (once, several minutes) and caches.
func kubeAPIServer(ctx context.Context, o options, repo string) (string, error) {
	dir := o.kubeBin
	if dir == "" {
		cmd := exec.CommandContext(ctx, filepath.Join(repo, "tests", "kube", "install.sh"))
		cmd.Stderr = os.Stderr
		fmt.Fprintln(os.Stderr, "tests/kube/install.sh (kube-apiserver "+kubeVersion+"; cached after the first build)")
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("tests/kube/install.sh: %w", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		dir = lines[len(lines)-1]
	}
	bin := filepath.Join(dir, "kube-apiserver")
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", bin, err)
	}
	if got := strings.TrimSpace(string(out)); got != "Kubernetes "+kubeVersion {
		return "", fmt.Errorf("%s is %q, want Kubernetes %s", bin, got, kubeVersion)
	}
	return bin, nil
}

// runKubeRound runs the workload against each target in turn, the order
// alternating between rounds; only one target's processes are up at a
// time.
func runKubeRound(ctx context.Context, o options, bins binaries, targets []target, round int, dir string, results map[string][]kubeSample) error {
	order := slices.Clone(targets)
	if round%2 == 1 {
		slices.Reverse(order)
	}
	for _, t := range order {
		sub := filepath.Join(dir, t.name+"-kube")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		s, err := runKube(ctx, o, bins, t, sub)
		if err != nil {
			return fmt.Errorf("%s, %s, round %d: %w (logs in %s)", t.name, kubeName, round+1, err, sub)
		}
		fmt.Fprintf(os.Stderr, "round %d  %-8s %s: %.1fs, store CPU %.1fs, peak RSS %.0f MiB, disk %.0f MiB; kube-apiserver CPU %.1fs, peak RSS %.0f MiB; kubeload CPU %.1fs; %d failed\n",
			round+1, t.name, kubeName, s.res.Seconds, s.storeCPU, mib(s.storeRSS), mib(s.disk), s.apiCPU, mib(s.apiRSS), s.loadCPU, s.res.Errors)
		results[t.name] = append(results[t.name], s)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// runKube starts three fresh members of t and kube-apiserver on them,
// runs kubeload, and measures.
func runKube(ctx context.Context, o options, bins binaries, t target, dir string) (kubeSample, error) {
	var s kubeSample
	cl, err := start(ctx, t, 3, dir, o.snapshotCount, nil)
	if err != nil {
		return s, err
	}
	defer cl.stop()
	api, url, err := startKubeAPIServer(ctx, bins.kubeAPIServer, cl, dir)
	if err != nil {
		return s, err
	}
	defer api.stop()

	cl.resetPeakRSS()
	api.resetPeakRSS()
	storeCPU, apiCPU := cl.cpuSeconds(), api.cpuSeconds()
	out := filepath.Join(dir, "kubeload.json")
	logf, err := os.Create(filepath.Join(dir, "kubeload.log"))
	if err != nil {
		return s, err
	}
	defer logf.Close()
	cmd := pinnedContext(ctx, clientCPUs, bins.kubeload,
		"-server", url, "-token", kubeToken,
		"-scale", strconv.FormatFloat(o.scale, 'g', -1, 64),
		"-workers", strconv.Itoa(o.kubeWorkers),
		"-out", out)
	cmd.Stdout = logf
	cmd.Stderr = io.MultiWriter(logf, os.Stderr)
	if err := cmd.Run(); err != nil {
		return s, fmt.Errorf("kubeload: %w", err)
	}
	s.storeCPU = cl.cpuSeconds() - storeCPU
	s.apiCPU = api.cpuSeconds() - apiCPU
	s.storeRSS, s.apiRSS = cl.peakRSS(), api.peakRSS()
	s.disk = cl.diskUsage()
	s.loadCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	b, err := os.ReadFile(out)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s.res); err != nil {
		return s, fmt.Errorf("%s: %w", out, err)
	}
	return s, nil
}

// kubeAPIServerArgs is tests/kube's command line for kube-apiserver
// (apiServerArgs there): everything on loopback, a static token, no
// authorization, service-account keys of its own, and every member in
// --etcd-servers. The rest are its defaults: the watch cache on,
// protobuf storage, the compactor every 5 minutes, priority and fairness.
func kubeAPIServerArgs(dir string, port int, endpoints []string) []string {
	var urls []string
	for _, ep := range endpoints {
		urls = append(urls, "http://"+ep)
	}
	return []string{
		"--etcd-servers=" + strings.Join(urls, ","),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The endpoint reconciler refuses a loopback advertise address;
		// with one API server there is nothing to reconcile.
		"--endpoint-reconciler-type=none",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=AlwaysAllow",
		"--event-ttl=" + kubeEventTTL,
	}
}

// startKubeAPIServer writes kube-apiserver's keys and token file under
// dir/apiserver, starts it against cl and waits until /readyz answers 200.
// The returned cluster holds just its process (for CPU and RSS).
func startKubeAPIServer(ctx context.Context, bin string, cl *cluster, dir string) (*cluster, string, error) {
	adir := filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(adir, 0o700); err != nil {
		return nil, "", err
	}
	if err := writeServiceAccountKeys(adir); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(adir, "tokens.csv"), []byte(kubeToken+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, "", err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, "", err
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	api := &cluster{}
	// With -pin, kube-apiserver runs beside the load program: the servers
	// compared are the stores.
	cmd := pinned(clientCPUs, bin, kubeAPIServerArgs(adir, ports[0], cl.endpoints)...)
	if err := launch(api, cmd, filepath.Join(dir, "kube-apiserver.log")); err != nil {
		return nil, "", err
	}
	began := time.Now()
	if err := waitKubeReady(ctx, url, 3*time.Minute); err != nil {
		api.stop()
		return nil, "", fmt.Errorf("kube-apiserver: %w", err)
	}
	fmt.Fprintf(os.Stderr, "kube-apiserver ready in %s\n", time.Since(began).Round(100*time.Millisecond))
	return api, url, nil
}

// writeServiceAccountKeys writes an RSA key pair for signing service
// account tokens: sa.key (PKCS#1) and sa.pub (PKIX).
func writeServiceAccountKeys(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub)
}

// waitKubeReady polls /readyz until it answers 200.
func waitKubeReady(ctx context.Context, url string, limit time.Duration) error {
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		Timeout:   5 * time.Second,
	}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(limit)
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+kubeToken)
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d: %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready after %s; last /readyz: %s", limit, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
