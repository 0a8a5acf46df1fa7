package compat

import (
	"bufio"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	etcdLockPortBase      = 47979
	candidateLockPortBase = 48979
)

// TestEtcdctlLockAndElectSessions runs the same concurrent etcdctl lock
// and elect session against a real etcd and a Cairn member and requires
// the same lockTranscript: two lockers contending (the second waits for the
// first's command to end), a holder killed with SIGKILL (the next locker
// gets the lock once the session's lease expires), two candidates and a
// listener (the second candidate leads once the first is interrupted, and
// the listener sees both). Lease IDs in keys are normalised.
func TestEtcdctlLockAndElectSessions(t *testing.T) {
	b := findBinaries(t)
	ref := startServer(t, "reference-etcd-lock", b.etcd, b.etcdctl, freePorts(t, etcdLockPortBase, 2), "")
	cand := startServer(t, "candidate-"+b.candName+"-lock", b.candBin, b.etcdctl, freePorts(t, candidateLockPortBase, 2), "")
	want := lockSession(t, ref)
	got := lockSession(t, cand)
	if w, g := strings.Join(want, "\n"), strings.Join(got, "\n"); w != g {
		t.Fatalf("lock/elect session differs (- etcd, + %s):\n%s", b.candName, lineDiff(w, g))
	}
	t.Logf("lockTranscript:\n%s", strings.Join(want, "\n"))
}

var leaseInKey = regexp.MustCompile(`^([A-Za-z]+)/[0-9a-f]{1,16}$`)

// lockTranscript collects the lines of several etcdctl processes, each
// process's in the order printed (the processes run concurrently, so only
// each one's own order is compared), and the order of all of them, for
// the orders the session guarantees (a second locker after the first).
type lockTranscript struct {
	mu    sync.Mutex
	order []string            // "who: line", as printed
	byWho map[string][]string // each process's lines
	whos  []string            // in the order they started
}

func (tr *lockTranscript) add(who, line string) {
	if m := leaseInKey.FindStringSubmatch(line); m != nil {
		line = m[1] + "/<lease>"
	}
	if line == "" || strings.HasPrefix(line, `{"level":`) {
		// etcdctl's blank separator lines race with a kill, and its
		// client's log lines (a Range cancelled by the interrupt, say)
		// with the interrupt.
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.byWho == nil {
		tr.byWho = map[string][]string{}
	}
	if _, ok := tr.byWho[who]; !ok {
		tr.whos = append(tr.whos, who)
	}
	tr.byWho[who] = append(tr.byWho[who], line)
	tr.order = append(tr.order, who+": "+line)
}

// before reports whether line a was printed before line b.
func (tr *lockTranscript) before(a, b string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ia, ib := -1, -1
	for i, l := range tr.order {
		if l == a && ia < 0 {
			ia = i
		}
		if l == b && ib < 0 {
			ib = i
		}
	}
	return ia >= 0 && ib > ia
}

// lines is each process's lines, process by process.
func (tr *lockTranscript) lines() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, who := range tr.whos {
		for _, l := range tr.byWho[who] {
			out = append(out, who+": "+l)
		}
	}
	return out
}

// proc is a running etcdctl whose stdout lines go to a lockTranscript.
type lockProc struct {
	cmd   *exec.Cmd
	done  chan struct{}
	first chan struct{} // closed at the first line
}

func (s *server) start(t *testing.T, tr *lockTranscript, who string, args ...string) *lockProc {
	t.Helper()
	cmd := exec.Command(s.etcdctl, append([]string{"--endpoints=" + s.clientURL, "--dial-timeout=2s"}, args...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &lockProc{cmd: cmd, done: make(chan struct{}), first: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			tr.add(who, sc.Text())
			once.Do(func() { close(p.first) })
		}
		_ = cmd.Wait()
		tr.add(who, "exit "+fmt.Sprint(cmd.ProcessState.ExitCode()))
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *lockProc) wait(t *testing.T, what string, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not end within %v", what, d)
	}
}

func (p *lockProc) waitFirst(t *testing.T, what string) {
	t.Helper()
	select {
	case <-p.first:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s printed nothing within 10 s", what)
	}
}

func lockSession(t *testing.T, s *server) []string {
	t.Helper()
	tr := &lockTranscript{}
	// Contention: b waits until a's command has ended.
	a := s.start(t, tr, "a", "lock", "L", "--", "sh", "-c", "echo a holds; sleep 1.5; echo a done")
	a.waitFirst(t, "the first locker")
	bb := s.start(t, tr, "b", "lock", "L", "--", "sh", "-c", "echo b holds")
	a.wait(t, "the first locker", 15*time.Second)
	bb.wait(t, "the second locker", 15*time.Second)

	// A holder killed: its session's lease (2 s) expires, then the next
	// locker gets the lock.
	k := s.start(t, tr, "k", "lock", "--ttl=2", "K")
	k.waitFirst(t, "the holder")
	_ = k.cmd.Process.Signal(syscall.SIGKILL)
	k.wait(t, "the killed holder", 5*time.Second)
	tr.mu.Lock()
	tr.byWho["k"] = tr.byWho["k"][:len(tr.byWho["k"])-1] // its exit status is the kill's
	tr.mu.Unlock()
	n := s.start(t, tr, "n", "lock", "K", "--", "sh", "-c", "echo n holds")
	n.wait(t, "the next locker", 20*time.Second)

	// Elections: alice leads, the listener sees her; bob waits; alice is
	// interrupted and resigns; bob leads and the listener sees him.
	alice := s.start(t, tr, "alice", "elect", "E", "alice")
	alice.waitFirst(t, "alice")
	time.Sleep(300 * time.Millisecond)
	l := s.start(t, tr, "listener", "elect", "-l", "E")
	l.waitFirst(t, "the listener")
	time.Sleep(300 * time.Millisecond)
	bob := s.start(t, tr, "bob", "elect", "E", "bob")
	time.Sleep(500 * time.Millisecond)
	_ = alice.cmd.Process.Signal(syscall.SIGINT)
	alice.wait(t, "alice", 10*time.Second)
	bob.waitFirst(t, "bob")
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr.mu.Lock()
		seen := len(tr.byWho["listener"])
		tr.mu.Unlock()
		if seen >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = bob.cmd.Process.Signal(syscall.SIGINT)
	bob.wait(t, "bob", 10*time.Second)
	_ = l.cmd.Process.Signal(syscall.SIGINT)
	l.wait(t, "the listener", 10*time.Second)
	for _, o := range [][2]string{{"a: a done", "b: b holds"}, {"listener: alice", "listener: bob"}} {
		if !tr.before(o[0], o[1]) {
			t.Errorf("%s: %q was not printed before %q:\n%s", s.name, o[0], o[1], strings.Join(tr.order, "\n"))
		}
	}
	return tr.lines()
}
