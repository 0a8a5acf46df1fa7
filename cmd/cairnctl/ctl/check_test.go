//go:build linux

package ctl

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestCheckPerfRunsWholeInSeconds runs check perf end to end with the
// hidden --duration flag, which etcdctl has not: a whole run at load s
// lasts a minute (checkperf.scen compares those with etcdctl, with
// CAIRNCTL_SESSION_LONG=1). Whether a busy machine keeps up with 150
// writes a second decides PASS or FAIL, so only the shape of the report,
// the exit code that goes with it and the clean-up are checked.
func TestCheckPerfRunsWholeInSeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server; skipped in -short mode")
	}
	tg, cli := startTestServer(t)
	ep := tg.endpoint()
	out, errOut, code := runCairnctl(t, []string{"ETCDCTL_ENDPOINTS=" + ep},
		"check", "perf", "--duration", "2s", "--prefix", "/cp/", "--auto-compact", "--auto-defrag")

	report := regexp.MustCompile(`^Compacting with revision (\d+)
Compacted with revision (\d+)
Defragmenting "` + regexp.QuoteMeta(ep) + `"
Defragmented "` + regexp.QuoteMeta(ep) + `"
(FAIL: too many errors
(FAIL: ERROR\(.*\) -> \d+
)+)?(PASS: Throughput is|FAIL: Throughput too low:) \d+ writes/s
(PASS: Slowest request took|Slowest request took too long:) \d+\.\d{6}s
(PASS: Stddev is|Stddev too high:) \d+\.\d{6}s
(PASS|FAIL)
$`)
	m := report.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("report:\n%s", out)
	}
	if verdict := m[len(m)-1]; (verdict == "PASS") != (code == 0) || (code != 0 && code != exitError) {
		t.Errorf("verdict %s with exit code %d", verdict, code)
	}
	if fail := strings.Contains(out, "FAIL:") || strings.Contains(out, "too long") || strings.Contains(out, "too high"); fail != (code != 0) {
		t.Errorf("exit code %d for the report\n%s", code, out)
	}
	if !regexp.MustCompile(`^2 / 2 \[-+\] 100\.00% \d+ p/s\n$`).MatchString(errOut) {
		t.Errorf("progress on stderr: %q", errOut)
	}
	resp, err := cli.Get(context.Background(), "/cp/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Errorf("%d keys left under the prefix (%v)", resp.Count, err)
	}
	// About 300 puts (150 a second for 2 s), then the deletion, whose
	// revision the compaction is at and the last there is.
	if m[1] != m[2] || m[1] != strconv.FormatInt(resp.Header.Revision, 10) || resp.Header.Revision < 100 {
		t.Errorf("compacted at %s/%s, revision now %d", m[1], m[2], resp.Header.Revision)
	}
}
