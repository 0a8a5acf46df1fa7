package cluster

import (
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// catchUpWrites is how many entries the test writes while a member is
// down: ten times --snapshot-count, so that the leader has taken
// several snapshots and, keeping only --snapshot-catchup-entries behind
// the last, compacted its log past the stopped member.
const catchUpWrites = 1000

// TestStoppedMemberCatchesUpBySnapshot: a follower stopped while the
// others write far more than --snapshot-count entries restarts, catches
// up (from a snapshot, as the leader's log no longer reaches back to it)
// and holds the same data as the others.
func TestStoppedMemberCatchesUpBySnapshot(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3, Flags: []string{
		"--snapshot-count=100", "--snapshot-catchup-entries=100",
	}})
	ctx := testContext(t)
	putN(t, ctx, c.Client(t), "k/", 50, 4)
	leader := c.WaitLeader(t)
	lagger := (leader + 1) % len(c.Members)
	c.Members[lagger].Stop()

	start := time.Now()
	putN(t, ctx, clientOf(t, others(c, lagger)...), "k/", catchUpWrites, 32)
	t.Logf("%d puts with %s down in %v", catchUpWrites, c.Members[lagger].Name, time.Since(start).Round(time.Millisecond))

	restarted := len(c.Members[lagger].Logs())
	c.Members[lagger].Start()
	rev := c.WaitConverged(t)
	// Which way the member caught up is the server's business; its log
	// says (etcd: "applied incoming Raft snapshot").
	for line := range strings.Lines(c.Members[lagger].Logs()[restarted:]) {
		if l := strings.ToLower(line); strings.Contains(l, "snapshot") && (strings.Contains(l, "incoming") || strings.Contains(l, "receiv")) {
			t.Logf("%s after its restart: %.200s", c.Members[lagger].Name, strings.TrimSpace(line))
			break
		}
	}

	want, err := c.Members[leader].Client(t).Get(ctx, "k/", clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Members[lagger].Client(t).Get(ctx, "k/", clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithSerializable())
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Kvs) != catchUpWrites || !maps.Equal(kvMap(got.Kvs), kvMap(want.Kvs)) {
		t.Fatalf("at revision %d the restarted member reads %d keys, the leader %d (want %d)", rev, len(got.Kvs), len(want.Kvs), catchUpWrites)
	}
}

// The in-memory Raft log is trimmed as entries are applied (as etcd 3.7
// does, every 100 entries, keeping --snapshot-catchup-entries), not only
// when a snapshot is written to disk: with disk snapshots far away, a
// member that missed more than the catch-up entries still gets a
// snapshot, and the leader never holds its whole log in memory.
func TestLogTrimmedWithoutDiskSnapshots(t *testing.T) {
	name, logs, bySnapshot := catchUpAfter300(t, "--snapshot-catchup-entries=20")
	if !bySnapshot {
		t.Fatalf("%s missed 300 entries with 20 kept for catch-up, and caught up without a snapshot:\n%s", name, logs)
	}
}

// A leader bounds its in-memory log by size (--snapshot-catchup-bytes,
// Cairn only), but never drops entries a follower still needs: a follower
// that was down for 300 entries, far more than 1 KiB of them, still
// catches up from the log, without a snapshot.
func TestLogSizeBoundKeepsWhatFollowersNeed(t *testing.T) {
	if os.Getenv("CAIRN_TESTCLUSTER_BINARY") != "" {
		t.Skip("--snapshot-catchup-bytes is Cairn's")
	}
	name, logs, bySnapshot := catchUpAfter300(t, "--snapshot-catchup-entries=5000", "--snapshot-catchup-bytes=1024")
	if bySnapshot {
		t.Fatalf("%s caught up by snapshot: the leader dropped entries it still needed:\n%s", name, logs)
	}
}

// catchUpAfter300 starts three members with flags (and disk snapshots far
// away), stops a follower while 300 keys are written, restarts it, and
// reports whether it caught up by receiving a snapshot, with its name and
// its log since the restart.
func catchUpAfter300(t *testing.T, flags ...string) (name, logs string, bySnapshot bool) {
	c := testcluster.New(t, testcluster.Config{Size: 3, Flags: append([]string{"--snapshot-count=1000000"}, flags...)})
	ctx := testContext(t)
	leader := c.WaitLeader(t)
	lagger := c.Members[(leader+1)%len(c.Members)]
	lagger.Stop()
	putN(t, ctx, clientOf(t, others(c, (leader+1)%len(c.Members))...), "t/", 300, 16)

	restarted := len(lagger.Logs())
	lagger.Start()
	c.WaitConverged(t)
	logs = lagger.Logs()[restarted:]
	for line := range strings.Lines(logs) {
		if l := strings.ToLower(line); strings.Contains(l, "snapshot") && (strings.Contains(l, "incoming") || strings.Contains(l, "receiv")) {
			return lagger.Name, logs, true
		}
	}
	return lagger.Name, logs, false
}
