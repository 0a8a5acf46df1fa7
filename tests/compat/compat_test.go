package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ports: the reference etcd and the candidate each take two (client and
// peer), searched upward from these unusual bases.
const (
	etcdPortBase          = 47379
	candidatePortBase     = 48379
	etcdTLSPortBase       = 47579
	candidateTLSPortBase  = 48579
	etcdAuthPortBase      = 47779
	candidateAuthPortBase = 48779
)

// repoRoot is the Cairn repository holding this module (tests/compat).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(b), "module github.com/cairnkv/cairn\n") {
		t.Fatalf("%s is not the Cairn repository root (go.mod: %v)", root, err)
	}
	return root
}

// buildDir holds the candidate binary built for this run, shared by the
// tests; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// built is the candidate binary, built once however many tests use it.
var built struct {
	once sync.Once
	bin  string
	err  error
}

// candidateBinary returns the server to compare with etcd, chosen by
// CAIRN_COMPAT_CANDIDATE: unset or "cairn" builds ./cmd/cairn; "etcd"
// runs etcd against itself, to check the test; anything else is the path
// of a binary taking etcd's flags.
func candidateBinary(t *testing.T, root, etcd string) (name, bin string) {
	t.Helper()
	switch c := os.Getenv("CAIRN_COMPAT_CANDIDATE"); c {
	case "", "cairn":
		built.once.Do(func() {
			bin := filepath.Join(buildDir, "cairn")
			start := time.Now()
			cmd := exec.Command("go", "build", "-o", bin, "./cmd/cairn")
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("go build ./cmd/cairn: %v\n%s", err, out)
				return
			}
			t.Logf("built cairn in %v", time.Since(start).Round(time.Millisecond))
			built.bin = bin
		})
		if built.err != nil {
			t.Fatal(built.err)
		}
		return "cairn", built.bin
	case "etcd":
		return "etcd", etcd
	default:
		return filepath.Base(c), c
	}
}

// binaries are the programs a comparison runs.
type binaries struct {
	etcd, etcdctl     string
	candName, candBin string
}

// findBinaries skips the test unless bin/etcd and bin/etcdctl exist, and
// returns them with the candidate.
func findBinaries(t *testing.T) binaries {
	t.Helper()
	if testing.Short() {
		t.Skip("starts two servers; skipped in -short mode")
	}
	root := repoRoot(t)
	b := binaries{etcd: filepath.Join(root, "bin", "etcd"), etcdctl: filepath.Join(root, "bin", "etcdctl")}
	for _, f := range []string{b.etcd, b.etcdctl} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s is missing: run scripts/install-tools.sh to build etcd and etcdctl 3.7.3 (%v)", f, err)
		}
	}
	b.candName, b.candBin = candidateBinary(t, root, b.etcd)
	return b
}

// TestEtcdctlCompat runs the same etcdctl script against a real etcd and
// a Cairn member and requires the same output, exit status included, after
// normalisation (see normalizer).
func TestEtcdctlCompat(t *testing.T) {
	b := findBinaries(t)
	ref := startServer(t, "reference-etcd", b.etcd, b.etcdctl, freePorts(t, etcdPortBase, 2), "")
	cand := startServer(t, "candidate-"+b.candName, b.candBin, b.etcdctl, freePorts(t, candidatePortBase, 2), "")
	compareScript(t, b.candName, script, ref, cand)
}

// TestEtcdctlCompatTLS is TestEtcdctlCompat over mutual TLS: both servers
// are started with the same certificates and flags (https client and peer
// URLs, client certificates required, a CRL), and tlsScript reads and
// writes with a good client certificate, by flags and by ETCDCTL_*
// variables, and is refused with bad ones.
func TestEtcdctlCompatTLS(t *testing.T) {
	b := findBinaries(t)
	pki := t.TempDir()
	if err := writePKI(pki); err != nil {
		t.Fatal(err)
	}
	ref := startServer(t, "reference-etcd-tls", b.etcd, b.etcdctl, freePorts(t, etcdTLSPortBase, 2), pki)
	cand := startServer(t, "candidate-"+b.candName+"-tls", b.candBin, b.etcdctl, freePorts(t, candidateTLSPortBase, 2), pki)
	compareScript(t, b.candName, tlsScript, ref, cand)
}

// TestEtcdctlCompatAuth is TestEtcdctlCompat for authentication and
// RBAC: on a second pair of plaintext servers, authScript adds users and
// roles, turns auth on, reads and writes as root and as limited users,
// and is refused for bad credentials and missing permissions.
func TestEtcdctlCompatAuth(t *testing.T) {
	b := findBinaries(t)
	ref := startServer(t, "reference-etcd-auth", b.etcd, b.etcdctl, freePorts(t, etcdAuthPortBase, 2), "")
	cand := startServer(t, "candidate-"+b.candName+"-auth", b.candBin, b.etcdctl, freePorts(t, candidateAuthPortBase, 2), "")
	compareScript(t, b.candName, authScript, ref, cand)
}

