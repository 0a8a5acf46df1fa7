package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestCrashKeepsEveryAcknowledgedWrite kills the member with SIGKILL in the
// middle of a write load and checks, after a restart, that every put the
// client saw succeed is there with exactly the revision it was told.
func TestCrashKeepsEveryAcknowledgedWrite(t *testing.T) {
	m, _, ctx := start(t)
	const writers = 16

	type ack struct {
		key string
		rev int64
	}
	acks := make([][]ack, writers)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	for w := range writers {
		// A client per writer, so one connection's failure stops one writer.
		wcli := m.Client(t)
		wg.Go(func() {
			for i := 0; ; i++ {
				k := fmt.Sprintf("crash/%02d/%06d", w, i)
				resp, err := wcli.Put(loadCtx, k, k)
				if err != nil {
					return // the crash, or the end of the load
				}
				acks[w] = append(acks[w], ack{k, resp.Header.Revision})
			}
		})
	}

	// Let the load run, then crash while it is in full flight.
	time.Sleep(1500 * time.Millisecond)
	m.Kill()
	stopLoad()
	wg.Wait()

	total := 0
	var maxRev int64
	revs := map[int64]string{}
	for _, as := range acks {
		total += len(as)
		for _, a := range as {
			if other, dup := revs[a.rev]; dup {
				t.Fatalf("puts of %s and %s both acknowledged at revision %d", other, a.key, a.rev)
			}
			revs[a.rev] = a.key
			maxRev = max(maxRev, a.rev)
		}
	}
	if total < 100 {
		t.Fatalf("only %d puts acknowledged before the crash; the load did not run", total)
	}
	t.Logf("%d puts acknowledged before SIGKILL, up to revision %d", total, maxRev)

	m.Start()
	cli := m.Client(t)
	resp, err := cli.Get(ctx, "crash/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = kv.ModRevision
	}
	lost := 0
	for _, as := range acks {
		for _, a := range as {
			r, ok := got[a.key]
			switch {
			case !ok:
				lost++
				if lost <= 5 {
					t.Errorf("acknowledged put of %s at revision %d is gone after the crash", a.key, a.rev)
				}
			case r != a.rev:
				t.Errorf("%s at revision %d after the crash; acknowledged at %d", a.key, r, a.rev)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged puts lost", lost, total)
	}
	if resp.Header.Revision < maxRev {
		t.Fatalf("revision %d after the crash; %d was acknowledged", resp.Header.Revision, maxRev)
	}
	// Writes that were in flight may or may not have landed, but the
	// history has no holes: every revision up to head is one of the puts.
	if int64(len(resp.Kvs)) != resp.Header.Revision-1 {
		t.Fatalf("%d keys at revision %d; want one per revision since 1", len(resp.Kvs), resp.Header.Revision)
	}
	// And the member takes writes again, after its last revision.
	if r := put(t, ctx, cli, "after", "crash"); r != resp.Header.Revision+1 {
		t.Fatalf("first put after the crash at %d; want %d", r, resp.Header.Revision+1)
	}
}

func TestRestartPreservesRevisionCompactionAndLeases(t *testing.T) {
	m, cli, ctx := start(t)
	for i := range 10 {
		put(t, ctx, cli, "k", fmt.Sprint(i)) // 2..11
	}
	if _, err := cli.Compact(ctx, 6); err != nil {
		t.Fatal(err)
	}
	l, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "leased", "v", clientv3.WithLease(l.ID)) // 12
	short, err := cli.Grant(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "short", "v", clientv3.WithLease(short.ID)) // 13
	before, err := cli.TimeToLive(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	measured := time.Now()

	// A crash first: what was acknowledged must be durable without the
	// flush a graceful stop makes. Then a graceful stop.
	for _, how := range []string{"kill", "stop"} {
		if how == "stop" {
			m.Stop()
		} else {
			m.Kill()
		}
		m.Start()
		cli = m.Client(t)

		if r := rev(t, ctx, cli); r < 13 {
			t.Fatalf("after %s: revision %d; want at least 13", how, r)
		}
		_, err = cli.Get(ctx, "k", clientv3.WithRev(5))
		wantErr(t, err, rpctypes.ErrGRPCCompacted)
		if kv := get(t, ctx, cli, "k", clientv3.WithRev(6)).Kvs[0]; string(kv.Value) != "4" {
			t.Fatalf("after %s: k at 6 = %s", how, kvString(kv))
		}
		_, err = cli.Compact(ctx, 6)
		wantErr(t, err, rpctypes.ErrGRPCCompacted)

		ttl, err := cli.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatal(err)
		}
		// The lease lost no time to the restart beyond the wall clock's.
		elapsed := int64(time.Since(measured)/time.Second) + 1
		if ttl.GrantedTTL != 60 || ttl.TTL < before.TTL-elapsed || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "leased" {
			t.Fatalf("after %s: lease granted %d remaining %d keys %q; before: remaining %d, %ds ago",
				how, ttl.GrantedTTL, ttl.TTL, ttl.Keys, before.TTL, elapsed)
		}
		if kv := get(t, ctx, cli, "leased").Kvs[0]; kv.Lease != int64(l.ID) {
			t.Fatalf("after %s: leased key %s", how, kvString(kv))
		}
		if ka, err := cli.KeepAliveOnce(ctx, l.ID); err != nil || ka.TTL != 60 {
			t.Fatalf("after %s: keep-alive %v %v", how, ka, err)
		}
	}

	// The short lease still expires after the restarts, and takes its key.
	deadline := time.Now().Add(20 * time.Second)
	for get(t, ctx, cli, "short", clientv3.WithCountOnly()).Count != 0 {
		if time.Now().After(deadline) {
			t.Fatal("key of a 3s lease still there 20s after restarts")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUnsafeNoFsync: with --unsafe-no-fsync writes are served and the
// WAL is never fsynced (the fsync histogram stays empty), as in etcd
// 3.7.3, against which the test also passes.
func TestUnsafeNoFsync(t *testing.T) {
	m, cli, ctx := start(t, "--unsafe-no-fsync")
	for i := range 20 {
		put(t, ctx, cli, fmt.Sprintf("k%d", i), "v")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// etcd fsyncs twice while it creates the WAL; 20 puts would be 20 more.
	if n := fsyncCount(string(b)); n < 0 || n > 5 {
		t.Fatalf("the WAL was fsynced %d times for 20 puts", n)
	}
	if !testcluster.Reference() && !strings.Contains(m.Logs(), "--unsafe-no-fsync is set") {
		t.Error("no start-up warning about --unsafe-no-fsync")
	}
}

// fsyncCount reads etcd_disk_wal_fsync_duration_seconds_count from a
// /metrics body (-1 if absent).
func fsyncCount(body string) int {
	const name = "\netcd_disk_wal_fsync_duration_seconds_count "
	i := strings.Index(body, name)
	if i < 0 {
		return -1
	}
	var n int
	fmt.Sscan(body[i+len(name):], &n)
	return n
}
