package robustness

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cairnkv/cairn/internal/testcluster"
)

var durationFlag = flag.Duration("robustness.duration", 0,
	"how long each scenario loads the cluster (default 8s, or $CAIRN_ROBUSTNESS_DURATION)")

// Environment variables; see the package doc.
const (
	envDuration = "CAIRN_ROBUSTNESS_DURATION"
	envDir      = "CAIRN_ROBUSTNESS_DIR"
	envReplay   = "CAIRN_ROBUSTNESS_REPLAY"
)

const (
	defaultDuration = 8 * time.Second
	// clients is how many clients load the cluster at once.
	clients = 6
	// faultPause is how long the cluster runs undisturbed before each
	// fault, and the least load that must remain to start one.
	faultPause = 1500 * time.Millisecond
	// electionTimeout is the server's default --election-timeout; a
	// frozen leader stays frozen for a few of them.
	electionTimeout = time.Second
	// recoverTimeout bounds the end of a run: fences, watchers catching
	// up.
	recoverTimeout = 30 * time.Second
)

func loadDuration(t *testing.T) time.Duration {
	if *durationFlag > 0 {
		return *durationFlag
	}
	if v := os.Getenv(envDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", envDuration, v, err)
		}
		return d
	}
	return defaultDuration
}

// A fault disturbs the cluster once and puts it right again before it
// returns. It runs on the test's goroutine, as testcluster requires.
type fault func(t *testing.T, c *testcluster.Cluster)

func killLeader(t *testing.T, c *testcluster.Cluster) {
	m := c.Members[c.WaitLeader(t)]
	m.Kill()
	time.Sleep(electionTimeout)
	m.Start()
}

func killFollower(t *testing.T, c *testcluster.Cluster) {
	m := c.Members[(c.WaitLeader(t)+1)%len(c.Members)]
	m.Kill()
	time.Sleep(electionTimeout)
	m.Start()
}

func isolateLeader(t *testing.T, c *testcluster.Cluster) {
	old := c.WaitLeader(t)
	c.Isolate(old)
	c.WaitNewLeader(t, old)
	time.Sleep(500 * time.Millisecond) // writes through the new leader while the old one is cut off
	c.Heal()
}

func freezeLeader(t *testing.T, c *testcluster.Cluster) {
	m := c.Members[c.WaitLeader(t)]
	pid := m.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP member %s (pid %d): %v", m.Name, pid, err)
	}
	// Registered before the sleep, so a test that fails meanwhile does
	// not leave a stopped process behind for testcluster to kill.
	cont := sync.OnceFunc(func() {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Errorf("SIGCONT member %s (pid %d): %v", m.Name, pid, err)
		}
	})
	t.Cleanup(cont)
	time.Sleep(3 * electionTimeout)
	cont()
}

func TestKillLeader(t *testing.T) { runScenario(t, "kill-leader", killLeader) }
func TestKillFollower(t *testing.T) {
	runScenario(t, "kill-follower", killFollower)
}

func TestIsolateLeader(t *testing.T) {
	runScenario(t, "isolate-leader", isolateLeader)
}

func TestFreezeLeader(t *testing.T) { runScenario(t, "freeze-leader", freezeLeader) }

