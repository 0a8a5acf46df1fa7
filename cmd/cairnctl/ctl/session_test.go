//go:build linux

package ctl

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// Session tests: a scenario of testdata/compat (one shell command per
// line, $CTL standing for the client) runs twice, once with the official
// etcdctl 3.7.3 (bin/etcdctl) and once with cairnctl, each against a fresh
// single-member server on the same loopback ports (so that the cluster
// and member IDs agree), and the transcripts (stdout, stderr and exit code
// of every line, after masking what differs from run to run) must be
// equal.
//
// Which servers a scenario runs against is its own list below; the
// CAIRNCTL_SESSION_SERVERS variable (a comma-separated list of "etcd",
// "cairn" or paths of binaries taking etcd's flags) replaces every list,
// for example CAIRNCTL_SESSION_SERVERS=cairn to try the auth scenarios on
// Cairn. With CAIRNCTL_SESSION_OUT set to a directory, both transcripts of
// every run, and the log of every server, are written there. A scenario
// may ask for a second server ("#dest", for make-mirror) and be marked
// "#long" (run only with CAIRNCTL_SESSION_LONG=1); see readScenario.

// TestMain lets the session tests run this test binary as cairnctl: called
// through a link named cairnctl, it is cairnctl, so the client under test
// is the code under test (with the race detector when the test has it).
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == cliName {
		os.Exit(Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// authServers run the scenarios of the auth, user and role commands.
var authServers = []string{"etcd", "cairn"}

// coordServers run the lock and elect scenarios.
var coordServers = []string{"etcd", "cairn"}

// opsServers run the scenarios of the operator commands: make-mirror,
// check, downgrade, member add, endpoint hashkv.
var opsServers = []string{"etcd", "cairn"}

func TestSessionsMatchEtcdctl(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers; skipped in -short mode")
	}
	for _, sc := range []struct {
		name    string
		servers []string
	}{
		{"authcmd", authServers}, // auth enable/disable/status
		{"user", authServers},
		{"role", authServers},
		{"auth", authServers},    // --user, --password, ETCDCTL_USER with auth on
		{"authtls", authServers}, // the TLS flags with auth on, and a user by certificate
		{"lock", coordServers},
		{"elect", coordServers},
		{"ops", opsServers},   // member add, endpoint hashkv, watch with a command, downgrade
		{"check", opsServers}, // check perf's refusals, check datascale
		{"mirror", opsServers},
		{"mirrorsec", opsServers}, // make-mirror to a destination with TLS and auth
		{"checkperf", opsServers}, // minutes long: only with CAIRNCTL_SESSION_LONG=1
	} {
		path := filepath.Join("testdata", "compat", sc.name+".scen")
		servers := sessionServers(t, sc.servers)
		for i, srv := range servers {
			// A scenario with a second server ($DEST) runs with each
			// server in turn as the first and the next in the list as the
			// second, so that make-mirror goes from etcd into Cairn and
			// back.
			scen := readScenario(t, path)
			name, dest := sc.name+"/"+srv.name, (*server)(nil)
			if scen.dest {
				dest = &servers[(i+1)%len(servers)]
				name += "-" + dest.name
			}
			t.Run(name, func(t *testing.T) {
				if scen.long && os.Getenv("CAIRNCTL_SESSION_LONG") == "" {
					t.Skip("takes minutes; set CAIRNCTL_SESSION_LONG=1 to run it")
				}
				compareSession(t, srv, dest, path)
			})
		}
	}
}

// server is a server binary that takes etcd's flags.
type server struct {
	name, bin string
}

// sessionServers resolves a scenario's server names, or the ones
// CAIRNCTL_SESSION_SERVERS names instead.
func sessionServers(t *testing.T, names []string) []server {
	t.Helper()
	if env := os.Getenv("CAIRNCTL_SESSION_SERVERS"); env != "" {
		names = strings.Split(env, ",")
	}
	var out []server
	for _, n := range names {
		switch n {
		case "etcd":
			p := filepath.Join(repoRoot(t), "bin", "etcd")
			if _, err := os.Stat(p); err != nil {
				t.Skipf("no etcd 3.7.3 at %s: run scripts/install-tools.sh", p)
			}
			out = append(out, server{"etcd", p})
		case "cairn":
			out = append(out, server{"cairn", testcluster.Binary(t)})
		default:
			out = append(out, server{filepath.Base(n), n})
		}
	}
	return out
}

// repoRoot is the repository root, three levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// compareSession runs the scenario with both clients against srv (and
// dest as $DEST, if not nil) and fails on the first commands whose
// transcripts differ.
func compareSession(t *testing.T, srv server, dest *server, path string) {
	etcdctl := testcluster.Etcdctl(t)
	cairnctl := cairnctlLink(t)
	sc := readScenario(t, path)
	tg := &target{srv: srv, name: "n1", ports: freePorts(t, 2)}
	var certs string
	if sc.tls || sc.destTLS {
		certs = writeCerts(t)
	}
	if sc.tls {
		tg.tlsDir = certs
	}
	if dest != nil {
		tg.dest = &target{srv: *dest, name: "d1", ports: freePorts(t, 2)}
		if sc.destTLS {
			tg.dest.tlsDir = certs
		}
	}

	want := runSession(t, tg, sc, etcdctl, etcdctl)
	got := runSession(t, tg, sc, cairnctl, etcdctl)
	if dir := os.Getenv("CAIRNCTL_SESSION_OUT"); dir != "" {
		base := filepath.Join(dir, strings.TrimSuffix(filepath.Base(path), ".scen")+"."+srv.name)
		_ = os.WriteFile(base+".etcdctl", []byte(strings.Join(want, "")), 0o644)
		_ = os.WriteFile(base+".cairnctl", []byte(strings.Join(got, "")), 0o644)
	}
	differ := 0
	for i := range want {
		if got[i] == want[i] {
			continue
		}
		differ++
		if differ <= 5 {
			t.Errorf("%s: cairnctl differs from etcdctl\n--- etcdctl\n%s--- cairnctl\n%s", path, want[i], got[i])
		}
	}
	if differ > 5 {
		t.Errorf("%s: %d commands differ in all", path, differ)
	}
}

// cairnctlLink is a link named cairnctl to this test binary (see TestMain).
func cairnctlLink(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), cliName)
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// scenario is a parsed scenario file.
type scenario struct {
	lines []string
	// serverFlags are added to the server's by "#server-flags:" lines.
	serverFlags []string
	// tls, set by a "#tls" line, has the server serve clients over mutual
	// TLS (https), with the certificates of writeCerts in $TLS_DIR.
	tls bool
	// dest, set by a "#dest" line, starts a second single-member server
	// for each run, whose endpoint is $DEST; destTLS ("#dest-tls") has it
	// serve clients over mutual TLS, with the same certificates.
	dest, destTLS bool
	// long, set by a "#long" line, runs the scenario only when
	// CAIRNCTL_SESSION_LONG is set, with longLineTimeout for each line.
	long bool
}

