package restore

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// A snapshot saved from etcd 3.7.3 and restored with cairnutl serves
// exactly what etcd served: every key at every retained revision, the
// same compaction point, the same leases with the same keys. cairnutl's
// status of the file is etcdutl's, figure for figure.
func TestSnapshotFromEtcdRestoresIntoCairn(t *testing.T) {
	ctx := testContext(t)
	etcd := testcluster.New(t, testcluster.Config{Binary: testcluster.EtcdBinary(t)})
	fill(t, ctx, etcd.Client(t))
	want := readView(t, etcd.Members[0].Endpoint(), 1)
	snap := saveSnapshot(t, etcd.Members[0].Endpoint())

	for _, w := range []string{"json", "simple", "table", "fields"} {
		theirs := mustRun(t, testcluster.Etcdutl(t), "snapshot", "status", snap, "-w", w)
		ours := mustRun(t, testcluster.Cairnutl(t), "snapshot", "status", snap, "-w", w)
		if theirs != ours {
			t.Errorf("snapshot status -w %s:\ncairnutl %s\n etcdutl %s", w, ours, theirs)
		}
	}

	cairn := testcluster.New(t, testcluster.Config{})
	restoreInto(t, cairn, testcluster.Cairnutl(t), snap)
	got := readView(t, cairn.Members[0].Endpoint(), 1)
	diffViews(t, "Cairn restored from etcd's snapshot", want, got)

	// Watches replay the retained history as etcd's do.
	wantEv := watchAll(t, etcd.Client(t), want.Compact)
	gotEv := watchAll(t, cairn.Client(t), want.Compact)
	if wantEv != gotEv {
		t.Errorf("watch from revision %d:\n got %s\nwant %s", want.Compact, gotEv, wantEv)
	}
	// And it takes writes at the next revision.
	resp, err := cairn.Client(t).Put(ctx, "new", "1")
	if err != nil || resp.Header.Revision != want.Rev+1 {
		t.Fatalf("put after restore: rev %v, err %v; want rev %d", resp, err, want.Rev+1)
	}
}

// A snapshot saved from Cairn (its default format is etcd's) passes the
// official etcdutl's status and restore, and the etcd 3.7.3 started from
// it serves what Cairn served: teams can always go back.
func TestSnapshotFromCairnRestoresIntoEtcd(t *testing.T) {
	ctx := testContext(t)
	cairn := testcluster.New(t, testcluster.Config{})
	fill(t, ctx, cairn.Client(t))
	want := readView(t, cairn.Members[0].Endpoint(), 1)
	snap := saveSnapshot(t, cairn.Members[0].Endpoint())

	for _, w := range []string{"json", "table"} {
		theirs := mustRun(t, testcluster.Etcdutl(t), "snapshot", "status", snap, "-w", w)
		ours := mustRun(t, testcluster.Cairnutl(t), "snapshot", "status", snap, "-w", w)
		if theirs != ours {
			t.Errorf("snapshot status -w %s of Cairn's snapshot:\ncairnutl %s\n etcdutl %s", w, ours, theirs)
		}
	}
	etcd := testcluster.New(t, testcluster.Config{Binary: testcluster.EtcdBinary(t)})
	restoreInto(t, etcd, testcluster.Etcdutl(t), snap)
	got := readView(t, etcd.Members[0].Endpoint(), 1)
	diffViews(t, "etcd restored from Cairn's snapshot", want, got)
}

// The same snapshot restored on three members, each with its own name
// and URLs, makes a working three-member cluster: one leader, identical
// data and leases on every member, writes replicated.
func TestSnapshotRestoreStartsThreeMemberCluster(t *testing.T) {
	ctx := testContext(t)
	src := testcluster.New(t, testcluster.Config{})
	fill(t, ctx, src.Client(t))
	want := readView(t, src.Members[0].Endpoint(), 1)
	snap := saveSnapshot(t, src.Members[0].Endpoint())

	c := testcluster.New(t, testcluster.Config{Size: 3})
	restoreInto(t, c, testcluster.Cairnutl(t), snap)
	c.WaitLeader(t)
	members, err := c.Client(t).MemberList(ctx)
	if err != nil || len(members.Members) != 3 {
		t.Fatalf("member list after restore: %v, %v", members, err)
	}
	for _, m := range c.Members {
		diffViews(t, "member "+m.Name, want, readView(t, m.Endpoint(), 1))
	}
	resp, err := c.Client(t).Put(ctx, "after", "restore")
	if err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(t)
	for _, m := range c.Members {
		g, err := m.Client(t).Get(ctx, "after", clientv3.WithSerializable())
		if err != nil || len(g.Kvs) != 1 || g.Kvs[0].ModRevision != resp.Header.Revision {
			t.Fatalf("member %s after a write: %v %v", m.Name, g, err)
		}
	}
}

