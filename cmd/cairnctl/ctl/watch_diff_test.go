//go:build linux

package ctl

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestWatchDiffShowsEachChangeAgainstThePreviousValue runs cairnctl watch
// --diff (cairnctl's own, so not in the session scenarios) against a
// server, from the first revision: a creation, a change and a deletion.
func TestWatchDiffRefusesFormatsButSimple(t *testing.T) {
	_, errOut, code := runCairnctl(t, []string{"ETCDCTL_ENDPOINTS=127.0.0.1:1"}, "watch", "--diff", "-w", "json", "k")
	if want := "Error: --diff needs the simple output format\n"; errOut != want || code != exitBadFeature {
		t.Errorf("got %q, code %d; want %q, code %d", errOut, code, want, exitBadFeature)
	}
}

func TestWatchDiffShowsEachChangeAgainstThePreviousValue(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server; skipped in -short mode")
	}
	tg, cli := startTestServer(t)
	mustPut(t, cli, "k", "a\nb\n", "k", "a\nc\n")
	if _, err := cli.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	want := "PUT\n--- /dev/null\n+++ k\trevision 2\n@@ -0,0 +1,2 @@\n+a\n+b\n" +
		"PUT\n--- k\trevision 2\n+++ k\trevision 3\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n" +
		"DELETE\n--- k\trevision 3\n+++ /dev/null\trevision 4\n@@ -1,2 +0,0 @@\n-a\n-c\n"

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnctlLink(t), "--endpoints", tg.endpoint(), "watch", "--diff", "--rev", "1", "k")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for got := out.String(); got != want && len(got) <= len(want) && ctx.Err() == nil; got = out.String() {
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if got := out.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
