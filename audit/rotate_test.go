package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRotationKeepsMaxBackups(t *testing.T) {
	for _, backups := range []int{0, 1, 3} {
		t.Run(fmt.Sprint("backups=", backups), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.log")
			const max = 4096
			s, err := openFileSink(path, max, backups, discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			l := newLog(Config{Path: path, BufferSize: 100000}, s, time.Hour)
			const n = 2000 // about 100 bytes a line: ~50 files' worth
			for i := 0; i < n; i++ {
				l.Record(Entry{Method: "/etcdserverpb.KV/Put", Key: []byte("/k"), Code: "OK", Revision: int64(i + 1)})
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			want := []string{"audit.log"}
			for i := 1; i <= backups; i++ {
				want = append(want, fmt.Sprintf("audit.log.%d", i))
			}
			slices.Sort(names)
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Fatalf("files %v, want %v", names, want)
			}
			// Oldest first: path.backups, ..., path.1, path. Revisions
			// must increase across them with no gap, ending at n.
			var revs []float64
			for i := backups; i >= 0; i-- {
				p := path
				if i > 0 {
					p = fmt.Sprintf("%s.%d", path, i)
				}
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() > max {
					t.Errorf("%s is %d bytes, over the %d limit", p, st.Size(), max)
				}
				for _, m := range readLines(t, p) {
					revs = append(revs, m["revision"].(float64))
				}
			}
			for i := 1; i < len(revs); i++ {
				if revs[i] != revs[i-1]+1 {
					t.Fatalf("revision %v follows %v", revs[i], revs[i-1])
				}
			}
			if len(revs) == 0 || revs[len(revs)-1] != n {
				t.Fatalf("last revision %v, want %d", revs[len(revs)-1:], n)
			}
		})
	}
}

func TestRotationOfAnOversizedLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	s, err := openFileSink(path, 100, 2, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	small := []byte(`{"a":1}` + "\n")
	big := []byte(`{"k":"` + strings.Repeat("x", 300) + `"}` + "\n")
	for _, p := range [][]byte{small, append(append([]byte{}, big...), small...)} {
		if err := s.write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	// small went to the first file, big to one of its own, small again to a third.
	for p, want := range map[string]string{path + ".2": string(small), path + ".1": string(big), path: string(small)} {
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
}

// MaxSizeMB reaches the sink as bytes, and an existing file's size
// counts toward it.
func TestOpenRotatesAFileAlreadyOverTheLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(path, []byte(strings.Repeat("{}\n", (1<<20)/3+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(Config{Path: path, MaxSizeMB: 1, MaxBackups: 1})
	if err != nil {
		t.Fatal(err)
	}
	l.Record(Entry{Method: "/etcdserverpb.KV/Put", Code: "OK"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(readLines(t, path)); got != 1 {
		t.Fatalf("%d lines in the new file, want 1", got)
	}
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatal(err)
	}
}