// runScenario loads a fresh cluster with the workload while it repeats
// inject, then recovers the cluster and checks everything the clients
// and watchers saw.
func runScenario(t *testing.T, name string, inject fault) {
	c := testcluster.New(t, testcluster.Config{Size: 3, Proxy: true})
	c.WaitLeader(t)
	ctx, cancel := context.WithTimeout(t.Context(), recoverTimeout)
	init, err := readState(ctx, newClient(t, c.Endpoints()))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	h := newHistory(init)

	watchCtx, stopWatch := context.WithCancel(t.Context())
	var watchWG sync.WaitGroup
	watchers := make([]*watcher, keyCount)
	for k := range watchers {
		w := newWatcher(k, init.Rev+1)
		watchers[k] = w
		cli := newClient(t, c.Endpoints())
		watchWG.Go(func() { w.run(watchCtx, cli) })
	}
	defer func() { stopWatch(); watchWG.Wait() }()

	loadCtx, stopLoad := context.WithCancel(t.Context())
	var loadWG sync.WaitGroup
	for id := range clients {
		kc := newKVClient(id, newClient(t, c.Endpoints()), h)
		loadWG.Go(func() { kc.run(loadCtx) })
	}
	defer func() { stopLoad(); loadWG.Wait() }()

	duration := loadDuration(t)
	deadline := time.Now().Add(duration)
	faults := 0
	for {
		time.Sleep(faultPause)
		if time.Until(deadline) < 2*faultPause {
			break
		}
		inject(t, c)
		faults++
		c.WaitLeader(t)
	}
	time.Sleep(time.Until(deadline))
	stopLoad()
	loadWG.Wait()

	// Recover: every member up, a leader, then one fence write to every
	// key, so each watcher has an event to reach and the final read is
	// the last word on each key.
	c.Heal()
	for _, m := range c.Members {
		if !m.Running() {
			m.Start()
		}
	}
	c.WaitLeader(t)
	ctx, cancel = context.WithTimeout(t.Context(), recoverTimeout)
	defer cancel()
	fencer := newKVClient(clients, newClient(t, c.Endpoints()), h)
	for k := range keyCount {
		for fencer.do(ctx, kvInput{Kind: opPut, Key: k, Value: fmt.Sprintf("fence-%d", k)}).Unknown {
			if ctx.Err() != nil {
				t.Fatalf("fence write to k%d: no answer within %v", k, recoverTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	final, err := readState(ctx, fencer.cli)
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range watchers {
		want := final.Keys[k].ModRev
		if want == 0 {
			want = final.Rev // the key is gone: its watcher can do no better than all
		}
		if err := w.waitFor(ctx, want); err != nil {
			t.Error(err) // checked below all the same, to say what is missing
		}
	}
	c.WaitConverged(t)
	stopWatch()
	watchWG.Wait()

	recs := h.Records()
	var violations []string
	violations = append(violations, checkClientRevisions(recs)...)
	logs := make([]watchLog, len(watchers))
	for k, w := range watchers {
		logs[k] = w.log()
		violations = append(violations, checkWatchStream(logs[k])...)
	}
	violations = append(violations, checkWatchHistory(init, final, logs, recs)...)

	outDir := os.Getenv(envDir)
	if outDir != "" {
		outDir = filepath.Join(outDir, name+"-"+time.Now().Format("20060102-150405"))
	} else {
		outDir = filepath.Join(os.TempDir(), fmt.Sprintf("cairn-robustness-%s-%d", name, time.Now().UnixNano()))
	}
	began := time.Now()
	lin, err := checkLinearizable(init, recs, outDir)
	if err != nil {
		t.Error(err)
	}
	checked := time.Since(began)
	switch lin.Result {
	case porcupine.Ok:
	case porcupine.Illegal:
		violations = append(violations, fmt.Sprintf("history is not linearizable: see %s/history.html; replay with %s=%s/history.json go test -run TestReplay -v ./tests/robustness/",
			lin.Dir, envReplay, lin.Dir))
	default:
		t.Errorf("porcupine gave up after %v (%s); the history is in %s", checkTimeout, lin.Result, lin.Dir)
	}

	// The checker must also fail when it should: the same history with
	// two acknowledged writes' answers swapped cannot be linearized.
	if bad, ok := swapWriteRevisions(recs); ok {
		if res, _ := checkLinearizable(init, bad, ""); res.Result != porcupine.Illegal {
			t.Errorf("porcupine accepts the history with two writes' revisions swapped (%s)", res.Result)
		}
	}

	unknown := 0
	for _, r := range recs {
		if r.Output.Unknown {
			unknown++
		}
	}
	t.Logf("scenario %s: %v of load, %d faults, %d requests (%d unknown), revisions %d..%d, linearizability %s in %v, %d violations",
		name, duration, faults, len(recs), unknown, init.Rev+1, final.Rev, lin.Result, checked.Round(time.Millisecond), len(violations))
	for _, v := range violations {
		t.Error(v)
	}
}

// swapWriteRevisions returns recs with the revisions of two
// acknowledged puts swapped, where the first finished before the second
// began, so that the later write claims the earlier revision: a
// history no linearization explains, whatever the unknown requests did.
func swapWriteRevisions(recs []record) ([]record, bool) {
	for i, a := range recs {
		if a.Input.Kind != opPut || a.Output.Unknown {
			continue
		}
		for j, b := range recs {
			if b.Input.Kind == opPut && !b.Output.Unknown && a.Return < b.Call && a.Output.Rev < b.Output.Rev {
				bad := append([]record(nil), recs...)
				bad[i].Output.Rev, bad[j].Output.Rev = b.Output.Rev, a.Output.Rev
				return bad, true
			}
		}
	}
	return nil, false
}

// TestReplay checks a history saved by a failed run again, and writes
// its visualization beside it.
func TestReplay(t *testing.T) {
	path := os.Getenv(envReplay)
	if path == "" {
		t.Skipf("set %s to a history.json to replay", envReplay)
	}
	saved, err := loadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(path), "replay")
	lin, err := checkLinearizable(saved.Init, saved.Records, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests: %s", len(saved.Records), lin.Result)
	if lin.Result != porcupine.Ok {
		t.Errorf("not linearizable (%s): see %s/history.html", lin.Result, lin.Dir)
	}
}
