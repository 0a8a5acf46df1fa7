package faults

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
	"github.com/cairnkv/cairn/tests/faults/powerfs"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// cutsFlag is how many power cuts each test makes: a few in CI, hundreds
// in a soak (go test -faults.cuts=300 -timeout 2h, or CAIRN_FAULTS_CUTS).
var cutsFlag = flag.Int("faults.cuts", 0, "power cuts per test (default 5, or $CAIRN_FAULTS_CUTS)")

func cuts() int {
	if *cutsFlag > 0 {
		return *cutsFlag
	}
	if n, err := strconv.Atoi(os.Getenv("CAIRN_FAULTS_CUTS")); err == nil && n > 0 {
		return n
	}
	return 5
}

// serverFlags make the members snapshot and release WAL segments often,
// so cuts land around snapshot saves too.
var serverFlags = []string{"--snapshot-count=500"}

// disk is one member's power-loss file system.
type disk struct {
	fs  *powerfs.FS
	mnt string
}

// newDisk mounts a fresh powerfs, skipping the test when FUSE is not
// available unless CAIRN_REQUIRE_FUSE=1 (as in CI).
func newDisk(t *testing.T) *disk {
	t.Helper()
	dir := t.TempDir()
	p, err := powerfs.New(filepath.Join(dir, "backing"))
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := p.Mount(mnt); err != nil {
		if os.Getenv("CAIRN_REQUIRE_FUSE") == "1" {
			t.Fatalf("FUSE is required here (CAIRN_REQUIRE_FUSE=1): %v", err)
		}
		t.Skipf("skipping: cannot mount a FUSE file system (%v); CI sets CAIRN_REQUIRE_FUSE=1 to make this a failure", err)
	}
	// Registered before the cluster's cleanup, so it runs after the
	// members are killed.
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("powerfs: %v", err)
		}
	})
	return &disk{fs: p, mnt: mnt}
}

// cut drops what the disk has not synced, as a power cut would. The
// member using it must be dead.
func (d *disk) cut(t *testing.T) {
	t.Helper()
	if err := d.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := d.fs.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := d.fs.Mount(d.mnt); err != nil {
		t.Fatal(err)
	}
}

// ack is one write the cluster acknowledged: a put of value to key at rev.
type ack struct {
	key, value string
	rev        int64
}

// load runs writers against endpoints until stop is closed and returns
// what was acknowledged. Each writer alternates puts and two-key txns.
func load(t *testing.T, endpoints []string, writers int, tag string, stop <-chan struct{}) []ack {
	acks, _ := timedLoad(t, endpoints, writers, tag, stop)
	return acks
}

// timedLoad is load that also returns how long each acknowledged
// operation took.
func timedLoad(t *testing.T, endpoints []string, writers int, tag string, stop <-chan struct{}) ([]ack, []time.Duration) {
	var (
		mu   sync.Mutex
		acks []ack
		lat  []time.Duration
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Errorf("client: %v", err)
				return
			}
			defer cli.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { <-stop; cancel() }()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("k/%d/%d", w, i%50)
				val := fmt.Sprintf("%s-w%d-%d", tag, w, i)
				octx, ocancel := context.WithTimeout(ctx, 2*time.Second)
				start := time.Now()
				if i%3 == 2 {
					key2 := key + "/t"
					resp, err := cli.Txn(octx).
						If(clientv3.Compare(clientv3.ModRevision(key), "<", math.MaxInt64)).
						Then(clientv3.OpPut(key, val), clientv3.OpPut(key2, val)).Commit()
					if err == nil && resp.Succeeded {
						mu.Lock()
						acks = append(acks, ack{key, val, resp.Header.Revision}, ack{key2, val, resp.Header.Revision})
						lat = append(lat, time.Since(start))
						mu.Unlock()
					}
				} else {
					resp, err := cli.Put(octx, key, val)
					if err == nil {
						mu.Lock()
						acks = append(acks, ack{key, val, resp.Header.Revision})
						lat = append(lat, time.Since(start))
						mu.Unlock()
					}
				}
				ocancel()
			}
		})
	}
	wg.Wait()
	return acks, lat
}