// compareScript runs steps against ref and then cand, and reports every
// step whose normalised transcripts differ.
func compareScript(t *testing.T, candName string, steps []step, ref, cand *server) {
	t.Helper()
	refOut := runScript(t, ref, steps)
	candOut := runScript(t, cand, steps)

	if dir := os.Getenv("CAIRN_COMPAT_OUT"); dir != "" {
		for _, r := range []struct {
			s   *server
			out []string
		}{{ref, refOut}, {cand, candOut}} {
			writeTranscript(t, filepath.Join(dir, r.s.name+".txt"), r.out)
			if b, err := os.ReadFile(r.s.logPath); err == nil {
				os.WriteFile(filepath.Join(dir, filepath.Base(r.s.logPath)), b, 0o644)
			}
		}
	}

	mismatches := 0
	for i := range steps {
		if refOut[i] == candOut[i] {
			continue
		}
		mismatches++
		note := ""
		if mismatches == 1 {
			note = " (the first difference: later ones may follow from it)"
		}
		t.Errorf("step %d differs%s (- etcd, + %s):\n%s", i+1, note, candName, truncateLines(lineDiff(refOut[i], candOut[i]), 60))
	}
	if mismatches > 0 {
		t.Logf("%d of %d steps differ; last lines of the %s log:\n%s", mismatches, len(steps), candName, cand.logTail(30))
	} else {
		t.Logf("all %d steps match", len(steps))
	}
}

// maxRefusalAttempts bounds how often a refused step is run while
// etcdctl loses the race to read the server's TLS alert (lostAlertRace).
// It loses about half the time here (seen: from a third to 0.7 of the
// attempts, more when the machine is busy); each attempt costs a second,
// so the bound costs time only when etcdctl keeps losing, and at 0.7 it
// still leaves one step in 1,000 to fail for the race alone.
const maxRefusalAttempts = 20

// runScript runs every step against s and returns each step's normalised
// transcript. Steps may use {{PKI}} (the server's certificate directory)
// and {{CLIENT_ADDR}} (its client host:port) besides captured lease IDs.
func runScript(t *testing.T, s *server, steps []step) []string {
	t.Helper()
	n := &normalizer{clientURL: s.clientURL, peerURL: s.peerURL, memberID: s.memberID, clusterID: s.clusterID}
	_, addr, _ := strings.Cut(s.clientURL, "://")
	vars := map[string]string{"PKI": s.tlsDir, "CLIENT_ADDR": addr}
	out := make([]string, len(steps))
	for i, st := range steps {
		c := call{
			args:     expand(st.args, vars),
			stdin:    st.stdin,
			env:      expand(st.env, vars),
			endpoint: expand([]string{st.endpoint}, vars)[0],
			stream:   st.watch,
		}
		r := s.etcdctlRun(c)
		if st.refusal && lostAlertRace(r.stderr) {
			attempt := 1
			for attempt < maxRefusalAttempts && lostAlertRace(r.stderr) {
				attempt++
				r = s.etcdctlRun(c)
			}
			if lostAlertRace(r.stderr) {
				t.Logf("%s: step %d: etcdctl lost the race to the server's refusal in all %d attempts; the step may differ for that alone",
					s.name, i+1, attempt)
			} else {
				t.Logf("%s: step %d: etcdctl read the server's refusal at attempt %d", s.name, i+1, attempt)
			}
		}
		if st.capture != "" {
			id, err := captured(r.stdout)
			if err != nil {
				t.Errorf("%s: step %d (etcdctl %s): %v; later steps using {{%s}} will fail",
					s.name, i+1, strings.Join(st.args, " "), err, st.capture)
			}
			vars[st.capture] = id
		}
		stdout := n.normalize(r.stdout)
		if st.sortLines {
			lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
			if len(lines) > 1 {
				slices.Sort(lines[1:]) // keep "found N leases" first
			}
			stdout = strings.Join(lines, "\n") + "\n"
		}
		out[i] = transcript(st, stdout, n.normalize(r.stderr), r.exit)
	}
	return out
}

// transcript renders one step for comparison and diffs.
func transcript(st step, stdout, stderr, exit string) string {
	var b strings.Builder
	b.WriteString("$ ")
	for _, kv := range st.env {
		b.WriteString(quoteArgs([]string{kv}) + " ")
	}
	b.WriteString("etcdctl ")
	if st.endpoint != "" {
		b.WriteString(quoteArgs([]string{"--endpoints=" + st.endpoint}) + " ")
	}
	b.WriteString(quoteArgs(st.args))
	if st.stdin != "" {
		fmt.Fprintf(&b, " <<< %q", abbreviate(st.stdin, 120))
	}
	if st.watch > 0 {
		fmt.Fprintf(&b, "  (stopped after %v)", st.watch)
	}
	b.WriteString("\n")
	for line := range strings.SplitSeq(strings.TrimSuffix(stdout, "\n"), "\n") {
		if stdout != "" {
			fmt.Fprintf(&b, "stdout| %s\n", line)
		}
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(stderr, "\n"), "\n") {
		if stderr != "" {
			fmt.Fprintf(&b, "stderr| %s\n", line)
		}
	}
	fmt.Fprintf(&b, "exit: %s\n", exit)
	return b.String()
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = fmt.Sprintf("%q", a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// truncateLines keeps the first n lines of s.
func truncateLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n+1 {
		return s
	}
	return strings.Join(lines[:n], "") + fmt.Sprintf("... (%d more lines)\n", len(lines)-n-1)
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func writeTranscript(t *testing.T, path string, steps []string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(steps, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
