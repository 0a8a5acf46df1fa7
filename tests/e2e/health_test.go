package e2e

import (
	"io"
	"net/http"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
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

// TestHealthUnderNOSPACE: a NOSPACE alarm fails /health (unless
// excluded) but leaves /livez and /readyz ok, as in etcd 3.7, and
// disarming it makes /health pass again. Passes against etcd 3.7.3.
func TestHealthUnderNOSPACE(t *testing.T) {
	m, cli, ctx := start(t)
	st, err := cli.Status(ctx, m.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	alarm := &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: st.Header.MemberId, Alarm: pb.AlarmType_NOSPACE}
	if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, alarm); err != nil {
		t.Fatal(err)
	}
	check := func(cases [][3]string) {
		t.Helper()
		for _, c := range cases {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+c[0], nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := resp.Status[:3] + " " + string(b); got != c[1]+" "+c[2] {
				t.Errorf("GET %s: %q, want %q", c[0], got, c[1]+" "+c[2])
			}
		}
	}
	check([][3]string{
		{"/health", "503", `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"}, // etcd writes it with http.Error
		{"/health?exclude=NOSPACE", "200", `{"health":"true","reason":""}`},
		{"/livez", "200", "ok\n"},
		{"/readyz", "200", "ok\n"},
	})
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: st.Header.MemberId, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	check([][3]string{{"/health", "200", `{"health":"true","reason":""}`}})
}
