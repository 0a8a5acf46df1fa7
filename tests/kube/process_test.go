package kube

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one child process of the test (a Cairn or etcd member, or
// kube-apiserver), with its combined output in a log file.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
}

// startProc starts bin with args, its output appended to logPath. It dies
// with the test binary (Pdeathsig) and is stopped by PID when the test
// ends; if the test failed, the tail of its log is printed then.
func startProc(t *testing.T, name, logPath, bin string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	p := &proc{name: name, logPath: logPath, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- last lines of %s (%s):\n%s", name, logPath, p.logTail(60))
		}
	})
	return p
}

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the process and, if it has not exited after ten
// seconds, SIGKILL.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if !p.running() {
		return
	}
	p.cmd.Process.Kill()
	<-p.exited
}

// log is the whole log so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) logTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cleanEnv is the environment without ETCD_*, ETCDCTL_* and KUBECONFIG,
// so that neither the servers nor kubectl pick up the caller's settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "ETCDCTL_") || strings.HasPrefix(kv, "KUBECONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// freePort returns a port below 32768 (the machine's ephemeral range
// starts there) that is free now on 127.0.0.1 and on each of the other
// loopback addresses in also, and not yet handed out by this test binary.
// The start is random so that parallel runs rarely collide.
func freePort(t *testing.T, also ...string) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	hosts := append([]string{"127.0.0.1"}, also...)
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if ports[p] || !portFree(hosts, p) {
			continue
		}
		ports[p] = true
		return p
	}
	t.Fatalf("no free port in 20000-32000 on %v", hosts)
	return 0
}

// portFree reports whether port can be listened on at every one of hosts.
func portFree(hosts []string, port int) bool {
	for _, h := range hosts {
		l, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// kubeBinDir is where install.sh put kube-apiserver and kubectl:
// $KUBE_BIN_DIR, or the default cache directory.
func kubeBinDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KUBE_BIN_DIR")
	explicit := dir != ""
	if !explicit {
		cache := os.Getenv("CAIRN_CACHE_DIR")
		if cache == "" {
			base, err := os.UserCacheDir()
			if err != nil {
				t.Skipf("no cache dir for the kube binaries: %v", err)
			}
			cache = filepath.Join(base, "cairn")
		}
		dir = filepath.Join(cache, "kube-"+kubeVersion)
	}
	for _, b := range []string{"kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			if explicit {
				t.Fatalf("KUBE_BIN_DIR=%s: %v", dir, err)
			}
			t.Skipf("%s not installed in %s; run tests/kube/install.sh (or tests/kube/run.sh)", b, dir)
		}
	}
	return dir
}

// logDir is where the test's processes write their logs: a directory per
// test under $CAIRN_KUBE_LOG_DIR if that is set (to keep them, for
// example as CI artifacts), else a temporary one.
func logDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("CAIRN_KUBE_LOG_DIR")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
