package logging

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Rotation is refused with etcd's errors when there is not exactly one
// file output or the JSON is bad.
func TestRotationCheck(t *testing.T) {
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	for _, c := range []struct {
		outputs []string
		json    string
		want    string
	}{
		{[]string{"default"}, "", ErrRotationInvalidOutput.Error()},
		{[]string{"stderr"}, "", ErrRotationInvalidOutput.Error()},
		{[]string{f1, f2}, "", ErrRotationInvalidOutput.Error()},
		{[]string{f1}, `{"maxsize": 1`, "improperly formatted log rotation config: unexpected end of JSON input"},
		{[]string{f1}, `{"maxsize": "big"}`, "invalid log rotation config: json: cannot unmarshal string into Go struct field Logger.maxsize of type int"},
		{[]string{f1}, "", ""},
		{[]string{"stderr", f1}, `{"maxsize": 1}`, ""},
	} {
		err := Options{Outputs: c.outputs, Rotate: true, RotationConfig: c.json}.Check()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("outputs %v config %q: %q, want %q", c.outputs, c.json, got, c.want)
		}
	}
	if err := (Options{Outputs: []string{"default"}}).Check(); err != nil {
		t.Errorf("no rotation: %v", err)
	}
}

// A rotated file output is cut at maxsize, keeping the older lines in a
// backup; console format writes text lines; both outputs get each line.
func TestFileOutputRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "member.log")
	var stderr bytes.Buffer
	l, err := New(Options{Outputs: []string{"stderr", path}, Format: "console", Level: "debug",
		Rotate: true, RotationConfig: `{"maxsize": 1, "maxbackups": 3}`, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	for range 1200 { // about 1.2 MB
		l.Debug("line", "pad", pad)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "member-*.log"))
	if len(files) != 1 {
		t.Fatalf("backups %v, want one", files)
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) == 0 || len(cur) > 1<<20 || !strings.HasPrefix(string(cur), "time=") {
		t.Fatalf("current file: %d bytes, starts %.40q", len(cur), cur)
	}
	if n := strings.Count(stderr.String(), "\n"); n != 1200 {
		t.Fatalf("stderr has %d lines, want 1200", n)
	}
}
