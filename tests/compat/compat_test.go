package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Ports: the reference etcd and the candidate each take two (client and
// peer), searched upward from these unusual bases.
const (
	etcdPortBase      = 47379
	candidatePortBase = 48379
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

// candidateBinary returns the server to compare with etcd, chosen by
// CAIRN_COMPAT_CANDIDATE: unset or "cairn" builds ./cmd/cairn; "etcd"
// runs etcd against itself, to check the test; anything else is the path
// of a binary taking etcd's flags.
func candidateBinary(t *testing.T, root, etcd string) (name, bin string) {
	t.Helper()
	switch c := os.Getenv("CAIRN_COMPAT_CANDIDATE"); c {
	case "", "cairn":
		bin := filepath.Join(t.TempDir(), "cairn")
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/cairn")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/cairn: %v\n%s", err, out)
		}
		t.Logf("built cairn in %v", time.Since(start).Round(time.Millisecond))
		return "cairn", bin
	case "etcd":
		return "etcd", etcd
	default:
		return filepath.Base(c), c
	}
}

// TestEtcdctlCompat runs the same etcdctl script against a real etcd and
// a Cairn member and requires the same output, exit status included, after
// normalisation (see normalizer).
func TestEtcdctlCompat(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers; skipped in -short mode")
	}
	root := repoRoot(t)
	etcd := filepath.Join(root, "bin", "etcd")
	etcdctl := filepath.Join(root, "bin", "etcdctl")
	for _, b := range []string{etcd, etcdctl} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("%s is missing: run scripts/install-tools.sh to build etcd and etcdctl 3.7.3 (%v)", b, err)
		}
	}
	candName, candBin := candidateBinary(t, root, etcd)

	ref := startServer(t, "reference-etcd", etcd, etcdctl, freePorts(t, etcdPortBase, 2))
	cand := startServer(t, "candidate-"+candName, candBin, etcdctl, freePorts(t, candidatePortBase, 2))

	refOut := runScript(t, ref)
	candOut := runScript(t, cand)

	if dir := os.Getenv("CAIRN_COMPAT_OUT"); dir != "" {
		writeTranscript(t, filepath.Join(dir, "reference-etcd.txt"), refOut)
		writeTranscript(t, filepath.Join(dir, "candidate-"+candName+".txt"), candOut)
		for _, s := range []*server{ref, cand} {
			if b, err := os.ReadFile(s.logPath); err == nil {
				os.WriteFile(filepath.Join(dir, filepath.Base(s.logPath)), b, 0o644)
			}
		}
	}

	mismatches := 0
	for i := range script {
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
		t.Logf("%d of %d steps differ; last lines of the %s log:\n%s", mismatches, len(script), candName, cand.logTail(30))
	} else {
		t.Logf("all %d steps match", len(script))
	}
}

// runScript runs every step against s and returns each step's normalised
// transcript.
func runScript(t *testing.T, s *server) []string {
	t.Helper()
	n := &normalizer{clientURL: s.clientURL, peerURL: s.peerURL, memberID: s.memberID, clusterID: s.clusterID}
	vars := map[string]string{}
	out := make([]string, len(script))
	for i, st := range script {
		r := s.etcdctlRun(expand(st.args, vars), st.stdin, st.watch)
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
	fmt.Fprintf(&b, "$ etcdctl %s", quoteArgs(st.args))
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
