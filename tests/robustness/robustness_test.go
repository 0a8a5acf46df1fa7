package robustness

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

var durationFlag = flag.Duration("robustness.duration", 0,
	"how long each scenario loads the cluster (default 12s, or $CAIRN_ROBUSTNESS_DURATION)")

// Environment variables; see the package doc.
const (
	envDuration = "CAIRN_ROBUSTNESS_DURATION"
	envDir      = "CAIRN_ROBUSTNESS_DIR"
	envReplay   = "CAIRN_ROBUSTNESS_REPLAY"
)

const (
	defaultDuration = 12 * time.Second
	// kvClients is how many clients of the model's keys load the
	// cluster at once: one pinned to each of the first three members,
	// the others of every member.
	kvClients = 6
	pinned    = 3
	// The lease, lock and election clients run beside them: Mutex and
	// Lock RPC clients contend for one lock, campaigners for one
	// election, which one observer follows.
	leaseClients   = 3
	lockClients    = 2
	lockRPCClients = 2
	campaigners    = 3
	// faultPause is how long the cluster runs undisturbed before each
	// fault, and the least load that must remain to start one.
	faultPause = 1500 * time.Millisecond
	// electionTimeout is the server's default --election-timeout; a
	// frozen leader stays frozen for a few of them.
	electionTimeout = time.Second
	// recoverTimeout bounds each step of the end of a run: fences,
	// leases running out, watchers catching up.
	recoverTimeout = 30 * time.Second
	// snapshotCount is every member's --snapshot-count; the leader
	// keeps half of it for catching up (--snapshot-catchup-entries), so
	// a follower down for a few hundred entries needs a snapshot.
	snapshotCount = 100
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

// scenario is one run: a fresh cluster, the workload, and faults
// injected one after the other in the order given, cyclically.
type scenario struct {
	name   string
	faults []fault
	// buildTags and env build and run the members (the failpoint tests
	// switch deliberate bugs on with them).
	buildTags []string
	env       []string
	duration  time.Duration // 0: loadDuration
	// keepLeases: no lease may expire while its holder renews it. Only
	// for faults that leave every client a member with a leader to
	// reach (killed members); a client cut off from every leader for
	// longer than a TTL loses its lease rightly.
	keepLeases bool
	// tls runs the cluster with mutual TLS on client and peer URLs, and
	// every client over TLS. The peer proxy is an HTTP proxy that reads
	// the sender's header, which it cannot inside TLS, so a TLS scenario
	// has no partitions: only kills and client cuts.
	tls bool
	// expectViolations keeps the evidence in the test's temp dir, as
	// the failpoint tests expect violations and need not keep it.
	expectViolations bool
}

// The bounded scenarios, one or two kinds of fault each; TestSoak
// cycles through all of them.

func TestKillLeader(t *testing.T) {
	check(t, runScenario(t, scenario{name: "kill-leader", faults: []fault{faultKillLeader}, keepLeases: true}))
}

func TestKillFollower(t *testing.T) {
	check(t, runScenario(t, scenario{name: "kill-follower", faults: []fault{faultKillFollower}, keepLeases: true}))
}

func TestIsolate(t *testing.T) {
	check(t, runScenario(t, scenario{name: "isolate", faults: []fault{faultIsolateLeader, faultIsolateFollower}}))
}

func TestFreeze(t *testing.T) {
	check(t, runScenario(t, scenario{name: "freeze", faults: []fault{faultFreezeLeader, faultFreezeFollower}}))
}

func TestCutClient(t *testing.T) {
	check(t, runScenario(t, scenario{name: "cut-client", faults: []fault{faultCutClient}}))
}

// TestMutualTLS: leader and follower kills and client cuts with every
// connection, client and peer, over mutual TLS, and auth on: every client
// is the user its certificate names (see enableCertAuth).
func TestMutualTLS(t *testing.T) {
	check(t, runScenario(t, scenario{name: "mtls", faults: []fault{faultKillLeader, faultCutClient, faultKillFollower}, tls: true}))
}

func TestMembership(t *testing.T) {
	check(t, runScenario(t, scenario{name: "membership", faults: []fault{faultMembership}}))
}

// TestSnapshotCatchUp also checks that the fault did what it is for: a
// restarted follower received a snapshot from the leader.
func TestSnapshotCatchUp(t *testing.T) {
	rep := runScenario(t, scenario{name: "snapshot-catch-up", faults: []fault{faultSnapshotCatchUp}})
	check(t, rep)
	if rep.snapshotTries > 0 && rep.snapshotCatchUps == 0 {
		t.Errorf("no restarted follower caught up from a snapshot in %d tries", rep.snapshotTries)
	}
}

// run is the state of one scenario while it runs.
type run struct {
	t     *testing.T
	c     *testcluster.Cluster
	admin *clientv3.Client
	// removed are the members a membership change removed.
	removed map[string]bool
	// snapshotTries counts the followers restarted far enough behind to
	// need a snapshot, snapshotCatchUps those that received one.
	snapshotTries, snapshotCatchUps int
}

// follower is the index of a running member of the cluster that does
// not lead.
func (r *run) follower() int {
	leader := r.c.WaitLeader(r.t)
	var fs []int
	for i, m := range r.c.Members {
		if i != leader && !r.removed[m.Name] && m.Running() {
			fs = append(fs, i)
		}
	}
	if len(fs) == 0 {
		r.t.Fatal("no follower runs")
	}
	return fs[rand.IntN(len(fs))]
}

// report is what a scenario did and found.
type report struct {
	name             string
	duration         time.Duration
	faults           map[string]int
	ops              map[opKind]int
	unknown          int
	firstRev, final  int64
	leases, holds    int
	rpcHolds         int // of holds, those by the Lock RPC
	wins, proclaims  int // proclaims: acknowledged ones
	observed         int // Observe responses
	leasesLost       int // expired while their holders renewed them, or renewals failed with code Unknown
	streams, events  int
	compactedTo      int64
	compactions      int64
	snapshots        int64
	snapshotErrs     int64
	snapshotTries    int
	snapshotCatchUps int
	lin              porcupine.CheckResult
	checkTime        time.Duration
	checked          []string // the histories and properties checked
	violations       []string
	dir              string // where the evidence went, on a violation
}

func (rep *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s: %v of load\n", rep.name, rep.duration)
	var fs []string
	for name, n := range rep.faults {
		fs = append(fs, fmt.Sprintf("%s×%d", name, n))
	}
	sort.Strings(fs)
	fmt.Fprintf(&b, "  faults injected: %s (followers caught up by snapshot: %d of %d)\n", strings.Join(fs, ", "), rep.snapshotCatchUps, rep.snapshotTries)
	var ops []string
	total := 0
	for k := opGet; k <= opDeleteRange; k++ {
		ops = append(ops, fmt.Sprintf("%s %d", k, rep.ops[k]))
		total += rep.ops[k]
	}
	fmt.Fprintf(&b, "  operations: %d KV (%s; %d unknown), %d leases (%d lost while renewed), revisions %d..%d\n",
		total, strings.Join(ops, ", "), rep.unknown, rep.leases, rep.leasesLost, rep.firstRev, rep.final)
	fmt.Fprintf(&b, "  coordination: %d lock holds (%d by Mutex, %d by the Lock RPC), %d elections won, %d proclaims, %d changes observed\n",
		rep.holds, rep.holds-rep.rpcHolds, rep.rpcHolds, rep.wins, rep.proclaims, rep.observed)
	fmt.Fprintf(&b, "  maintenance: %d compactions (to %d), %d snapshots saved (%d failed)\n", rep.compactions, rep.compactedTo, rep.snapshots, rep.snapshotErrs)
	fmt.Fprintf(&b, "  checked: %s; linearizability %s in %v\n", strings.Join(rep.checked, ", "), rep.lin, rep.checkTime.Round(time.Millisecond))
	fmt.Fprintf(&b, "  violations: %d", len(rep.violations))
	if rep.dir != "" {
		fmt.Fprintf(&b, "\n  evidence in %s; replay with %s=%s/history.json go test -run TestReplay -v ./tests/robustness/", rep.dir, envReplay, rep.dir)
	}
	return b.String()
}

// check fails t with every violation of rep.
func check(t *testing.T, rep *report) {
	t.Helper()
	for _, v := range rep.violations {
		t.Error(v)
	}
}

// runScenario loads a fresh cluster with the workload while it injects
// the scenario's faults, then recovers the cluster and checks
// everything the clients and watchers saw. It reports violations in
// the report it returns, not to t.
func runScenario(t *testing.T, sc scenario) *report {
	var tf *testcluster.TLS
	if sc.tls {
		tf = clusterPKI(t)
	}
	c := testcluster.New(t, testcluster.Config{
		Size: 3, Proxy: !sc.tls, ClientProxy: true, TLS: tf,
		Flags:     []string{fmt.Sprintf("--snapshot-count=%d", snapshotCount), fmt.Sprintf("--snapshot-catchup-entries=%d", snapshotCount/2)},
		BuildTags: sc.buildTags, Env: sc.env,
	})
	c.WaitLeader(t)
	newClient := func(t *testing.T, endpoints []string) *clientv3.Client { return newClientTLS(t, tf, endpoints) }
	if sc.tls {
		enableCertAuth(t, newClient(t, c.Endpoints()))
	}
	r := &run{t: t, c: c, admin: newClient(t, c.Endpoints()), removed: make(map[string]bool)}
	ctx, cancel := context.WithTimeout(t.Context(), recoverTimeout)
	init, err := readState(ctx, r.admin)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	h := newHistory(init)
	proxied := c.ProxiedEndpoints()

	// Long-lived watchers: the whole key space, and each key of the
	// model, all asking for progress notifications.
	watchCtx, stopWatch := context.WithCancel(t.Context())
	var watchWG sync.WaitGroup
	defer func() { stopWatch(); watchWG.Wait() }()
	global := newWatcher(rootPrefix, rootPrefix, true, init.Rev+1, h.now)
	watchers := []*watcher{global}
	for k := range keyCount {
		watchers = append(watchers, newWatcher(keyName(k), keyName(k), false, init.Rev+1, h.now))
	}
	for _, w := range watchers {
		w.progress = true
		cli := newClient(t, proxied)
		watchWG.Go(func() { w.run(watchCtx, cli) })
	}
	floor := func() int64 {
		f := watchers[0].resume.Load()
		for _, w := range watchers[1:] {
			f = min(f, w.resume.Load())
		}
		return f
	}

	loadCtx, stopLoad := context.WithCancel(t.Context())
	var loadWG sync.WaitGroup
	defer func() { stopLoad(); loadWG.Wait() }()
	for id := range kvClients {
		eps := proxied
		if id < pinned {
			eps = proxied[id : id+1]
		}
		kc := newKVClient(id, newClient(t, eps), h)
		loadWG.Go(func() { kc.run(loadCtx) })
	}
	var leasers []*leaseClient
	for id := range leaseClients {
		lc := newLeaseClient(id, newClient(t, proxied), h)
		leasers = append(leasers, lc)
		loadWG.Go(func() { lc.run(loadCtx) })
	}
	var lockers []*lockClient
	for id := range lockClients {
		lc := newLockClient(id, newClient(t, proxied))
		lockers = append(lockers, lc)
		loadWG.Go(func() { lc.run(loadCtx) })
	}
	var rpcLockers []*lockRPCClient
	for id := range lockRPCClients {
		lc := newLockRPCClient(lockClients+id, newClient(t, proxied))
		rpcLockers = append(rpcLockers, lc)
		loadWG.Go(func() { lc.run(loadCtx) })
	}
	var candidates []*campaigner
	for id := range campaigners {
		cc := newCampaigner(id, newClient(t, proxied))
		candidates = append(candidates, cc)
		loadWG.Go(func() { cc.run(loadCtx) })
	}
	obs := newObserver(newClient(t, proxied))
	loadWG.Go(func() { obs.run(loadCtx) })
	maint := &maintainer{cli: newClient(t, proxied), h: h, start: init.Rev + 1, floor: floor}
	maintCli := newClient(t, proxied)
	loadWG.Go(func() { maint.run(loadCtx, maintCli) })

	rep := &report{name: sc.name, faults: make(map[string]int), ops: make(map[opKind]int), firstRev: init.Rev + 1}
	rep.duration = sc.duration
	if rep.duration == 0 {
		rep.duration = loadDuration(t)
	}
	deadline := time.Now().Add(rep.duration)
	for i := 0; ; i++ {
		time.Sleep(faultPause)
		if time.Until(deadline) < 2*faultPause {
			break
		}
		f := sc.faults[i%len(sc.faults)]
		f.inject(r)
		rep.faults[f.name]++
		c.WaitLeader(t)
	}
	time.Sleep(time.Until(deadline))
	stopLoad()
	loadWG.Wait()

	// Recover: every member up, a leader, then one fence write to every
	// key, so each watcher has an event to reach and the final read is
	// the last word on each key.
	if !sc.tls {
		c.Heal()
	}
	for i, m := range c.Members {
		c.HealClient(i)
		if !m.Running() && !r.removed[m.Name] {
			m.Start()
		}
	}
	c.WaitLeader(t)
	ctx, cancel = context.WithTimeout(t.Context(), recoverTimeout)
	defer cancel()
	fencer := newKVClient(kvClients, r.admin, h)
	for k := range keyCount {
		for fencer.do(ctx, kvInput{Kind: opPut, Key: k, Value: fmt.Sprintf("fence-%d", k)}).Unknown {
			if ctx.Err() != nil {
				t.Fatalf("fence write to k%d: no answer within %v", k, recoverTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// No lease is kept alive any more: every lease, lock and election
	// key must go.
	lctx, lcancel := context.WithTimeout(t.Context(), recoverTimeout+2*leaseTTL*time.Second)
	defer lcancel()
	var left []string
	_ = waitFor(lctx, func() bool {
		left = left[:0]
		for _, p := range []string{leasePrefix, lockPrefix, electionPrefix} {
			resp, err := r.admin.Get(lctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
			if err != nil {
				left = append(left, err.Error())
				continue
			}
			for _, kv := range resp.Kvs {
				left = append(left, fmt.Sprintf("%s (lease %x)", kv.Key, kv.Lease))
			}
		}
		return len(left) == 0
	})
	for _, k := range left {
		rep.violations = append(rep.violations, fmt.Sprintf("%s still there %v after no lease was kept alive any more", k, recoverTimeout+2*leaseTTL*time.Second))
	}
	ctx, cancel = context.WithTimeout(t.Context(), recoverTimeout)
	defer cancel()
	final, err := readState(ctx, r.admin)
	if err != nil {
		t.Fatal(err)
	}
	rep.final = final.Rev
	for _, w := range watchers {
		if err := w.waitFor(ctx, final.Rev); err != nil {
			rep.violations = append(rep.violations, err.Error())
		}
	}
	c.WaitConverged(t)
	stopWatch()
	watchWG.Wait()

	// Check.
	recs := h.Records()
	for _, rc := range recs {
		rep.ops[rc.Input.Kind]++
		if rc.Output.Unknown {
			rep.unknown++
		}
	}
	logs := make([]watchLog, 0, len(watchers))
	for _, w := range watchers {
		logs = append(logs, w.log())
	}
	logs = append(logs, maint.logs()...)
	compactedTo := maint.compactedTo.Load()
	idx := indexEvents(logs[0])
	foreign := idx.foreign()
	var leases []leaseRecord
	sent := make(map[string]bool)
	for _, lc := range leasers {
		leases = append(leases, lc.records()...)
	}
	for _, l := range leases {
		sent[l.Value] = true
	}
	for _, rc := range recs {
		if rc.Input.Kind == opPut || rc.Input.Kind == opCAS {
			sent[rc.Input.Value] = true
		}
	}
	var holds []hold
	for _, lc := range lockers {
		holds = append(holds, lc.records()...)
	}
	for _, lc := range rpcLockers {
		rpc := lc.records()
		holds = append(holds, rpc...)
		rep.rpcHolds += len(rpc)
	}
	elections := electionRecords(candidates, obs)
	for v := range elections.SentFor {
		sent[v] = true
	}
	rep.leases, rep.holds = len(leases), len(holds)
	rep.wins, rep.observed = len(elections.Wins), len(elections.Observed)
	for _, p := range elections.Proclaims {
		if p.Rev != 0 {
			rep.proclaims++
		}
	}
	rep.leasesLost = len(checkLeasesKeptAlive(leases))
	rep.compactedTo, rep.compactions = compactedTo, maint.compactions.Load()
	rep.snapshots, rep.snapshotErrs = maint.snapshots.Load(), maint.snapErrs.Load()
	rep.snapshotTries, rep.snapshotCatchUps = r.snapshotTries, r.snapshotCatchUps

	rep.violations = append(rep.violations, checkClientRevisions(recs)...)
	for i, l := range logs {
		rep.streams += len(l.Streams)
		for _, resp := range l.Responses {
			rep.events += len(resp.Events)
		}
		rep.violations = append(rep.violations, checkWatchStream(l, compactedTo)...)
		if i > 0 {
			rep.violations = append(rep.violations, checkWatchAgrees(l, idx)...)
		}
	}
	rep.violations = append(rep.violations, checkWatchHistory(init, final, idx, recs, sent)...)
	rep.violations = append(rep.violations, checkLeases(leases, idx)...)
	if sc.keepLeases {
		rep.violations = append(rep.violations, checkLeasesKeptAlive(leases)...)
	}
	rep.violations = append(rep.violations, checkLocks(holds, idx)...)
	rep.violations = append(rep.violations, checkElections(elections, idx)...)
	rep.checked = []string{
		fmt.Sprintf("KV history (%d requests)", len(recs)),
		"client revisions",
		fmt.Sprintf("%d watches (%d streams, %d events) against the watch of %s", len(logs), rep.streams, rep.events, rootPrefix),
		fmt.Sprintf("%d leases", len(leases)),
		fmt.Sprintf("%d lock holds", len(holds)),
		fmt.Sprintf("%d elections won, %d Leader answers, %d proclaims, %d observed", len(elections.Wins), len(elections.Leaders), len(elections.Proclaims), len(elections.Observed)),
	}

	linRecs := resolveUnknown(recs, idx)
	began := time.Now()
	lin, err := checkLinearizable(init, foreign, linRecs, "")
	if err != nil {
		t.Error(err)
	}
	rep.lin, rep.checkTime = lin.Result, time.Since(began)
	switch lin.Result {
	case porcupine.Ok:
	case porcupine.Illegal:
		rep.violations = append(rep.violations, "the KV history is not linearizable (see history.html)")
	default:
		t.Errorf("porcupine gave up after %v (%s)", checkTimeout, lin.Result)
	}

	// The checker must also fail when it should: the same history with
	// two acknowledged writes' answers swapped cannot be linearized.
	if bad, ok := swapWriteRevisions(linRecs); ok {
		if res, _ := checkLinearizable(init, foreign, bad, ""); res.Result != porcupine.Illegal {
			t.Errorf("porcupine accepts the history with two writes' revisions swapped (%s)", res.Result)
		}
	}

	if len(rep.violations) > 0 {
		dir := os.Getenv(envDir)
		switch {
		case sc.expectViolations:
			dir = t.TempDir()
		case dir != "":
			dir = filepath.Join(dir, sc.name+"-"+time.Now().Format("20060102-150405"))
		default:
			dir = filepath.Join(os.TempDir(), fmt.Sprintf("cairn-robustness-%s-%d", sc.name, time.Now().UnixNano()))
		}
		rep.dir = saveEvidence(t, dir, c, init, foreign, linRecs, logs, map[string]any{"locks.json": holds, "elections.json": elections}, rep)
	}
	t.Log(rep.String())
	return rep
}

// saveEvidence keeps what a run with a violation needs to be looked at
// again: the KV history as checked (with the unknown outcomes that the
// watch settled filled in; replayable, with porcupine's visualization),
// every watch log, the other clients' records (extra, by file name), the
// violations, and every member's output. It returns the directory.
func saveEvidence(t *testing.T, dir string, c *testcluster.Cluster, init kvState, foreign foreignRevs, recs []record, logs []watchLog, extra map[string]any, rep *report) string {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("save evidence: %v", err)
		return ""
	}
	if _, err := checkLinearizable(init, foreign, recs, dir); err != nil {
		t.Error(err)
	}
	if err := saveHistory(filepath.Join(dir, "history.json"), init, foreign, recs); err != nil {
		t.Error(err)
	}
	write := func(file string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
			t.Errorf("save evidence: %v", err)
		}
	}
	if b, err := json.MarshalIndent(logs, "", " "); err == nil {
		write("watches.json", b)
	}
	for file, v := range extra {
		if b, err := json.MarshalIndent(v, "", " "); err == nil {
			write(file, b)
		}
	}
	write("violations.txt", []byte(strings.Join(rep.violations, "\n")+"\n"))
	for _, m := range c.Members {
		write("member-"+m.Name+".log", []byte(m.Logs()))
	}
	return dir
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
	lin, err := checkLinearizable(saved.Init, saved.foreign(), saved.Records, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests: %s", len(saved.Records), lin.Result)
	if lin.Result != porcupine.Ok {
		t.Errorf("not linearizable (%s): see %s/history.html", lin.Result, lin.Dir)
	}
}