// readScenario parses a scenario file: one command a line, blank lines
// and "#" lines but the ones above being comments.
func readScenario(t *testing.T, path string) scenario {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sc scenario
	for _, l := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(l, "#server-flags:"); ok {
			sc.serverFlags = append(sc.serverFlags, strings.Fields(f)...)
			continue
		}
		if strings.TrimSpace(l) == "#tls" {
			sc.tls = true
			continue
		}
		if strings.TrimSpace(l) == "#long" {
			sc.long = true
			continue
		}
		if strings.TrimSpace(l) == "#dest" {
			sc.dest = true
			continue
		}
		if strings.TrimSpace(l) == "#dest-tls" {
			sc.dest, sc.destTLS = true, true
			continue
		}
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		sc.lines = append(sc.lines, l)
	}
	return sc
}

// target is where a session runs: a server binary on fixed ports, the
// same for both clients.
type target struct {
	srv    server
	name   string // the member's name
	ports  []int  // client, peer
	tlsDir string // certificates when clients use TLS, else ""
	// dest is a second server, $DEST, for the scenarios that need one.
	dest *target
}

// endpoint is what clients are given to reach the server.
func (tg *target) endpoint() string {
	if tg.tlsDir != "" {
		return tg.clientURL()
	}
	return fmt.Sprintf("127.0.0.1:%d", tg.ports[0])
}