// history reads every event of the keyspace from revision 1 up to the
// member's current revision from the member at ep alone, by a watch,
// after waiting up to 15 s for that revision to reach want (a restarted
// follower catches up). It returns the member's revision.
func history(ctx context.Context, ep string, want int64) (map[int64][]*clientv3.Event, int64, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, 0, err
	}
	defer cli.Close()
	var rev int64
	catchUp := time.Now().Add(15 * time.Second)
	for {
		resp, err := cli.Get(ctx, "k/", clientv3.WithSerializable(), clientv3.WithCountOnly())
		if err == nil {
			rev = resp.Header.Revision
			if rev >= want || time.Now().After(catchUp) {
				break
			}
		}
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("member %s: %v", ep, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	evs := map[int64][]*clientv3.Event{}
	if rev < 2 {
		return evs, rev, nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range cli.Watch(wctx, "k/", clientv3.WithPrefix(), clientv3.WithRev(1)) {
		if err := wr.Err(); err != nil {
			return nil, 0, err
		}
		for _, ev := range wr.Events {
			evs[ev.Kv.ModRevision] = append(evs[ev.Kv.ModRevision], ev)
		}
		if len(wr.Events) > 0 && wr.Events[len(wr.Events)-1].Kv.ModRevision >= rev {
			return evs, rev, nil
		}
	}
	return nil, 0, fmt.Errorf("watch on %s ended before revision %d: %v", ep, rev, ctx.Err())
}

// mustHold fails the test unless every acknowledged write holds on the
// member at ep (check), naming what happened before in the message.
func mustHold(t *testing.T, ctx context.Context, ep string, acks []ack, what string) {
	t.Helper()
	v, err := check(ctx, ep, acks)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > 0 {
		t.Fatalf("%d violations %s; the first: %s", len(v), what, strings.Join(v[:min(5, len(v))], "; "))
	}
}

// check compares what the member at ep holds with every acknowledged
// write: each must be there at its revision with its value, and the
// revisions must run without a gap. It returns the violations.
func check(ctx context.Context, ep string, acks []ack) (violations []string, err error) {
	var top int64
	for _, a := range acks {
		top = max(top, a.rev)
	}
	evs, rev, err := history(ctx, ep, top)
	if err != nil {
		return nil, err
	}
	if rev < top {
		violations = append(violations, fmt.Sprintf("%s: at revision %d after the restart, below the acknowledged revision %d", ep, rev, top))
	}
	for _, a := range acks {
		found := false
		for _, ev := range evs[a.rev] {
			if string(ev.Kv.Key) == a.key && string(ev.Kv.Value) == a.value {
				found = true
				break
			}
		}
		if !found {
			violations = append(violations, fmt.Sprintf("%s: acknowledged put %s=%s at revision %d is missing (revision holds %s)", ep, a.key, a.value, a.rev, describe(evs[a.rev])))
		}
	}
	// Every revision from 2 (the first write) to the newest holds
	// events: the keyspace is only ever written under k/.
	for r := int64(2); r <= rev; r++ {
		if len(evs[r]) == 0 {
			violations = append(violations, fmt.Sprintf("%s: revision %d holds no event (history up to %d)", ep, r, rev))
		}
	}
	return violations, nil
}

func describe(evs []*clientv3.Event) string {
	if len(evs) == 0 {
		return "nothing"
	}
	var parts []string
	for _, ev := range evs {
		parts = append(parts, string(ev.Kv.Key)+"="+string(ev.Kv.Value))
	}
	return strings.Join(parts, ", ")
}

// report is the outcome of a run of power cuts.
type report struct {
	cuts, acks int
	violations []string
	startErr   string // set when a member did not start after a cut
}

// cutTarget says which members a cut hits.
type cutTarget int

const (
	cutOne cutTarget = iota
	cutLeader
	cutAll
)

func (c cutTarget) String() string {
	return [...]string{"a follower", "the leader", "every member"}[c]
}

// runCuts starts a cluster of size members, each on its own powerfs,
// and n times: runs a write load, at a random moment SIGKILLs the
// members targets picks and cuts their power, restarts them and checks
// every acknowledged write so far on every member. With tolerate it
// returns at the first violation instead of failing the test.
func runCuts(t *testing.T, size, n int, targets func(i int) cutTarget, cfg testcluster.Config, tolerate bool) report {
	disks := make([]*disk, size)
	byName := map[string]*disk{}
	for i := range disks {
		disks[i] = newDisk(t)
	}
	names := 0
	cfg.Size = size
	cfg.Flags = append(append([]string(nil), serverFlags...), cfg.Flags...)
	cfg.DataDir = func(name string) string {
		d := disks[names]
		names++
		byName[name] = d
		return filepath.Join(d.mnt, name+".data")
	}
	c := testcluster.New(t, cfg)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 18))
	var (
		rep  report
		acks []ack
	)
	start := time.Now()
	for i := range n {
		target := targets(i)
		victims := c.Members
		switch target {
		case cutOne, cutLeader:
			li := leaderIndex(t, c)
			v := li
			if target == cutOne {
				v = (li + 1 + rng.IntN(size-1)) % size
			}
			victims = []*testcluster.Member{c.Members[v]}
		}
		stop := make(chan struct{})
		got := make(chan []ack)
		tag := fmt.Sprintf("c%d", i)
		go func() { got <- load(t, c.Endpoints(), 4, tag, stop) }()
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		for _, m := range victims {
			m.Kill()
		}
		for _, m := range victims {
			byName[m.Name].cut(t)
		}
		close(stop)
		acks = append(acks, <-got...)
		rep.cuts++
		for _, m := range victims {
			m.Launch()
		}
		for _, m := range victims {
			if err := waitStarted(m, 60*time.Second); err != nil {
				rep.startErr = fmt.Sprintf("after cut %d (%s): %v", i+1, target, err)
				if tolerate {
					return rep
				}
				t.Fatal(rep.startErr)
			}
		}
		for _, m := range c.Members {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			v, err := check(ctx, m.ClientURL, acks)
			cancel()
			if err != nil {
				t.Fatalf("after cut %d (%s): check %s: %v", i+1, target, m.Name, err)
			}
			rep.violations = append(rep.violations, v...)
		}
		rep.acks = len(acks)
		st := byName[victims[0].Name].fs.Stats()
		t.Logf("cut %d (%s): %d writes acknowledged so far, all checked on %d members; %s's disk: %d files reverted, %d blocks restored, %d entries reverted so far",
			i+1, target, len(acks), size, victims[0].Name, st.FilesReverted, st.BlocksRestored, st.EntriesReverted)
		if len(rep.violations) > 0 {
			if tolerate {
				return rep
			}
			t.Fatalf("after cut %d (%s): %d violations; the first: %s", i+1, target, len(rep.violations), strings.Join(rep.violations[:min(5, len(rep.violations))], "; "))
		}
	}
	t.Logf("%d power cuts in %v, %d acknowledged writes checked after each, 0 violations", rep.cuts, time.Since(start).Round(time.Second), rep.acks)
	return rep
}

