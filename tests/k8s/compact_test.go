package k8s

import (
	"context"
	"testing"
	"time"

	etcdrpc "go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"k8s.io/apiserver/pkg/storage/etcd3"
	testingclock "k8s.io/utils/clock/testing"
)

// TestCompact and TestCompactConflict are upstream's
// (k8s.io/apiserver/pkg/storage/etcd3/compact_test.go, v0.37): the
// compactor kube-apiserver runs keeps its logical clock in the version of
// the compact_rev_key and compacts through a Txn on it.

const (
	waitDelay   = time.Millisecond
	waitTimeout = 100 * waitDelay
)

func TestCompact(t *testing.T) {
	client := newClient(t, runServer(t, "")).Client
	ctx := context.Background()
	clock := testingclock.NewFakeClock(time.Now())
	c := etcd3.NewCompactor(client, time.Minute, clock, nil)
	t.Cleanup(c.Stop)
	waitForClockWaiters(t, clock)

	t.Log("First compaction cycle saves revision before first write")
	clock.Step(time.Minute)
	waitForClockWaiters(t, clock)
	if compactRev := c.CompactRevision(); compactRev != 0 {
		t.Errorf("CompactRevision()=%d, expected %d", compactRev, 0)
	}

	t.Log("First write")
	putResp, err := client.Put(ctx, "/somekey", "data")
	if err != nil {
		t.Fatalf("Put failed: %v", err)
	}
	assertNotCompacted(t, ctx, client, putResp.Header.Revision)

	t.Log("Second compaction cycle compacts before first write")
	clock.Step(time.Minute)
	waitForClockWaiters(t, clock)
	assertNotCompacted(t, ctx, client, putResp.Header.Revision)
	if compactRev := c.CompactRevision(); compactRev != putResp.Header.Revision-1 {
		t.Errorf("CompactRevision()=%d, expected %d", compactRev, putResp.Header.Revision-1)
	}

	t.Log("Create second revision")
	putResp1, err := client.Put(ctx, "/somekey", "data2")
	if err != nil {
		t.Fatalf("Put failed: %v", err)
	}
	assertNotCompacted(t, ctx, client, putResp1.Header.Revision)

	t.Log("Third compaction cycle compacts revision after first write")
	clock.Step(time.Minute)
	waitForClockWaiters(t, clock)
	assertCompacted(t, ctx, client, putResp.Header.Revision)
	if compactRev := c.CompactRevision(); compactRev != putResp.Header.Revision+1 {
		t.Errorf("CompactRevision()=%d, expected %d", compactRev, putResp.Header.Revision+1)
	}
	assertNotCompacted(t, ctx, client, putResp1.Header.Revision)

	t.Log("Fourth compaction cycle compacts second write")
	clock.Step(time.Minute)
	waitForClockWaiters(t, clock)
	assertCompacted(t, ctx, client, putResp.Header.Revision)
	assertCompacted(t, ctx, client, putResp1.Header.Revision)
	if compactRev := c.CompactRevision(); compactRev != putResp1.Header.Revision+1 {
		t.Errorf("CompactRevision()=%d, expected %d", compactRev, putResp1.Header.Revision+1)
	}
}

func assertCompacted(t *testing.T, ctx context.Context, client *clientv3.Client, rev int64) {
	t.Helper()
	_, err := client.Get(ctx, "/somekey", clientv3.WithRev(rev))
	if err != etcdrpc.ErrCompacted {
		t.Errorf("Expecting rev %d compacted, but err=%v", rev, err)
	}
}

func assertNotCompacted(t *testing.T, ctx context.Context, client *clientv3.Client, rev int64) {
	t.Helper()
	if _, err := client.Get(ctx, "/somekey", clientv3.WithRev(rev)); err != nil {
		t.Errorf("Get on rev %d failed: %v", rev, err)
	}
}

func waitForClockWaiters(t *testing.T, clock *testingclock.FakeClock) {
	t.Helper()
	for start := time.Now(); time.Since(start) < waitTimeout; {
		if clock.HasWaiters() {
			return
		}
		time.Sleep(waitDelay)
	}
	t.Fatal("No waiters")
}

// TestCompactConflict: compactors racing on the same logical time.
//   - C1 compacts on time 0. It will succeed.
//   - C2 compacts on time 0. It will fail as this time was compacted. But it
//     will get latest logical time, which should be larger by one.
//   - C3 compacts on time 1. It will succeed.
func TestCompactConflict(t *testing.T) {
	client := newClient(t, runServer(t, "")).Client
	ctx := context.Background()

	putResp, err := client.Put(ctx, "/somekey", "data")
	if err != nil {
		t.Fatalf("Put failed: %v", err)
	}

	t.Log("First compact on time 0")
	wantCompactRev := putResp.Header.Revision
	curTime, curRev, compactRev, err := etcd3.Compact(ctx, client, 0, wantCompactRev)
	if err != nil {
		t.Fatalf("compact failed: %v", err)
	}
	if compactRev != wantCompactRev {
		t.Errorf("Expect compact revision = %d, get = %d", wantCompactRev, compactRev)
	}
	if curTime != 1 {
		t.Errorf("Expect current logical time = 1, get = %v", curTime)
	}
	wantCurrentRev := putResp.Header.Revision + 1
	if curRev != wantCurrentRev {
		t.Errorf("Expect current revision = %d, get = %d", wantCurrentRev, curRev)
	}

	t.Log("Second compact on time 0")
	curTime2, curRev2, compactRev2, err := etcd3.Compact(ctx, client, 0, wantCompactRev+1)
	if err != nil {
		t.Fatalf("compact failed: %v", err)
	}
	if compactRev2 != wantCompactRev {
		t.Errorf("Expect compact revision = %d, get = %d", wantCompactRev, compactRev2)
	}
	if curTime != curTime2 {
		t.Errorf("Unexpected curTime (%v) != curTime2 (%v)", curTime, curTime2)
	}
	if curRev2 != wantCurrentRev {
		t.Errorf("Expect current revision = %d, get = %d", wantCurrentRev, curRev2)
	}

	t.Log("Third compact on time 1")
	curTime3, curRev3, compactRev3, err := etcd3.Compact(ctx, client, 1, wantCompactRev+1)
	if err != nil {
		t.Fatalf("compact failed: %v", err)
	}
	wantCompactRev++
	if compactRev3 != wantCompactRev {
		t.Errorf("Expect compact revision = %d, get = %d", wantCompactRev, compactRev3)
	}
	if curTime3 != 2 {
		t.Errorf("Expect current logical time = 2, get = %v", curTime3)
	}
	wantCurrentRev++
	if curRev3 != wantCurrentRev {
		t.Errorf("Expect current revision = %d, get = %d", wantCurrentRev, curRev3)
	}
}
