package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairnkv/cairn/internal/testcluster"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/storage"
)

// TestDivergedFollowerRaisesCorrupt: a follower whose store is changed
// behind raft's back (one value flipped on disk while it is stopped) is
// caught by the leader's periodic hash comparison: a CORRUPT alarm is
// raised for it, and the cluster then refuses client requests with
// etcd's "corrupt cluster" rather than serve a diverged store.
//
// This test reaches into the member's storage engine, so it runs against
// Cairn only.
func TestDivergedFollowerRaisesCorrupt(t *testing.T) {
	if os.Getenv("CAIRN_TESTCLUSTER_BINARY") != "" {
		t.Skip("tampers with Cairn's on-disk store")
	}
	c := testcluster.New(t, testcluster.Config{Size: 3, Flags: []string{"--corrupt-check-time=500ms"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := clientOf(t, c.Members...)
	putN(t, ctx, cli, "data/", 50, 2)

	leader := c.WaitLeader(t)
	victim := others(c, leader)[0]
	victim.Stop()
	eng, err := storage.OpenPebble(filepath.Join(victim.DataDir, "member", "db"), storage.PebbleOptions{Split: mvcc.SplitKey})
	if err != nil {
		t.Fatal(err)
	}
	it, err := eng.NewIter([]byte{'k'}, []byte{'l'})
	if err != nil {
		t.Fatal(err)
	}
	if !it.Last() {
		t.Fatal("no key-value in the follower's store")
	}
	k := append([]byte(nil), it.Key()...)
	v := append([]byte(nil), it.Value()...)
	it.Close()
	v[len(v)-1] ^= 0x01
	b := eng.NewWriteBatch()
	if err := b.Set(k, v); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	victim.Launch() // not Start: it may never look ready again, which is the point

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := cli.AlarmList(ctx)
		if err == nil {
			for _, a := range resp.Alarms {
				if a.Alarm == pb.AlarmType_CORRUPT {
					_, err := cli.Put(ctx, "after", "x")
					if !errors.Is(err, rpctypes.ErrCorrupt) {
						t.Fatalf("put with a CORRUPT alarm raised: %v; want %v", err, rpctypes.ErrCorrupt)
					}
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CORRUPT alarm 30s after a follower's store diverged (last error %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