// waitStarted waits until m serves, or returns why it did not.
func waitStarted(m *testcluster.Member, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !m.Running() {
			return fmt.Errorf("member %s exited while starting; its output:\n%s", m.Name, tail(m.Logs(), 40))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := m.Status(ctx)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("member " + m.Name + " not serving within " + timeout.String())
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func leaderIndex(t *testing.T, c *testcluster.Cluster) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range c.Members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := m.Status(ctx)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no leader within 20s")
	return -1
}

// TestPowerCutSingleMember: a lone member under a write load loses power
// at random moments; after each restart every acknowledged write is
// there at its revision and the revisions have no gap.
func TestPowerCutSingleMember(t *testing.T) {
	runCuts(t, 1, cuts(), func(int) cutTarget { return cutAll }, testcluster.Config{}, false)
}

// TestPowerCutCluster: three members, each on its own disk; the cuts hit
// a follower, the leader, or all three at once (a rack losing power: each
// acknowledged write was fsynced on a quorum, so it survives).
func TestPowerCutCluster(t *testing.T) {
	order := []cutTarget{cutOne, cutLeader, cutAll}
	runCuts(t, 3, cuts(), func(i int) cutTarget { return order[i%len(order)] }, testcluster.Config{}, false)
}

// TestFailpointWALSkipFsyncLosesWrites: with walSkipFsync the WAL
// acknowledges before it syncs, and the power-cut test must catch the
// lost writes (or a member that cannot start on what is left).
func TestFailpointWALSkipFsyncLosesWrites(t *testing.T) {
	// No snapshot, so no flush of the engine: what the member serves
	// after a cut is what its WAL kept.
	cfg := testcluster.Config{
		BuildTags: []string{"cairn_failpoints"}, Env: []string{"CAIRN_FAILPOINTS=walSkipFsync"},
		Flags: []string{"--snapshot-count=1000000"},
	}
	rep := runCuts(t, 1, max(cuts(), 5), func(int) cutTarget { return cutAll }, cfg, true)
	switch {
	case len(rep.violations) > 0:
		t.Logf("caught after %d cuts: %d violations among %d acknowledged writes; the first: %s", rep.cuts, len(rep.violations), rep.acks, strings.Join(rep.violations[:min(3, len(rep.violations))], "; "))
	case rep.startErr != "":
		t.Logf("caught: the member did not start after a cut: %s", rep.startErr)
	default:
		t.Fatalf("with walSkipFsync, %d power cuts and %d acknowledged writes showed no loss", rep.cuts, rep.acks)
	}
}

// TestFsyncEIOStopsMember: the WAL's fdatasync fails with EIO under a
// write load. The member must stop with an error naming the failure
// rather than retry (after a failed fsync Linux forgets the dirty
// pages), acknowledge nothing it could not sync, and restart cleanly
// after a power cut on what the disk kept.
func TestFsyncEIOStopsMember(t *testing.T) {
	d := newDisk(t)
	m := testcluster.NewMember(t, testcluster.Config{
		Flags:   serverFlags,
		DataDir: func(name string) string { return filepath.Join(d.mnt, name+".data") },
	})
	stop := make(chan struct{})
	got := make(chan []ack)
	go func() { got <- load(t, []string{m.ClientURL}, 4, "eio", stop) }()
	time.Sleep(500 * time.Millisecond)
	d.fs.FailSync(powerfs.HasSuffix(".wal"), syscall.EIO)
	select {
	case <-m.Exited():
	case <-time.After(20 * time.Second):
		close(stop)
		<-got
		t.Fatalf("the member still runs 20s after its WAL's fsync started failing")
	}
	close(stop)
	acks := <-got
	logs := m.Logs()
	if !strings.Contains(logs, "input/output error") {
		t.Errorf("the member's output does not name the I/O error:\n%s", tail(logs, 20))
	}
	t.Logf("the member stopped: %s", lastLine(logs, "input/output error"))
	d.fs.FailSync(nil, 0)
	d.cut(t)
	m.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mustHold(t, ctx, m.ClientURL, acks, "after the EIO and a power cut")
	t.Logf("%d acknowledged writes, all there after the restart; %d fsyncs failed", len(acks), d.fs.Stats().FailedSyncs)
}

func lastLine(s, substr string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}

// TestFailpointWALIgnoreSyncErrorLosesWrites: with walIgnoreSyncError
// the WAL takes a failed fdatasync for a good one (the fsyncgate
// mistake). Under the EIO of TestFsyncEIOStopsMember the member then
// keeps acknowledging writes whose pages the disk dropped, and the power
// cut after must show it: writes lost, or a WAL the member refuses.
func TestFailpointWALIgnoreSyncErrorLosesWrites(t *testing.T) {
	d := newDisk(t)
	m := testcluster.NewMember(t, testcluster.Config{
		BuildTags: []string{"cairn_failpoints"}, Env: []string{"CAIRN_FAILPOINTS=walIgnoreSyncError"},
		Flags:   []string{"--snapshot-count=1000000"},
		DataDir: func(name string) string { return filepath.Join(d.mnt, name+".data") },
	})
	stop := make(chan struct{})
	got := make(chan []ack)
	go func() { got <- load(t, []string{m.ClientURL}, 4, "gate", stop) }()
	time.Sleep(500 * time.Millisecond)
	d.fs.FailSync(powerfs.HasSuffix(".wal"), syscall.EIO)
	time.Sleep(time.Second)
	d.fs.FailSync(nil, 0)
	time.Sleep(500 * time.Millisecond)
	if !m.Running() {
		close(stop)
		<-got
		t.Fatalf("with walIgnoreSyncError the member stopped anyway:\n%s", tail(m.Logs(), 10))
	}
	m.Kill()
	close(stop)
	acks := <-got
	failed := d.fs.Stats().FailedSyncs
	d.cut(t)
	m.Launch()
	if err := waitStarted(m, 30*time.Second); err != nil {
		t.Logf("caught: after %d failed fdatasyncs were ignored and a power cut, the member does not start: %v", failed, lastLine(m.Logs(), "corrupt"))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := check(ctx, m.ClientURL, acks)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) == 0 {
		t.Fatalf("with walIgnoreSyncError, %d failed fdatasyncs and a power cut lost none of %d acknowledged writes", failed, len(acks))
	}
	t.Logf("caught: %d violations among %d acknowledged writes after %d ignored fdatasync failures; the first: %s", len(v), len(acks), failed, v[0])
}