// clientURL is the URL the server serves clients on.
func (tg *target) clientURL() string {
	scheme := "http"
	if tg.tlsDir != "" {
		scheme = "https"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, tg.ports[0])
}

// freePorts finds n loopback ports nothing listens on.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// runSession starts a fresh server, runs every line with $CTL set to ctl
// ($REFCTL is always the official etcdctl, for steps that must not depend
// on the client under test), stops the server and returns one transcript
// block per line.
func runSession(t *testing.T, tg *target, sc scenario, ctl, refctl string) []string {
	t.Helper()
	stop := startServer(t, tg, sc.serverFlags)
	defer stop()
	tlsDir := tg.tlsDir
	var dest string
	if tg.dest != nil {
		stopDest := startServer(t, tg.dest, nil)
		defer stopDest()
		dest = tg.dest.endpoint()
		tlsDir = cmp.Or(tlsDir, tg.dest.tlsDir)
	}

	env := []string{"CTL=" + ctl, "REFCTL=" + refctl, "ETCDCTL_ENDPOINTS=" + tg.endpoint(), "TLS_DIR=" + tlsDir, "DEST=" + dest,
		// A race-enabled cairnctl would wait a second at every exit for
		// late reports; the races it finds are reported all the same.
		"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
	for _, kv := range os.Environ() {
		// The test's own ETCDCTL_* and ETCD_* variables would change what
		// the clients (and lock's children) do.
		if !strings.HasPrefix(kv, "ETCDCTL_") && !strings.HasPrefix(kv, "ETCD_") &&
			!strings.HasPrefix(kv, "TMPDIR=") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	var out []string
	for _, line := range sc.lines {
		// Each line has a $TMPDIR of its own, so that a line waiting for a
		// file to fill cannot see what an earlier line left there.
		work := t.TempDir()
		start := time.Now()
		timeout := lineTimeout
		if sc.long {
			timeout = longLineTimeout
		}
		stdout, stderr, rc := runLine(t, work, append(env, "TMPDIR="+work), line, timeout)
		if d := time.Since(start); d > 2*time.Second {
			t.Logf("slow line, %v: %.70s", d.Round(time.Millisecond), line)
		}
		out = append(out, fmt.Sprintf("### %s\n%s--- stderr\n%s--- rc=%d\n",
			line, maskOutput(stdout), maskStderr(stderr), rc))
	}
	return out
}

// lineTimeout bounds one scenario line; a line that runs longer is killed
// with everything it started.
const lineTimeout = time.Minute

// longLineTimeout bounds a line of a "#long" scenario, whose lines may
// take a minute of their own (check perf's).
const longLineTimeout = 3 * time.Minute

// runLine runs one line with bash in its own process group, and kills
// whatever the line left running in that group once bash has exited.
func runLine(t *testing.T, dir string, env []string, line string, timeout time.Duration) (stdout, stderr string, rc int) {
	t.Helper()
	outFile, errFile := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	o, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	e, err := os.Create(errFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", line)
	cmd.Dir = dir
	cmd.Env = env
	// Files rather than pipes: a background job that outlives bash would
	// otherwise hold the pipe, and Wait with it.
	cmd.Stdout, cmd.Stderr = o, e
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(timeout, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err = cmd.Wait()
	timer.Stop()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	o.Close()
	e.Close()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		rc = exit.ExitCode()
	default:
		t.Fatalf("%s: %v", line, err)
	}
	ob, _ := os.ReadFile(outFile)
	eb, _ := os.ReadFile(errFile)
	return string(ob), string(eb), rc
}

var (
	// Program names, in help and error texts.
	reProgram = regexp.MustCompile(`\b(etcdctl|cairnctl)\b`)
	// Lease IDs, random per server: 16 hex digits in lease commands, and
	// unpadded in lock and election keys.
	reLeaseID = regexp.MustCompile(`\b[0-9a-f]{12,16}\b`)
	// The raft term, which a busy machine can push up on a server by
	// elections that have nothing to do with the client.
	reRaftTerm = regexp.MustCompile(`("raft_term":|"RaftTerm" : )[0-9]+`)
	// Log lines (zap JSON): the time, and the source line of the call.
	reLogTime   = regexp.MustCompile(`"ts":"[^"]*"`)
	reLogCaller = regexp.MustCompile(`"caller":"[^"]*"`)
	reLogStack  = regexp.MustCompile(`"stacktrace":".*"`)
	// The client's warnings name its connection: a pointer in the target
	// and the local port.
	rePointer   = regexp.MustCompile(`0x[0-9a-f]{6,}`)
	reLocalAddr = regexp.MustCompile(`LocalAddr: '127\.0\.0\.1:[0-9]+'`)
	// The paths of the temporary link to cairnctl and of the etcdctl
	// binary, where a client names itself.
	reTmpPath = regexp.MustCompile(`/[^ "']*/(CTL)\b`)
	// The check commands' progress bar, whose counts and speed depend on
	// timing. Off a terminal etcdctl's bar library appends every redraw
	// to the last, with no newline even at the end; cairnctl prints the
	// final state once, on a line of its own.
	reProgress = regexp.MustCompile(`(\d+ / \d+ \[[-_>]*\] (\d+\.\d\d|\?)% (\?|\d+) p/s)+\n?`)
)

// maskOutput replaces what legitimately differs between two runs.
func maskOutput(s string) string {
	s = reProgram.ReplaceAllString(s, "CTL")
	s = reTmpPath.ReplaceAllString(s, "CTL")
	s = reRaftTerm.ReplaceAllString(s, "${1}T")
	return reLeaseID.ReplaceAllString(s, "<lease>")
}

// maskStderr is maskOutput, also for log lines, without two kinds of
// lines that come and go with timing: the complaints of the stty that
// etcdctl runs to hide a password typed on a terminal, when standard input
// is none, and the client's warning about a request that a signal
// cancelled, which shows only when the signal comes during a request.
func maskStderr(s string) string {
	s = reProgress.ReplaceAllString(s, "<progress>\n")
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, "stty: ") || strings.Contains(l, `"error":"rpc error: code = Canceled desc = context canceled"`) {
			continue
		}
		l = reLogTime.ReplaceAllString(l, `"ts":"T"`)
		l = reLogCaller.ReplaceAllString(l, `"caller":"C"`)
		l = reLogStack.ReplaceAllString(l, `"stacktrace":"S"`)
		l = rePointer.ReplaceAllString(l, "0xADDR")
		l = reLocalAddr.ReplaceAllString(l, "LocalAddr: L")
		keep = append(keep, l)
	}
	return maskOutput(strings.Join(keep, ""))
}

// startServer starts the target's server as a single member, with a fresh
// data directory, waits until it serves, and returns the function that
// stops it (also run at cleanup).
func startServer(t *testing.T, tg *target, flags []string) (stop func()) {
	t.Helper()
	srv := tg.srv
	client := tg.clientURL()
	peer := fmt.Sprintf("http://127.0.0.1:%d", tg.ports[1])
	args := append([]string{
		"--name", tg.name,
		"--data-dir", filepath.Join(t.TempDir(), "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", tg.name + "=" + peer,
		"--initial-cluster-token", "cairnctl-session",
	}, flags...)
	httpc := http.DefaultClient
	if tg.tlsDir != "" {
		args = append(args, tlsServerFlags(tg.tlsDir)...)
		httpc = tlsHTTPClient(t, tg.tlsDir)
	}
	cmd := exec.Command(srv.bin, args...)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", srv.bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Kill()
		<-done
		if dir := os.Getenv("CAIRNCTL_SESSION_OUT"); dir != "" {
			f, err := os.CreateTemp(dir, srv.name+"-*.log")
			if err == nil {
				_, _ = f.WriteString(logs.String())
				f.Close()
			}
		}
	}
	t.Cleanup(stop)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if serving(ctx, httpc, client) {
			return stop
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("%s exited before serving: %v\n%s", srv.bin, err, logs.String())
		case <-ctx.Done():
			t.Fatalf("%s does not serve on %s after 30s\n%s", srv.bin, client, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// serving reports whether the member at url answers /health as healthy.
func serving(ctx context.Context, httpc *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	if err != nil {
		return false
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(b.String(), `"health":"true"`)
}

// lockedBuffer is a bytes.Buffer that a process writes while the test may
// read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
