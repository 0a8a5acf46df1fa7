package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// envServerBinary names a server binary to run instead of building Cairn;
// point it at etcd (bin/etcd of the repository) to see which failures are
// etcd's own.
const envServerBinary = "CAIRN_K8S_SERVER_BINARY"

// fastProgressNotify is the --watch-progress-notify-interval Kubernetes'
// own tests give the embedded etcd of the two tests that wait for progress
// notifications (clusterConfig.WatchProgressNotifyInterval = time.Second
// in k8s.io/apiserver/pkg/storage/etcd3/watcher_test.go). The others run
// with the server's default (10m), as upstream's do.
const fastProgressNotify = "1s"

// serverBinary is the binary every server of this test binary runs, set by
// TestMain.
var serverBinary string

// workDir holds the servers' data directories and logs; TestMain removes it.
var workDir string

// spares hands out servers started ahead of time (see serverPool).
var spares *serverPool

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cairn-k8s-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	workDir = dir
	defer os.RemoveAll(dir)

	if p := os.Getenv(envServerBinary); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s=%q: %v\n", envServerBinary, p, err)
			return 1
		}
		serverBinary = abs
	} else {
		bin, err := buildCairn(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		serverBinary = bin
	}
	spares = newServerPool()
	defer spares.close()
	return m.Run()
}

// buildCairn compiles ./cmd/cairn of the main module, two directories up
// from this package (go test runs tests in the package's directory).
func buildCairn(dir string) (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "cairn")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/cairn")
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/cairn in %s: %w\n%s", root, err, buf.String())
	}
	return out, nil
}

// server is one single-member server process on loopback.
type server struct {
	cmd      *exec.Cmd
	endpoint string // host:port of the client URL
	dataDir  string
	logPath  string
	exited   chan struct{} // closed when the process has been reaped
	waitErr  error         // valid after exited is closed
	stopOnce sync.Once
}

// startServer starts a server with a fresh data directory and waits until
// it serves a linearizable read. Ports are picked below 32768 (outside
// Linux's ephemeral range); if another process takes one first, it tries
// again with new ones.
// progressNotify, if not empty, is the --watch-progress-notify-interval.
func startServer(progressNotify string) (*server, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := tryStartServer(progressNotify)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func tryStartServer(progressNotify string) (*server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(workDir, "member-")
	if err != nil {
		return nil, err
	}
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}
	s := &server{
		endpoint: clientURL.Host,
		dataDir:  filepath.Join(dir, "data"),
		logPath:  filepath.Join(dir, "server.log"),
		exited:   make(chan struct{}),
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	args := []string{
		"--name", "default",
		"--data-dir", s.dataDir,
		"--listen-client-urls", clientURL.String(),
		"--advertise-client-urls", clientURL.String(),
		"--listen-peer-urls", peerURL.String(),
		"--initial-advertise-peer-urls", peerURL.String(),
		"--initial-cluster", "default=" + peerURL.String(),
		// As k8s.io/apiserver/pkg/storage/etcd3/testserver.NewTestConfig;
		// Cairn accepts the flag and ignores it.
		"--unsafe-no-fsync",
		"--log-level", "warn",
	}
	if progressNotify != "" {
		args = append(args, "--watch-progress-notify-interval="+progressNotify)
	}
	s.cmd = exec.Command(serverBinary, args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = childProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", serverBinary, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s on %s: %w\n%s", filepath.Base(serverBinary), s.endpoint, err, s.logTail(20))
	}
	return s, nil
}

// waitReady waits until the client port accepts connections, then until
// a linearizable Get succeeds (the member has elected itself).
func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", s.endpoint, 100*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before it was ready: %v", s.waitErr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("client port not open after %v: %w", timeout, err)
		}
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.endpoint},
		DialTimeout: timeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		_, err := c.Get(ctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before it was ready: %v", s.waitErr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
	}
}

// stop ends the process (SIGTERM, then SIGKILL after 10s) and removes its
// data directory.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		_ = os.RemoveAll(s.dataDir)
	})
}

// logTail returns the last n lines the server wrote.
func (s *server) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct loopback ports in [10000, 32000) that were
// free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free loopback port below 32000")
		}
		p := 10000 + rand.IntN(22000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, p)
	}
	return ports, nil
}

// spareServers is how many servers serverPool keeps starting ahead of
// the tests. A server spends most of its start-up waiting for its first
// election, so starting a few at once costs little CPU and hides most of
// that wait; most tests take less time than a start-up.
const spareServers = 3

// serverPool keeps servers started ahead of the tests that will use them:
// each test gets a fresh server, as Kubernetes' own tests get a fresh
// embedded etcd, and the start-up overlaps with earlier tests instead of
// adding to them.
type serverPool struct {
	mu     sync.Mutex
	queue  []chan startResult // oldest first
	closed bool
}

type startResult struct {
	s   *server
	err error
}

func newServerPool() *serverPool {
	p := &serverPool{}
	for range spareServers {
		p.startOne()
	}
	return p
}

// startOne starts one more spare in the background; called with p.mu
// held or before p is shared.
func (p *serverPool) startOne() {
	ch := make(chan startResult, 1)
	p.queue = append(p.queue, ch)
	go func() {
		s, err := startServer("")
		ch <- startResult{s, err}
	}()
}

// get returns a running server that no one else uses.
func (p *serverPool) get() (*server, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("server pool closed")
	}
	ch := p.queue[0]
	p.queue = p.queue[1:]
	p.startOne()
	p.mu.Unlock()
	r := <-ch
	return r.s, r.err
}

// close stops the spares.
func (p *serverPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, ch := range p.queue {
		if r := <-ch; r.s != nil {
			r.s.stop()
		}
	}
	p.queue = nil
}

// runServer returns a fresh server for t, stopped when t ends. If t failed,
// the end of the server's log goes to the test log. progressNotify, if not
// empty, is the server's --watch-progress-notify-interval; such servers
// are started on demand, the others come from the spares.
func runServer(t testing.TB, progressNotify string) *server {
	t.Helper()
	var s *server
	var err error
	if progressNotify == "" {
		s, err = spares.get()
	} else {
		s, err = startServer(progressNotify)
	}
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the %s log (%s):\n%s", filepath.Base(serverBinary), s.endpoint, s.logTail(30))
		}
		s.stop()
	})
	return s
}
