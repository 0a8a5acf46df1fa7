package faults

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
	"github.com/cairnkv/cairn/tests/faults/powerfs"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// oneMember starts a lone member whose data dir is on a fresh powerfs.
func oneMember(t *testing.T, flags ...string) (*disk, *testcluster.Member) {
	t.Helper()
	d := newDisk(t)
	m := testcluster.NewMember(t, testcluster.Config{
		Flags:   append(append([]string(nil), serverFlags...), flags...),
		DataDir: func(name string) string { return filepath.Join(d.mnt, name+".data") },
	})
	return d, m
}

// fullDiskStops runs a write load on a lone member, fills the disk for
// the files match picks (their writes fail with ENOSPC) and expects the
// member to stop with an error that says so and names a file ending in
// fileSuffix. The space is then freed, the power cut (so only what was
// synced counts) and the member restarted: it must start on what the
// disk holds and serve every acknowledged write.
func fullDiskStops(t *testing.T, match func(string) bool, fileSuffix string, flags ...string) {
	d, m := oneMember(t, flags...)
	stop := make(chan struct{})
	got := make(chan []ack)
	go func() { got <- load(t, []string{m.ClientURL}, 4, "nospc", stop) }()
	time.Sleep(700 * time.Millisecond)
	d.fs.FailWrite(match, syscall.ENOSPC)
	select {
	case <-m.Exited():
	case <-time.After(30 * time.Second):
		close(stop)
		<-got
		t.Fatalf("the member still runs 30s after its disk filled up (%d writes failed); its output:\n%s", d.fs.Stats().FailedWrites, tail(m.Logs(), 20))
	}
	close(stop)
	acks := <-got
	logs := m.Logs()
	line := lastLine(logs, "no space left on device")
	if line == "" {
		t.Fatalf("the member stopped without naming the full disk:\n%s", tail(logs, 20))
	}
	if !strings.Contains(line, fileSuffix) {
		t.Errorf("the error does not name the %s file: %s", fileSuffix, line)
	}
	t.Logf("the member stopped after %d failed writes: %s", d.fs.Stats().FailedWrites, line)
	d.fs.FailWrite(nil, 0)
	d.cut(t)
	m.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mustHold(t, ctx, m.ClientURL, acks, "after the full disk, a power cut and a restart")
	cli := m.Client(t)
	if _, err := cli.Put(ctx, "k/after", "v"); err != nil {
		t.Fatalf("a put after the space was freed: %v", err)
	}
	t.Logf("%d acknowledged writes, all there after the restart; the member serves again", len(acks))
}

// TestENOSPCWAL: the WAL's disk fills up under load. The member stops
// with the error (it cannot append what it must sync before answering),
// never answers for a write the WAL did not take, and starts again once
// there is space.
func TestENOSPCWAL(t *testing.T) {
	fullDiskStops(t, powerfs.HasSuffix(".wal"), ".wal")
}

// TestENOSPCEngine: the engine's disk fills up (its table files cannot
// be written, so flushes fail). The WAL still takes writes, so nothing
// acknowledged is at risk, but an engine that cannot flush never lets
// the WAL be released and Pebble retries the flush in a busy loop: the
// member stops with the error naming the table file, and after the space
// is freed it replays its WAL and serves again.
func TestENOSPCEngine(t *testing.T) {
	fullDiskStops(t, powerfs.HasSuffix(".sst"), ".sst")
}

