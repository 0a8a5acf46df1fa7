package testcluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Environment variables that change which server runs; see the package doc.
const (
	envBinary = "CAIRN_TESTCLUSTER_BINARY"
	envRace   = "CAIRN_TESTCLUSTER_RACE"
)

// builds holds one build per set of build tags, made on first use.
var builds sync.Map // tags joined by commas → *buildOnce

type buildOnce struct {
	once sync.Once
	path string
	err  error
}

// binary returns the path of the server binary built with tags,
// building it on first use.
func binary(tags []string) (string, error) {
	key := strings.Join(tags, ",")
	v, _ := builds.LoadOrStore(key, &buildOnce{})
	b := v.(*buildOnce)
	b.once.Do(func() { b.path, b.err = build(tags) })
	return b.path, b.err
}

// build compiles ./cmd/cairn of the enclosing module. The output goes to a
// directory keyed by the module's path, so the test binaries of every
// package of one checkout share it; go build leaves an up-to-date binary
// untouched and replaces a stale one by renaming, so a server still
// running from the old file is not disturbed. A file lock keeps two test
// binaries from building at once. Build tags (the deliberate bugs of
// internal/failpoint, say) give the binary a directory of its own.
func build(tags []string) (string, error) {
	if p := os.Getenv(envBinary); p != "" && len(tags) == 0 {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("testcluster: %s=%q: %w", envBinary, p, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("testcluster: %s: %w", envBinary, err)
		}
		return abs, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	race := os.Getenv(envRace) == "1"
	key := root
	if race {
		key += "\x00race"
	}
	if len(tags) > 0 {
		key += "\x00tags=" + strings.Join(tags, ",")
	}
	sum := sha256.Sum256([]byte(key))
	dir := filepath.Join(os.TempDir(), "cairn-testcluster-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("testcluster: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", fmt.Errorf("testcluster: lock build dir: %w", err)
	}
	defer unlock()

	out := filepath.Join(dir, "cairn")
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, "./cmd/cairn")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testcluster: go %s in %s: %w\n%s", strings.Join(args, " "), root, err, stderr.String())
	}
	return out, nil
}

// moduleRoot is the directory of the go.mod enclosing the working
// directory, which go test sets to the package under test.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("testcluster: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("testcluster: not inside a Go module (go env GOMOD = %q)", gomod)
	}
	// A test module nested in the repository (tests/faults) builds the
	// server of the enclosing main module.
	for dir := filepath.Dir(gomod); ; dir = filepath.Dir(dir) {
		_, errMod := os.Stat(filepath.Join(dir, "go.mod"))
		_, errCmd := os.Stat(filepath.Join(dir, "cmd", "cairn"))
		if errMod == nil && errCmd == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("testcluster: no module with cmd/cairn at or above %s", filepath.Dir(gomod))
		}
	}
}

// Binary returns the path of the server binary the members run, building
// it if need be, for a test that runs it by itself (to check how it fails
// to start, say).
func Binary(t testing.TB) string {
	t.Helper()
	p, err := binary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// EtcdBinary is the official etcd binary scripts/install-tools.sh puts in
// the repository's bin/, for a test that runs etcd beside Cairn; the test
// is skipped when it is missing.
func EtcdBinary(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin", "etcd")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("testcluster: no %s (run scripts/install-tools.sh)", p)
	}
	return p
}

// Reference reports whether the members run another server named by
// CAIRN_TESTCLUSTER_BINARY (etcd, to pin its behaviour) rather than
// Cairn, so a test can leave out what only Cairn does.
func Reference() bool { return os.Getenv(envBinary) != "" }
