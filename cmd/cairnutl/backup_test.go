package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/backup"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/snapshot"
	"github.com/cairnkv/cairn/storage"
)

// writeBackup writes an etcd snapshot of a store at rev into dir under
// the backup name for at, and returns that name.
func writeBackup(t *testing.T, dir string, at time.Time, rev int64) string {
	t.Helper()
	eng, err := storage.OpenPebble("", storage.PebbleOptions{InMemory: true, Split: mvcc.SplitKey})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	b := eng.NewWriteBatch()
	defer b.Close()
	for r := int64(2); r <= rev; r++ {
		if err := mvcc.ImportVersion(b, &mvcc.Version{Key: fmt.Appendf(nil, "k%d", r), Value: []byte("v"), Create: r, Mod: r, Ver: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := mvcc.ImportMeta(b, mvcc.Meta{Rev: rev}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	name := backup.Name(at, rev, "etcd")
	if _, _, err := snapshot.WriteEtcd(eng, filepath.Join(dir, name), snapshot.EtcdOptions{Term: 1}); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestBackupList(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 4, 18, 30, 0, 0, time.UTC)
	older := writeBackup(t, dir, at, 5)
	newer := writeBackup(t, dir, at.Add(30*time.Minute), 9)
	for _, n := range []string{"notes.txt", "cairn-backup-20261204T190000Z-0badf00d.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	list := func(w string) (string, string, int) {
		var out, errb strings.Builder
		code := run([]string{"backup", "list", dir, "-w", w}, &out, &errb)
		return out.String(), errb.String(), code
	}

	out, errs, code := list("simple")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], older+", 2026-12-04T18:30:00Z, 5, ") ||
		!strings.HasPrefix(lines[1], newer+", 2026-12-04T19:00:00Z, 9, ") || !strings.HasSuffix(lines[1], ", true") {
		t.Fatalf("simple (exit %d):\n%s%s", code, out, errs)
	}
	out, _, code = list("table")
	if code != 0 || !strings.Contains(out, "REVISION") || !strings.Contains(out, newer) {
		t.Fatalf("table (exit %d):\n%s", code, out)
	}
	out, _, code = list("json")
	var entries []backup.Entry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || code != 0 || len(entries) != 2 ||
		entries[1].Revision != 9 || !entries[1].Verified || entries[1].Size == 0 {
		t.Fatalf("json (exit %d, %v):\n%s", code, err, out)
	}

	// A damaged backup is listed as such, and the command fails.
	p := filepath.Join(dir, older)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = list("simple")
	if code != exitError || !strings.Contains(out, older+", ") || !strings.Contains(out, "false: verify:") ||
		!strings.Contains(errs, "1 of 2 backups") {
		t.Fatalf("with a damaged backup (exit %d):\n%s%s", code, out, errs)
	}

	if _, errs, code := list("protobuf"); code != exitBadArgs {
		t.Fatalf("-w protobuf: exit %d %s", code, errs)
	}
	var errb strings.Builder
	if code := run([]string{"backup", "list", filepath.Join(dir, "missing")}, &strings.Builder{}, &errb); code != exitError {
		t.Fatalf("missing directory: exit %d %s", code, errb.String())
	}
}
