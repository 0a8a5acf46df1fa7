package testcluster

import (
	"os"
	"path/filepath"
	"testing"
)

// Etcdctl returns the path of the official etcdctl that
// scripts/install-tools.sh builds into bin/ at the repository root. A test
// that needs it is skipped, with a message saying how to build it, when
// it is missing.
func Etcdctl(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin", "etcdctl")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no official etcdctl at %s: run scripts/install-tools.sh", p)
	}
	return p
}
