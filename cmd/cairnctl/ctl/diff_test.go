package ctl

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func unified(before, after string) string {
	var b bytes.Buffer
	writeUnified(&b, diffLines(splitLines(before), splitLines(after)), func(s string) string { return s })
	return b.String()
}

func TestUnifiedDiffReadsAsDiffU(t *testing.T) {
	for _, tc := range []struct {
		name, before, after, want string
	}{
		{"same", "a\nb\n", "a\nb\n", ""},
		{"both empty", "", "", ""},
		{"one line, no newline", "a", "b", "@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n"},
		{"created", "", "x\ny\n", "@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"emptied", "x\ny\n", "", "@@ -1,2 +0,0 @@\n-x\n-y\n"},
		{"newline added", "a", "a\n", "@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+a\n"},
		{"middle change with context",
			"1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nX\n6\n7\n8\n9\n",
			"@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+X\n 6\n 7\n 8\n"},
		{"insertion at the start", "b\nc\n", "a\nb\nc\n", "@@ -1,2 +1,3 @@\n+a\n b\n c\n"},
		{"two hunks",
			"a\n1\n2\n3\n4\n5\n6\n7\nb\n", "A\n1\n2\n3\n4\n5\n6\n7\nB\n",
			"@@ -1,4 +1,4 @@\n-a\n+A\n 1\n 2\n 3\n@@ -6,4 +6,4 @@\n 5\n 6\n 7\n-b\n+B\n"},
		{"changes six apart merge",
			"a\n1\n2\n3\n4\n5\n6\nb\n", "A\n1\n2\n3\n4\n5\n6\nB\n",
			"@@ -1,8 +1,8 @@\n-a\n+A\n 1\n 2\n 3\n 4\n 5\n 6\n-b\n+B\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unified(tc.before, tc.after); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestUnifiedDiffAppliesAndIsShortest checks random diffs against a model:
// patch(1)'s reading of the hunks must turn the old value into the new
// one, and the script must be as short as GNU diff --minimal's.
func TestUnifiedDiffAppliesAndIsShortest(t *testing.T) {
	patch, perr := exec.LookPath("patch")
	diff, derr := exec.LookPath("diff")
	if perr != nil || derr != nil {
		t.Skip("needs patch and diff")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	randValue := func() string {
		var sb strings.Builder
		for range r.IntN(15) {
			sb.WriteString(string(rune('a'+r.IntN(4))) + "\n")
		}
		s := sb.String()
		if s != "" && r.IntN(4) == 0 {
			s = strings.TrimSuffix(s, "\n")
		}
		return s
	}
	changed := regexp.MustCompile(`(?m)^[-+]`)
	for i := range 200 {
		before, after := randValue(), randValue()
		hunks := unified(before, after)
		if before == after {
			if hunks != "" {
				t.Fatalf("case %d: equal values, diff %q", i, hunks)
			}
			continue
		}
		old, new := filepath.Join(dir, "old"), filepath.Join(dir, "new")
		writeFile(t, old, before)
		writeFile(t, new, after)

		// No fuzz, and no offset either: the line numbers must be right.
		patched := filepath.Join(dir, "patched")
		cmd := exec.Command(patch, "--fuzz=0", "-o", patched, old)
		cmd.Stdin = strings.NewReader("--- old\n+++ new\n" + hunks)
		msgs, err := cmd.CombinedOutput()
		out, _ := os.ReadFile(patched)
		if err != nil || string(out) != after || bytes.Contains(msgs, []byte("offset")) {
			t.Fatalf("case %d: patch %q with\n%s\ngot %q (%v: %s), want %q", i, before, hunks, out, err, msgs, after)
		}

		ref, _ := exec.Command(diff, "--minimal", "-U0", old, new).Output()
		refHunks := string(ref[bytes.IndexByte(ref, '@'):])
		if got, want := len(changed.FindAllString(hunks, -1)), len(changed.FindAllString(refHunks, -1)); got != want {
			t.Fatalf("case %d: %d lines changed, diff --minimal changes %d\nours:\n%s\ndiff's:\n%s", i, got, want, hunks, refHunks)
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiffOfManyLinesStaysCorrectPastTheSearchBound feeds the diff values
// differing in more lines than the shortest-edit search explores.
func TestDiffOfManyLinesStaysCorrectPastTheSearchBound(t *testing.T) {
	var a, b []string
	for i := range 3 * maxDiffEdits {
		a = append(a, strconv.Itoa(i)+"\n")
		b = append(b, strconv.Itoa(i*7)+"\n")
	}
	script := diffLines(a, b)
	var gotA, gotB []string
	for _, e := range script {
		if e.op != '+' {
			gotA = append(gotA, e.line)
		}
		if e.op != '-' {
			gotB = append(gotB, e.line)
		}
	}
	if strings.Join(gotA, "") != strings.Join(a, "") || strings.Join(gotB, "") != strings.Join(b, "") {
		t.Fatal("the script does not turn a into b")
	}
}

func TestWatchEventDiff(t *testing.T) {
	kv := func(k, v string, rev int64) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{Key: []byte(k), Value: []byte(v), ModRevision: rev}
	}
	for _, tc := range []struct {
		name string
		ev   *clientv3.Event
		hex  bool
		want string
	}{
		{"created", &clientv3.Event{Type: mvccpb.PUT, Kv: kv("k", "v1\n", 2)}, false,
			"PUT\n--- /dev/null\n+++ k\trevision 2\n@@ -0,0 +1 @@\n+v1\n"},
		{"changed", &clientv3.Event{Type: mvccpb.PUT, Kv: kv("k", "a\nc\n", 5), PrevKv: kv("k", "a\nb\n", 2)}, false,
			"PUT\n--- k\trevision 2\n+++ k\trevision 5\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"},
		{"same value again", &clientv3.Event{Type: mvccpb.PUT, Kv: kv("k", "v", 6), PrevKv: kv("k", "v", 5)}, false,
			"PUT\n--- k\trevision 5\n+++ k\trevision 6\n"},
		{"deleted", &clientv3.Event{Type: mvccpb.DELETE, Kv: kv("k", "", 7), PrevKv: kv("k", "v", 6)}, false,
			"DELETE\n--- k\trevision 6\n+++ /dev/null\trevision 7\n@@ -1 +0,0 @@\n-v\n\\ No newline at end of file\n"},
		{"hex", &clientv3.Event{Type: mvccpb.PUT, Kv: kv("k", "\x00\n", 3), PrevKv: kv("k", "\x01\n", 2)}, true,
			"PUT\n--- \\x6b\trevision 2\n+++ \\x6b\trevision 3\n@@ -1 +1 @@\n-\\x01\n+\\x00\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			writeEventDiff(&b, tc.ev, tc.hex)
			if got := b.String(); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestWatchHelpShowsARealDiff keeps the example in watch's help what
// --diff prints for it.
func TestWatchHelpShowsARealDiff(t *testing.T) {
	var b bytes.Buffer
	writeEventDiff(&b, &clientv3.Event{
		Type:   mvccpb.PUT,
		Kv:     &mvccpb.KeyValue{Key: []byte("config"), Value: []byte("replicas: 3\nimage: v2\n"), ModRevision: 7},
		PrevKv: &mvccpb.KeyValue{Key: []byte("config"), Value: []byte("replicas: 3\nimage: v1\n"), ModRevision: 4},
	}, false)
	want := "  " + strings.ReplaceAll(strings.TrimSuffix(b.String(), "\n"), "\n", "\n  ") + "\n"
	if !strings.HasSuffix(watchLong, "\n\n"+want) {
		t.Errorf("watch help ends\n%s\nwant it to end with\n%s", watchLong, want)
	}
}