// snapshotSHA256 checks the SHA-256 etcd appends to a snapshot file.
func snapshotSHA256(data []byte) error {
	if len(data) < sha256.Size+512 {
		return fmt.Errorf("snapshot of %d bytes is too short", len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if h := sha256.Sum256(body); !bytes.Equal(h[:], sum) {
		return fmt.Errorf("snapshot SHA-256 mismatch")
	}
	return nil
}

// TestENOSPCSnapshotDir: the disk is full for the etcd-format snapshot
// file a member builds under member/snap for Maintenance.Snapshot. The
// RPC fails, the member keeps serving, the half-written file is removed,
// and once there is space the next snapshot is whole (its SHA-256 holds).
func TestENOSPCSnapshotDir(t *testing.T) {
	d, m := oneMember(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := m.Client(t)
	for i := range 200 {
		if _, err := cli.Put(ctx, fmt.Sprintf("k/%d", i), strings.Repeat("v", 200)); err != nil {
			t.Fatal(err)
		}
	}
	d.fs.FailWrite(powerfs.HasSuffix(".snapshot"), syscall.ENOSPC)
	sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
	_, err := readSnapshot(sctx, cli)
	scancel()
	if err == nil {
		t.Fatal("Maintenance.Snapshot succeeded on a full disk")
	}
	t.Logf("Maintenance.Snapshot on a full disk: %v (%d writes failed)", err, d.fs.Stats().FailedWrites)
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("the error does not say the disk is full: %v", err)
	}
	if !m.Running() {
		t.Fatalf("the member stopped:\n%s", tail(m.Logs(), 60))
	}
	if _, err := cli.Put(ctx, "k/during", "v"); err != nil {
		t.Fatalf("a put after the failed snapshot: %v", err)
	}
	snapDir := filepath.Join(m.DataDir, "member", "snap")
	if left, _ := filepath.Glob(filepath.Join(snapDir, "*.snapshot")); len(left) > 0 {
		t.Errorf("the failed snapshot left %v behind", left)
	}
	d.fs.FailWrite(nil, 0)
	data, err := readSnapshot(ctx, cli)
	if err != nil {
		t.Fatalf("Maintenance.Snapshot once there is space: %v", err)
	}
	if err := snapshotSHA256(data); err != nil {
		t.Fatal(err)
	}
	t.Logf("once there is space, a snapshot of %d bytes whose SHA-256 holds", len(data))
}

func readSnapshot(ctx context.Context, cli *clientv3.Client) ([]byte, error) {
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestENOSPCSnapshotReceive: a follower that fell behind the leader's
// log must take a snapshot, and its disk is full for the incoming file.
// It keeps running (the leader tries again), and once there is space it
// takes the snapshot and holds every acknowledged write.
func TestENOSPCSnapshotReceive(t *testing.T) {
	f, fd, acks := followerBehind(t, "behind")
	fd.fs.FailWrite(func(name string) bool { return strings.HasPrefix(name, "incoming-") }, syscall.ENOSPC)
	f.Launch() // it cannot be ready before it has the snapshot
	deadline := time.Now().Add(20 * time.Second)
	for fd.fs.Stats().FailedWrites < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := fd.fs.Stats().FailedWrites; n < 2 {
		t.Fatalf("the follower did not try to receive a snapshot twice within 20s (%d failed writes)", n)
	}
	if !f.Running() {
		t.Fatalf("the follower stopped on a full disk for a received snapshot:\n%s", tail(f.Logs(), 20))
	}
	t.Logf("the follower's disk refused %d snapshot writes; it still runs: %s", fd.fs.Stats().FailedWrites, lastLine(f.Logs(), "no space left"))
	fd.fs.FailWrite(nil, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mustHold(t, ctx, f.ClientURL, acks, "on the follower once it had space")
	if !strings.Contains(f.Logs(), "restored the store from a snapshot") {
		t.Errorf("the follower caught up without a snapshot: the test did not test what it claims")
	}
	t.Logf("once there was space the follower took the snapshot: %d acknowledged writes, all there", len(acks))
}

// TestENOSPCEngineManifest: the disk is full for the engine's MANIFEST
// (the log of which table files make up the engine), so the first flush
// writes its table but cannot record it. Pebble cannot go on; the member
// must stop naming the file, and start again once there is room.
func TestENOSPCEngineManifest(t *testing.T) {
	fullDiskStops(t, func(name string) bool { return strings.HasPrefix(name, "MANIFEST-") }, "MANIFEST-")
}

// followerBehind starts three members, each on its own disk, with a short
// log (--snapshot-count=200, --snapshot-catchup-entries=50), stops a
// follower and writes under prefix through the other two for 1.5 s, so
// the follower, once started again, must take a snapshot from the leader.
// It returns the stopped follower, its disk and the acknowledged writes.
func followerBehind(t *testing.T, prefix string) (*testcluster.Member, *disk, []ack) {
	t.Helper()
	disks := []*disk{newDisk(t), newDisk(t), newDisk(t)}
	next := 0
	c := testcluster.New(t, testcluster.Config{
		Size:  3,
		Flags: []string{"--snapshot-count=200", "--snapshot-catchup-entries=50"},
		DataDir: func(name string) string {
			d := disks[next]
			next++
			return filepath.Join(d.mnt, name+".data")
		},
	})
	fi := (leaderIndex(t, c) + 1) % 3
	f := c.Members[fi]
	f.Stop()
	var eps []string
	for i, m := range c.Members {
		if i != fi {
			eps = append(eps, m.ClientURL)
		}
	}
	stop := make(chan struct{})
	got := make(chan []ack)
	go func() { got <- load(t, eps, 4, prefix, stop) }()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	return f, disks[fi], <-got
}