// --bump-revision N --mark-compacted, as etcdutl's: the restored store's
// revision is N above the snapshot's, everything below it is compacted
// (old watches and reads get ErrCompacted), the data is unchanged.
func TestSnapshotRestoreBumpsRevision(t *testing.T) {
	ctx := testContext(t)
	const bump = 1000
	var results []string
	for _, ref := range []struct {
		name, tool string
		bin        string
	}{{"etcd", testcluster.Etcdutl(t), testcluster.EtcdBinary(t)}, {"cairn", testcluster.Cairnutl(t), ""}} {
		src := testcluster.New(t, testcluster.Config{Binary: ref.bin})
		fill(t, ctx, src.Client(t))
		before := readView(t, src.Members[0].Endpoint(), 1)
		snap := saveSnapshot(t, src.Members[0].Endpoint())
		dst := testcluster.New(t, testcluster.Config{Binary: ref.bin})
		restoreInto(t, dst, ref.tool, snap, "--bump-revision", "1000", "--mark-compacted")
		cli := dst.Client(t)
		g, err := cli.Get(ctx, "", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if g.Header.Revision != before.Rev+bump {
			t.Errorf("%s: revision after a bump of %d is %d, want %d", ref.name, bump, g.Header.Revision, before.Rev+bump)
		}
		_, errOld := cli.Get(ctx, "k/00", clientv3.WithRev(before.Rev))
		wch := cli.Watch(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(before.Rev))
		wr := <-wch
		p, err := cli.Put(ctx, "next", "1")
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, strings.Join([]string{
			"old read: " + errString(errOld),
			"old watch compacted at: " + jsonString(wr.CompactRevision),
			"next put: +" + jsonString(p.Header.Revision-before.Rev),
			"keys: " + jsonString(len(g.Kvs)),
		}, "; "))
	}
	if results[0] != results[1] {
		t.Errorf("after --bump-revision %d --mark-compacted:\ncairn %s\n etcd %s", bump, results[1], results[0])
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// watchAll reads every event from rev up to the store's current revision.
func watchAll(t *testing.T, cli *clientv3.Client, rev int64) string {
	t.Helper()
	ctx := testContext(t)
	cur, err := cli.Get(ctx, "x-none")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	wch := cli.Watch(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithPrevKV())
	for wr := range wch {
		if err := wr.Err(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range wr.Events {
			b.WriteString(jsonString(ev) + "\n")
			if ev.Kv.ModRevision >= cur.Header.Revision {
				return b.String()
			}
		}
	}
	return b.String()
}

// Files that are not whole, valid snapshots are refused with a clear
// error and leave no data directory behind; so is a data directory that
// already exists. A copy of a data directory's db (no hash) needs
// --skip-hash-check, as with etcdutl.
func TestSnapshotRestoreRefusesBadInput(t *testing.T) {
	ctx := testContext(t)
	src := testcluster.New(t, testcluster.Config{})
	fill(t, ctx, src.Client(t))
	snap := saveSnapshot(t, src.Members[0].Endpoint())
	good, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0x40
	cases := []struct {
		name, file string
		args       []string
		want       string
	}{
		{"truncated", write("truncated.db", good[:len(good)/2]), nil, "snapshot missing hash but --skip-hash-check=false"},
		{"bit flipped", write("flipped.db", flipped), nil, "expected sha256"},
		{"unknown format", write("text.db", []byte(strings.Repeat("not a snapshot\n", 100))), nil, "unknown format"},
		{"empty", write("empty.db", nil), nil, "empty"},
		{"missing", filepath.Join(dir, "nope.db"), nil, "no such file"},
		{"no hash", write("nohash.db", good[:len(good)-32]), nil, "snapshot missing hash but --skip-hash-check=false"},
	}
	for _, tc := range cases {
		out := filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "-"))
		args := append([]string{"snapshot", "restore", tc.file, "--data-dir", out}, tc.args...)
		_, err := run(t, testcluster.Cairnutl(t), args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: restore error %v, want one containing %q", tc.name, err, tc.want)
		}
		if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
			t.Errorf("%s: a refused restore left %s behind", tc.name, out)
		}
		if ents, _ := filepath.Glob(out + "*"); len(ents) > 0 {
			t.Errorf("%s: a refused restore left %v behind", tc.name, ents)
		}
	}
	// A db without its hash whose pages are damaged: bbolt would fault
	// reading it (etcdutl 3.7.3 crashes on this file); cairnutl reads it
	// in a child process first and refuses it with an error.
	damaged := append([]byte(nil), good[:len(good)-32]...)
	for p := 2; p < len(damaged)/4096; p++ {
		for j := 16; j < 4096; j += 7 {
			damaged[p*4096+j] = 0xff
		}
	}
	dpath := write("damaged.db", damaged)
	for _, args := range [][]string{
		{"snapshot", "restore", dpath, "--skip-hash-check", "--data-dir", filepath.Join(dir, "out-damaged")},
		{"snapshot", "status", dpath},
	} {
		if _, err := run(t, testcluster.Cairnutl(t), args...); err == nil || !strings.Contains(err.Error(), "corrupt bbolt file") ||
			strings.Contains(err.Error(), "goroutine") {
			t.Errorf("%s of a damaged db: %v", args[1], err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out-damaged")); !os.IsNotExist(err) {
		t.Errorf("a refused restore of a damaged db left its data dir behind")
	}
	// The db without its hash restores with --skip-hash-check.
	out := filepath.Join(dir, "skip")
	mustRun(t, testcluster.Cairnutl(t), "snapshot", "restore", write("nohash2.db", good[:len(good)-32]), "--data-dir", out, "--skip-hash-check")
	// An existing, non-empty data directory is refused.
	if _, err := run(t, testcluster.Cairnutl(t), "snapshot", "restore", snap, "--data-dir", out); err == nil ||
		!strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore into an existing data dir: %v", err)
	}
	// --bump-revision without --mark-compacted is refused as etcdutl refuses it.
	if _, err := run(t, testcluster.Cairnutl(t), "snapshot", "restore", snap, "--data-dir", filepath.Join(dir, "b"), "--bump-revision", "5"); err == nil ||
		!strings.Contains(err.Error(), "--mark-compacted required if --revision-bump > 0") {
		t.Errorf("bump without mark-compacted: %v", err)
	}
}

// A disk that fills during a restore: cairnutl fails with the engine's or
// the WAL's "no space left on device", leaves no data directory (nor its
// temporary twin) behind, and leaves the snapshot file untouched. The
// target is a 4 MiB tmpfs, so the test needs root; it is skipped
// otherwise.
func TestSnapshotRestoreOnAFullDiskLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	ctx := testContext(t)
	src := testcluster.New(t, testcluster.Config{})
	cli := src.Client(t)
	for i := 0; i < 160; i++ { // 10 MiB of incompressible values: more than the tmpfs holds
		big := make([]byte, 64<<10)
		_, _ = rand.Read(big)
		if _, err := cli.Put(ctx, "big/"+jsonString(i), string(big)); err != nil {
			t.Fatal(err)
		}
	}
	snap := saveSnapshot(t, src.Members[0].Endpoint())
	before, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })

	out := filepath.Join(mnt, "restored")
	_, err = run(t, testcluster.Cairnutl(t), "snapshot", "restore", snap, "--data-dir", out)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("restore onto a full disk: %v, want an error naming ENOSPC", err)
	}
	if ents, _ := os.ReadDir(mnt); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("a restore that ran out of space left %v behind", names)
	}
	after, err := os.ReadFile(snap)
	if err != nil || string(after) != string(before) {
		t.Errorf("the snapshot file changed during a failed restore (err %v)", err)
	}
}
