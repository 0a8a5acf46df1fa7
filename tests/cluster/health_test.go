package cluster

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestHealthFlipsWithQuorum: a member that lost its quorum stays live
// (/livez: it serves serializable reads) but is not ready (/readyz,
// /health: no linearizable read), and /health?serializable=true still
// answers, as in etcd (the test passes against etcd 3.7.3 too).
func TestHealthFlipsWithQuorum(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx := testContext(t)
	c.WaitLeader(t)
	get := func(m *testcluster.Member, path string) (int, string) {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, m.ClientURL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	m := c.Members[0]
	for _, p := range []string{"/livez", "/readyz", "/health"} {
		if code, body := get(m, p); code != 200 {
			t.Fatalf("healthy %s: %d %s", p, code, body)
		}
	}
	c.Members[1].Kill()
	c.Members[2].Kill()
	if code, body := get(m, "/livez"); code != 200 {
		t.Errorf("/livez without quorum: %d %s, want 200", code, body)
	}
	if code, body := get(m, "/readyz?verbose"); code != 503 || !strings.Contains(body, "[-]linearizable_read failed") || !strings.Contains(body, "[+]serializable_read ok") {
		t.Errorf("/readyz without quorum: %d %q", code, body)
	}
	if code, body := get(m, "/health"); code != 503 || !strings.Contains(body, `"health":"false"`) {
		t.Errorf("/health without quorum: %d %q", code, body)
	}
	if code, body := get(m, "/health?serializable=true"); code != 200 {
		t.Errorf("/health?serializable=true without quorum: %d %q", code, body)
	}
}
