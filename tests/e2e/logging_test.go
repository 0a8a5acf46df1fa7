package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestLogOutputsFileWithRotation: --log-outputs names a file, rotated
// with --enable-log-rotation, and the member's lifecycle lines (the ones
// harnesses wait for) go there, in --log-format console. Passes against
// etcd 3.7.3 (whose console format differs: only the messages are
// compared there).
func TestLogOutputsFileWithRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "member.log")
	_, cli, ctx := start(t, "--log-outputs="+path, "--log-format=console", "--enable-log-rotation",
		`--log-rotation-config-json={"maxsize": 1, "maxbackups": 2}`)
	put(t, ctx, cli, "k", "v")
	var b []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b, _ = os.ReadFile(path)
		if strings.Contains(string(b), "ready to serve client requests") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(string(b), "ready to serve client requests") {
		t.Fatalf("log file holds no %q:\n%s", "ready to serve client requests", b)
	}
	if !testcluster.Reference() && !strings.HasPrefix(string(b), "time=") {
		t.Fatalf("log file is not in console format:\n%.300s", b)
	}
}
