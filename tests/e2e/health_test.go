package e2e

import (
	"io"
	"net/http"
	"testing"
)

// TestHealthEndpoints: /health, /livez and /readyz with their query
// forms answer with etcd 3.7's bodies and status codes (the test passes
// against etcd 3.7.3 too).
func TestHealthEndpoints(t *testing.T) {
	m, cli, ctx := start(t)
	put(t, ctx, cli, "k", "v")
	for _, c := range []struct {
		path string
		code int
		body string
	}{
		{"/health", 200, `{"health":"true","reason":""}`},
		{"/health?exclude=NOSPACE", 200, `{"health":"true","reason":""}`},
		{"/health?serializable=true", 200, `{"health":"true","reason":""}`},
		{"/livez", 200, "ok\n"},
		{"/readyz", 200, "ok\n"},
		{"/livez?verbose", 200, "[+]serializable_read ok\nok\n"},
		{"/readyz?exclude=data_corruption&exclude=non_learner&exclude=serializable_read&verbose", 200, "[+]linearizable_read ok\nok\n"},
		{"/readyz/linearizable_read?verbose", 200, "[+]linearizable_read ok\nok\n"},
		{"/livez/serializable_read", 200, "ok\n"},
		{"/readyz?exclude=bogus", 200, "ok\n"},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || string(b) != c.body {
			t.Errorf("GET %s: %d %q, want %d %q", c.path, resp.StatusCode, b, c.code, c.body)
		}
	}
}
