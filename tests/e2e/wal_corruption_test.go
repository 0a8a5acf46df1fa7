package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestCorruptWALStopsTheMemberNamingFileAndOffset: a WAL damaged in the
// middle (not a torn last write) must stop the member at start-up with an
// error that names the file and the byte offset, rather than serving data
// that may be wrong.
func TestCorruptWALStopsTheMemberNamingFileAndOffset(t *testing.T) {
	t.Parallel()
	m := testcluster.NewMember(t, testcluster.Config{})
	cli := m.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 50; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%02d", i), strings.Repeat("v", 200)); err != nil {
			t.Fatal(err)
		}
	}
	m.Stop()

	segs, err := filepath.Glob(filepath.Join(m.DataDir, "member", "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no WAL segment in %s: %v", m.DataDir, err)
	}
	seg := segs[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside the first put's value, which is followed by the
	// rest of the log: corruption, not a torn tail.
	i := strings.Index(string(b), strings.Repeat("v", 200))
	if i < 0 {
		t.Fatal("cannot find a put's value in the WAL")
	}
	b[i+100] ^= 0xff
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}

	m.Launch()
	select {
	case <-m.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("member started on a corrupt WAL:\n%s", m.Logs())
	}
	logs := m.Logs()
	if !strings.Contains(logs, filepath.Base(seg)) || !strings.Contains(logs, "offset") || !strings.Contains(logs, "corrupt") {
		t.Fatalf("member stopped without naming the corrupt file and offset:\n%s", logs)
	}
}
