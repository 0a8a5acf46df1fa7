package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestStartFailureIsReported runs the server on a client port that is
// already taken: like etcd, it must exit 1 and say why, not crash.
func TestStartFailureIsReported(t *testing.T) {
	t.Parallel()
	bin := testcluster.Binary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peerURL := "http://" + peer.Addr().String()
	peer.Close() // free: only the client port is in the way
	clientURL := "http://" + taken.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--data-dir", t.TempDir(),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("server on a taken port: %v; want it to exit\n%s", err, out.String())
	}
	if code := ee.ExitCode(); code != 1 || !strings.Contains(out.String(), "address already in use") {
		t.Fatalf("server on a taken port exited with %s; want status 1 and \"address already in use\" in its output:\n%s",
			exitStatus(ee), lastLines(out.String(), 20))
	}
}

func exitStatus(ee *exec.ExitError) string {
	if ee.ExitCode() >= 0 {
		return fmt.Sprintf("status %d", ee.ExitCode())
	}
	return ee.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
