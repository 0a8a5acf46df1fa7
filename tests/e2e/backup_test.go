package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/backup"
	"github.com/cairnkv/cairn/internal/testcluster"
)

// runTool runs a command line tool and returns its stdout, failing the
// test with its stderr if it fails.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// TestScheduledBackupsRotateAndRestore: a member with --backup-dir,
// --backup-interval=1s and --backup-retention=3 takes a backup each
// second while it is written to, keeps exactly the three newest (newer
// revisions than the first), exports cairn_backup_* metrics, and each
// backup verifies with cairnutl backup list, passes the official
// etcdutl's snapshot status, and restores with cairnutl into a member
// that serves exactly the keys written up to its revision. Cairn only
// (etcd has no scheduled backups).
func TestScheduledBackupsRotateAndRestore(t *testing.T) {
	if testcluster.Reference() {
		t.Skip("scheduled backups are Cairn's own")
	}
	dir := filepath.Join(t.TempDir(), "backups")
	m, cli, ctx := start(t, "--backup-dir="+dir, "--backup-interval=1s", "--backup-retention=3")

	// Write a key every 100ms, recording the revision of each, until
	// five backups have been taken, three of them after the first one
	// whose revision is noted (so that one must have been rotated out).
	putAt := map[int64]string{} // revision -> key written at it
	var firstBackupRev int64
	var firstN float64
	deadline := time.Now().Add(45 * time.Second)
	for i := 0; ; i++ {
		k := fmt.Sprintf("k/%04d", i)
		putAt[put(t, ctx, cli, k, "v"+k)] = k
		time.Sleep(100 * time.Millisecond)
		if i%5 != 0 {
			continue
		}
		n := gauge(t, ctx, m, "cairn_backup_successes_total")
		if n >= 1 && firstBackupRev == 0 {
			firstBackupRev = int64(gauge(t, ctx, m, "cairn_backup_last_revision"))
			firstN = gauge(t, ctx, m, "cairn_backup_successes_total")
		}
		if n >= 5 && firstN > 0 && n >= firstN+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %v backups in 45s:\n%s", n, m.Logs())
		}
	}
	if v := gauge(t, ctx, m, "cairn_backup_last_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("cairn_backup_last_success_timestamp_seconds = %v", v)
	}
	if v := gauge(t, ctx, m, "cairn_backup_size_bytes"); v <= 0 {
		t.Errorf("cairn_backup_size_bytes = %v", v)
	}
	gauge(t, ctx, m, "cairn_backup_duration_seconds") // present
	if v := gauge(t, ctx, m, "cairn_backup_failures_total"); v != 0 {
		t.Errorf("cairn_backup_failures_total = %v:\n%s", v, m.Logs())
	}
	if v := gauge(t, ctx, m, "cairn_backup_last_failure_timestamp_seconds"); v != 0 {
		t.Errorf("cairn_backup_last_failure_timestamp_seconds = %v", v)
	}
	// Stopped, the member leaves no attempt half-done: exactly the three
	// newest backups, all newer than the first one taken.
	m.Stop()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range names {
		files = append(files, e.Name())
	}
	var infos []backup.Info
	for _, n := range files {
		info, ok := backup.ParseName(n)
		if !ok {
			t.Fatalf("%s in the backup directory: %v", n, files)
		}
		infos = append(infos, info)
	}
	if len(infos) != 3 {
		t.Fatalf("backup directory holds %v, want 3 backups", files)
	}
	// Writes go on every 100ms, so revisions rise from one backup to the
	// next; a put stalled for over a second may leave two equal.
	for i, b := range infos {
		if b.Revision < firstBackupRev || (i > 0 && b.Revision < infos[i-1].Revision) {
			t.Fatalf("backups %v: want rising revisions from the first backup's %d", files, firstBackupRev)
		}
	}
	if infos[2].Revision <= firstBackupRev {
		t.Fatalf("backups %v: the newest is no newer than the first backup's revision %d", files, firstBackupRev)
	}

	var listed []backup.Entry
	out := runTool(t, testcluster.Cairnutl(t), "backup", "list", dir, "-w", "json")
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, e := range listed {
		if i >= len(infos) || e.Name != infos[i].Name || e.Revision != infos[i].Revision || !e.Verified || e.Size <= 0 {
			t.Fatalf("cairnutl backup list: %s", out)
		}
	}
	simple := runTool(t, testcluster.Cairnutl(t), "backup", "list", dir)
	if lines := strings.Split(strings.TrimSpace(simple), "\n"); len(lines) != 3 || !strings.HasSuffix(lines[2], ", true") {
		t.Fatalf("cairnutl backup list:\n%s", simple)
	}

	t.Run("etcdutl reads them", func(t *testing.T) {
		etcdutl := testcluster.Etcdutl(t)
		for _, b := range infos {
			var st struct {
				Revision int64 `json:"revision"`
				TotalKey int   `json:"totalKey"`
			}
			out := runTool(t, etcdutl, "snapshot", "status", filepath.Join(dir, b.Name), "-w", "json")
			if err := json.Unmarshal([]byte(out), &st); err != nil || st.Revision != b.Revision {
				t.Fatalf("etcdutl snapshot status %s: %s (%v)", b.Name, out, err)
			}
		}
	})

	// Each backup restores into a member serving what was written up to
	// its revision, and nothing after.
	c := testcluster.New(t, testcluster.Config{})
	r := c.Members[0]
	for _, b := range infos {
		r.Stop()
		if err := os.RemoveAll(r.DataDir); err != nil {
			t.Fatal(err)
		}
		runTool(t, testcluster.Cairnutl(t), "snapshot", "restore", filepath.Join(dir, b.Name), "--name", r.Name, "--data-dir", r.DataDir,
			"--initial-cluster", c.InitialClusterFlag(), "--initial-advertise-peer-urls", r.AdvertisePeerURL())
		r.Start()
		rcli := r.Client(t)
		resp := get(t, ctx, rcli, "k/", clientv3.WithPrefix())
		if resp.Header.Revision != b.Revision {
			t.Fatalf("restored from %s: revision %d", b.Name, resp.Header.Revision)
		}
		var want []string
		for rev, k := range putAt {
			if rev <= b.Revision {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		if got := keys(resp.Kvs); !slices.Equal(got, want) {
			t.Fatalf("restored from %s: %d keys %v..., want %d", b.Name, len(got), got[:min(3, len(got))], len(want))
		}
		for _, kv := range resp.Kvs {
			if string(kv.Value) != "v"+string(kv.Key) {
				t.Fatalf("restored from %s: %s", b.Name, kvString(kv))
			}
		}
	}
}

// waitGauge polls a member's gauge until ok accepts it.
func waitGauge(t *testing.T, m *testcluster.Member, name string, within time.Duration, ok func(float64) bool) float64 {
	t.Helper()
	ctx := testContext(t)
	deadline := time.Now().Add(within)
	for {
		v := gauge(t, ctx, m, name)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after %v:\n%s", name, v, within, m.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFailingBackupsNeverWedgeTheMember: with --backup-dir on a disk too
// small for a backup (a tmpfs of 16 KiB, four pages: an etcd-format
// snapshot of even an empty store has more), each attempt fails with a
// clear error, is counted, leaves nothing in the directory, and the
// member keeps serving writes; once the disk is grown the next interval
// succeeds. Needs root to mount the tmpfs.
func TestFailingBackupsNeverWedgeTheMember(t *testing.T) {
	if testcluster.Reference() {
		t.Skip("scheduled backups are Cairn's own")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	m, cli, ctx := start(t, "--backup-dir="+mnt, "--backup-interval=1s", "--backup-retention=2")
	put(t, ctx, cli, "k", "v")
	waitGauge(t, m, "cairn_backup_failures_total", 30*time.Second, func(v float64) bool { return v >= 2 })
	if v := gauge(t, ctx, m, "cairn_backup_last_failure_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("cairn_backup_last_failure_timestamp_seconds = %v", v)
	}
	if v := gauge(t, ctx, m, "cairn_backup_successes_total"); v != 0 {
		t.Fatalf("cairn_backup_successes_total = %v on a full disk", v)
	}
	if !strings.Contains(m.Logs(), "no space left on device") {
		t.Errorf("no ENOSPC in the member's log:\n%s", m.Logs())
	}
	for i := range 20 { // the member serves as ever
		put(t, ctx, cli, fmt.Sprintf("during/%d", i), "v")
	}
	if es, _ := os.ReadDir(mnt); len(es) != 0 {
		t.Fatalf("a failed backup left %v", es)
	}

	if out, err := exec.Command("mount", "-o", "remount,size=256m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v %s", err, out)
	}
	waitGauge(t, m, "cairn_backup_successes_total", 30*time.Second, func(v float64) bool { return v >= 1 })
	out := runTool(t, testcluster.Cairnutl(t), "backup", "list", mnt)
	if !strings.Contains(out, ", true") {
		t.Fatalf("cairnutl backup list after the disk grew:\n%s", out)
	}
}
