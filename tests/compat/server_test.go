package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// server is one member under test, run as a process on loopback.
type server struct {
	name      string // "reference-etcd" or "candidate-<name>", for messages and the log file
	clientURL string
	peerURL   string
	logPath   string
	etcdctl   string
	// tlsDir, when set, holds the PKI (pki_test.go) the server was started
	// with: its URLs are https and clients need a certificate.
	tlsDir string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited

	memberID, clusterID uint64
}

// cleanEnv is the environment without ETCD_* and ETCDCTL_* variables, so
// that neither the servers nor etcdctl pick up settings from the caller.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") && !strings.HasPrefix(kv, "ETCDCTL_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePorts returns n consecutive free loopback ports, starting the search
// at base (unusual high ports, away from etcd's 2379/2380).
func freePorts(t *testing.T, base, n int) int {
	t.Helper()
	for p := base; p < base+1000; p += n {
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatalf("no %d free consecutive loopback ports from %d", n, base)
	return 0
}

// startServer starts bin as a single-member cluster with a fresh data
// directory, with the same etcd flags whichever binary it is, and waits
// until etcdctl can read its status. With tlsDir (a directory written by
// writePKI) both URLs are https and the server requires client
// certificates, as kubeadm configures etcd. The process is stopped by PID
// when the test ends.
func startServer(t *testing.T, name, bin, etcdctl string, port int, tlsDir string) *server {
	t.Helper()
	dir := t.TempDir()
	scheme := "http"
	if tlsDir != "" {
		scheme = "https"
	}
	s := &server{
		name:      name,
		clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, port),
		peerURL:   fmt.Sprintf("%s://127.0.0.1:%d", scheme, port+1),
		logPath:   filepath.Join(dir, name+".log"),
		etcdctl:   etcdctl,
		tlsDir:    tlsDir,
		exited:    make(chan struct{}),
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--name=compat",
		"--data-dir=" + filepath.Join(dir, "data"),
		"--listen-client-urls=" + s.clientURL,
		"--advertise-client-urls=" + s.clientURL,
		"--listen-peer-urls=" + s.peerURL,
		"--initial-advertise-peer-urls=" + s.peerURL,
		"--initial-cluster=compat=" + s.peerURL,
		"--initial-cluster-token=compat",
		"--initial-cluster-state=new",
	}
	if tlsDir != "" {
		pki := func(f string) string { return filepath.Join(tlsDir, f) }
		args = append(args,
			"--cert-file="+pki(pkiServerCert),
			"--key-file="+pki(pkiServerKey),
			"--client-cert-auth",
			"--trusted-ca-file="+pki(pkiCA),
			"--client-crl-file="+pki(pkiCRL),
			"--peer-cert-file="+pki(pkiServerCert),
			"--peer-key-file="+pki(pkiServerKey),
			"--peer-trusted-ca-file="+pki(pkiCA),
			"--peer-client-cert-auth",
		)
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		s.cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	t.Cleanup(s.stop)

	if err := s.waitReady(30 * time.Second); err != nil {
		t.Fatalf("%s did not become ready: %v\n--- last lines of %s:\n%s", name, err, s.logPath, s.logTail(40))
	}
	return s
}

// stop sends SIGTERM to the server's PID and, if it has not exited after
// ten seconds, SIGKILL.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// waitReady polls "etcdctl endpoint status" until it answers, and learns
// the member and cluster IDs from it.
func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("process exited: %v", s.cmd.ProcessState)
		default:
		}
		c := call{args: []string{"endpoint", "status", "-w", "json"}}
		if s.tlsDir != "" {
			c.args = append(expand(tlsGoodClient, map[string]string{"PKI": s.tlsDir}), c.args...)
		}
		r := s.etcdctlRun(c)
		if r.exit == "0" {
			var st []struct {
				Status struct {
					Header struct {
						ClusterID uint64 `json:"cluster_id"`
						MemberID  uint64 `json:"member_id"`
					} `json:"header"`
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st) != 1 {
				return fmt.Errorf("endpoint status -w json: %v: %q", err, r.stdout)
			}
			s.memberID, s.clusterID = st[0].Status.Header.MemberID, st[0].Status.Header.ClusterID
			return nil
		}
		last = r.stderr
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("timed out; last etcdctl error: %s", last)
}

func (s *server) logTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// result is what one etcdctl run printed, and how it ended.
type result struct {
	stdout, stderr string
	// exit is the exit status, or "killed after <timeout>" for a
	// streaming command stopped by the test.
	exit string
}

// call is one etcdctl invocation.
type call struct {
	args  []string
	stdin string
	// endpoint replaces the server's client URL in --endpoints.
	endpoint string
	// env is added to etcdctl's (otherwise ETCD*-free) environment.
	env []string
	// stream, when set, makes the command a stream (watch) that is killed
	// after that long; its output so far is the result.
	stream time.Duration
}

// etcdctlRun runs etcdctl against the server. Later --dial-timeout and
// --command-timeout flags in c.args override the defaults given here.
func (s *server) etcdctlRun(c call) result {
	ctx := context.Background()
	timeout := c.stream
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	endpoint := s.clientURL
	if c.endpoint != "" {
		endpoint = c.endpoint
	}
	full := append([]string{"--endpoints=" + endpoint, "--dial-timeout=2s", "--command-timeout=5s"}, c.args...)
	cmd := exec.CommandContext(ctx, s.etcdctl, full...)
	cmd.Env = append(cleanEnv(), c.env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader(c.stdin)
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), exit: "0"}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case timeout > 0 && ctx.Err() != nil:
		r.exit = "killed after " + timeout.String()
	case errors.As(err, &ee):
		r.exit = fmt.Sprint(ee.ExitCode())
	default:
		r.exit = "error: " + err.Error()
	}
	return r
}
