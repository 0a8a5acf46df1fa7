package faults

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// flipByte flips one bit of the byte at off in the file at path and
// returns the byte's old value.
func flipByte(t *testing.T, path string, off int64) byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	old := b[0]
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	return old
}

// fillKeys writes n keys, ten to a txn, with values that say which key they belong to.
func fillKeys(t *testing.T, m *testcluster.Member, n int) map[string]string {
	t.Helper()
	cli := m.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := map[string]string{}
	var ops []clientv3.Op
	for i := range n {
		k, v := fmt.Sprintf("k/%05d", i), fmt.Sprintf("value-of-%05d-%s", i, strings.Repeat("x", 100))
		ops = append(ops, clientv3.OpPut(k, v))
		want[k] = v
		if len(ops) == 10 || i == n-1 {
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	return want
}

// exitsWith launches m, which must exit within 30s without serving, and
// returns its output.
func exitsWith(t *testing.T, m *testcluster.Member) string {
	t.Helper()
	m.Launch()
	select {
	case <-m.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("the member runs on a corrupt data dir; its output:\n%s", tail(m.Logs(), 20))
	}
	return m.Logs()
}

// TestBitFlipWALRecord: a byte in a WAL record in the middle of the log
// (records follow it, so it is not a torn tail) changes while the member
// is down. It must refuse to start, naming the segment and the offset.
func TestBitFlipWALRecord(t *testing.T) {
	m := testcluster.NewMember(t, testcluster.Config{Flags: []string{"--snapshot-count=1000000"}})
	fillKeys(t, m, 300)
	m.Stop()
	segs, _ := filepath.Glob(filepath.Join(m.DataDir, "member", "wal", "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("want one WAL segment, have %v", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	used := int64(len(bytes.TrimRight(data, "\x00")))
	off := used / 2
	flipByte(t, segs[0], off)
	logs := exitsWith(t, m)
	line := lastLine(logs, "corrupt record in")
	if line == "" {
		t.Fatalf("the member did not report a corrupt WAL record:\n%s", tail(logs, 20))
	}
	if !strings.Contains(line, segs[0]) {
		t.Errorf("the error does not name the segment %s: %s", segs[0], line)
	}
	mo := regexp.MustCompile(`at offset (\d+): checksum mismatch, and a valid record follows at offset (\d+)`).FindStringSubmatch(line)
	if mo == nil {
		t.Fatalf("the error does not name the bad record's offset and the valid one after it: %s", line)
	}
	var at, follows int64
	fmt.Sscan(mo[1], &at)
	fmt.Sscan(mo[2], &follows)
	// The named record is the one that holds the flipped byte.
	if at > off || follows <= off {
		t.Errorf("the error names the record at %d (next at %d), the flipped byte is at %d", at, follows, off)
	}
	t.Logf("flipped the byte at %d of %d used: %s", off, used, line)
}

// TestBitFlipEngineTable: a byte in the middle of one of Pebble's table
// files changes while the member is down. Every block carries a
// checksum: the member must refuse to start, or refuse the reads that
// touch the block with an error naming the table, and never return a
// value other than the one written.
func TestBitFlipEngineTable(t *testing.T) {
	m := testcluster.NewMember(t, testcluster.Config{Flags: []string{"--snapshot-count=1000000"}})
	want := fillKeys(t, m, 2000)
	m.Stop() // closing flushes the memtables into a table
	ssts, _ := filepath.Glob(filepath.Join(m.DataDir, "member", "db", "*.sst"))
	var big string
	var size int64
	for _, p := range ssts {
		if st, err := os.Stat(p); err == nil && st.Size() > size {
			big, size = p, st.Size()
		}
	}
	if big == "" {
		t.Fatalf("no table file in %s", filepath.Join(m.DataDir, "member", "db"))
	}
	off := size / 3 // among the data blocks
	flipByte(t, big, off)
	table := strings.TrimSuffix(filepath.Base(big), ".sst")
	t.Logf("flipped the byte at %d of %s (%d bytes)", off, big, size)
	m.Launch()
	if err := waitStarted(m, 30*time.Second); err != nil {
		// Refusing to start is fine if the error names the table.
		line := lastLine(m.Logs(), table)
		if line == "" {
			t.Fatalf("the member did not start, and its output does not name table %s: %v", table, err)
		}
		t.Logf("the member refused to start: %s", line)
		return
	}
	cli := m.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	served, refused := 0, 0
	var refusal string
	check := func(kvs map[string]string, err error) {
		if err != nil {
			refused++
			if refusal == "" {
				refusal = err.Error()
			}
			return
		}
		for k, v := range kvs {
			if want[k] != v {
				t.Errorf("served wrong data: %s = %q, written %q", k, v, want[k])
			}
			served++
		}
	}
	// One range over everything, then every key alone (a point read
	// may take another path: bloom filters, the key's newest version).
	resp, err := cli.Get(ctx, "k/", clientv3.WithPrefix())
	kvs := map[string]string{}
	if err == nil {
		for _, kv := range resp.Kvs {
			kvs[string(kv.Key)] = string(kv.Value)
		}
		if len(kvs) != len(want) && refused == 0 {
			t.Errorf("a range over every key returned %d of %d keys and no error", len(kvs), len(want))
		}
	}
	check(kvs, err)
	for k := range want {
		if !m.Running() {
			break // it stopped on the corruption: nothing more to ask
		}
		resp, err := cli.Get(ctx, k)
		one := map[string]string{}
		if err == nil {
			for _, kv := range resp.Kvs {
				one[string(kv.Key)] = string(kv.Value)
			}
			if len(one) == 0 {
				t.Errorf("%s: not found and no error", k)
			}
		}
		check(one, err)
	}
	stopped := lastLine(m.Logs(), "member stopped")
	switch {
	case refused == 0 && m.Running():
		t.Fatalf("every read of the %d keys succeeded after a byte of %s changed: the corruption was not detected", len(want), big)
	case refused > 0 && !strings.Contains(refusal, table) && !strings.Contains(stopped, big):
		// The client may see the member go away rather than the error.
		t.Errorf("reads were refused (%d), but neither the error nor the member's output names table %s: %s; %s", refused, table, refusal, stopped)
	}
	t.Logf("%d values served, all as written; %d reads refused: %s; member running: %v", served, refused, refusal, m.Running())
	if stopped != "" {
		t.Logf("the member stopped: %s", stopped)
	}
}

// TestBitFlipClientSnapshot: a snapshot saved by the official etcdctl
// loses a bit on disk. cairnutl must refuse to restore it (etcd's
// SHA-256 at the end of the file), naming the file, and write no data
// dir.
func TestBitFlipClientSnapshot(t *testing.T) {
	etcdctl := testcluster.Etcdctl(t)
	m := testcluster.NewMember(t, testcluster.Config{})
	fillKeys(t, m, 200)
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	if out, err := exec.Command(etcdctl, "--endpoints", m.ClientURL, "snapshot", "save", file).CombinedOutput(); err != nil {
		t.Fatalf("etcdctl snapshot save: %v\n%s", err, out)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, file, st.Size()/2)
	restored := filepath.Join(dir, "restored")
	out, err := exec.Command(testcluster.Cairnutl(t), "snapshot", "restore", file, "--data-dir", restored).CombinedOutput()
	if err == nil {
		t.Fatalf("cairnutl restored a corrupt snapshot:\n%s", out)
	}
	// The error line is etcdutl's ("expected sha256 ..., got ..."); the
	// file is named by the line before it.
	if !strings.Contains(string(out), file) || !strings.Contains(string(out), "expected sha256") {
		t.Errorf("the output does not name the file and the checksum:\n%s", out)
	}
	if _, err := os.Stat(restored); err == nil {
		t.Errorf("a failed restore left %s behind", restored)
	}
	t.Logf("cairnutl snapshot restore refused it: %s", tail(string(out), 1))
}

// TestBitFlipReceivedSnapshot: a follower far behind the leader takes a
// snapshot, and its disk flips a bit of the file as it is written. The
// follower must notice (the snapshot's SHA-256) before it restores from
// it, refuse it, get it again from the leader and end up with every
// acknowledged write.
func TestBitFlipReceivedSnapshot(t *testing.T) {
	f, fd, acks := followerBehind(t, "flip")
	fd.fs.FlipWrite(func(name string) bool { return strings.HasPrefix(name, "incoming-") })
	f.Launch()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitStarted(f, 30*time.Second); err != nil {
		t.Fatalf("the follower did not come back after a corrupted snapshot: %v", err)
	}
	mustHold(t, ctx, f.ClientURL, acks, "on the follower")
	if fd.fs.Stats().FlippedBytes != 1 {
		t.Fatalf("no byte was flipped: the follower took no snapshot")
	}
	line := lastLine(f.Logs(), "SHA-256")
	if line == "" || !strings.Contains(line, "incoming-") {
		t.Errorf("the follower's output does not name the corrupt file and the checksum: %q", line)
	}
	t.Logf("the corrupt snapshot was refused (%s); the next one was taken: %d acknowledged writes, all there", line, len(acks))
}
