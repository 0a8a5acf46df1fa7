package testcluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var cairnutl buildOnce

// Cairnutl returns the path of cairnutl built from the enclosing module
// (./cmd/cairnutl), building it on first use, beside the server binary.
func Cairnutl(t testing.TB) string {
	t.Helper()
	cairnutl.once.Do(func() { cairnutl.path, cairnutl.err = buildCommand("cairnutl") })
	if cairnutl.err != nil {
		t.Fatal(cairnutl.err)
	}
	return cairnutl.path
}

// Etcdutl returns the path of the official etcdutl scripts/install-tools.sh
// builds into bin/; the test is skipped when it is missing.
func Etcdutl(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin", "etcdutl")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no official etcdutl at %s: run scripts/install-tools.sh", p)
	}
	return p
}

var commandMu sync.Mutex

// buildCommand compiles ./cmd/<name> of the enclosing module into a
// directory keyed by the module's path, under the same file lock as the
// server's build.
func buildCommand(name string) (string, error) {
	commandMu.Lock()
	defer commandMu.Unlock()
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root + "\x00cmd=" + name))
	dir := filepath.Join(os.TempDir(), "cairn-testcluster-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("testcluster: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", fmt.Errorf("testcluster: lock build dir: %w", err)
	}
	defer unlock()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testcluster: go build ./cmd/%s: %w\n%s", name, err, stderr.String())
	}
	return out, nil
}
