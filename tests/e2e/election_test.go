package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/api/v3electionpb"
)

func TestElectionRPCs(t *testing.T) {
	_, cli, ctx := start(t)
	ec := v3electionpb.NewElectionClient(cli.ActiveConnection())
	l1, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("e")}); err == nil || !strings.Contains(err.Error(), "election: no leader") {
		t.Fatalf("Leader of an empty election: %v; want election: no leader", err)
	}
	obs, err := ec.Observe(ctx, &v3electionpb.LeaderRequest{Name: []byte("e")})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := ec.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("e"), Lease: int64(l1.ID), Value: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if c1.Leader.Lease != int64(l1.ID) || !strings.HasPrefix(string(c1.Leader.Key), "e/") || string(c1.Leader.Name) != "e" {
		t.Fatalf("Campaign leader key %+v", c1.Leader)
	}
	wantObserved := func(v string) {
		t.Helper()
		r, err := obs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Kv.Value) != v {
			t.Fatalf("Observe got %q; want %q", r.Kv.Value, v)
		}
	}
	wantObserved("a")
	if _, err := ec.Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: c1.Leader, Value: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	wantObserved("b")
	lr, err := ec.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("e")})
	if err != nil || string(lr.Kv.Value) != "b" {
		t.Fatalf("Leader: %v %v", lr, err)
	}

	// A second candidate waits, then leads once the first resigns.
	l2, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	c2ch := make(chan *v3electionpb.CampaignResponse, 1)
	go func() {
		r, err := ec.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("e"), Lease: int64(l2.ID), Value: []byte("c")})
		if err != nil {
			t.Error(err)
		}
		c2ch <- r
	}()
	select {
	case <-c2ch:
		t.Fatal("second Campaign won while the first leads")
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := ec.Resign(ctx, &v3electionpb.ResignRequest{Leader: c1.Leader}); err != nil {
		t.Fatal(err)
	}
	var c2 *v3electionpb.CampaignResponse
	select {
	case c2 = <-c2ch:
	case <-time.After(10 * time.Second):
		t.Fatal("second Campaign did not win after Resign")
	}
	wantObserved("c")

	// The resigned leader is no leader any more.
	if _, err := ec.Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: c1.Leader, Value: []byte("x")}); err == nil || !strings.Contains(err.Error(), "election: not leader") {
		t.Fatalf("Proclaim by a non-leader: %v; want election: not leader", err)
	}
	if _, err := ec.Proclaim(ctx, &v3electionpb.ProclaimRequest{Value: []byte("x")}); err == nil || !strings.Contains(err.Error(), `"leader" field must be provided`) {
		t.Fatalf("Proclaim without a leader key: %v", err)
	}
	if _, err := ec.Resign(ctx, &v3electionpb.ResignRequest{}); err == nil || !strings.Contains(err.Error(), `"leader" field must be provided`) {
		t.Fatalf("Resign without a leader key: %v", err)
	}
	// Resigning again, by the old leader, deletes nothing.
	if _, err := ec.Resign(ctx, &v3electionpb.ResignRequest{Leader: c1.Leader}); err != nil {
		t.Fatalf("second Resign: %v", err)
	}
	if lr, err := ec.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("e")}); err != nil || string(lr.Kv.Key) != string(c2.Leader.Key) {
		t.Fatalf("Leader after a stale Resign: %v %v; want %q", lr, err, c2.Leader.Key)
	}
}

// Campaign on a lease that has gone fails and leaves no key behind.
func TestElectionCampaignExpiredLease(t *testing.T) {
	_, cli, ctx := start(t)
	ec := v3electionpb.NewElectionClient(cli.ActiveConnection())
	l, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	_, err = ec.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("gone"), Lease: int64(l.ID), Value: []byte("v")})
	if err == nil || !strings.Contains(err.Error(), "etcdserver: requested lease not found") {
		t.Fatalf("Campaign with a revoked lease: %v", err)
	}
	if g := get(t, ctx, cli, "gone", clientv3.WithPrefix()); len(g.Kvs) != 0 {
		t.Fatalf("failed Campaign left %v", keys(g.Kvs))
	}
}

// The gateway serves the election paths with etcd's JSON, and Observe
// streams one JSON object per change until the client goes away.
func TestElectionGateway(t *testing.T) {
	m, cli, ctx := start(t)
	base := m.ClientURL
	post := func(path, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %q: %v", path, b, err)
		}
		return out
	}
	l, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	// name "ZWxlYw==" is "elec"; values "djE=" / "djI=" are "v1" / "v2".
	camp := post("/v3/election/campaign", `{"name":"ZWxlYw==","value":"djE=","lease":"`+strconv.FormatInt(int64(l.ID), 10)+`"}`)
	leader, ok := camp["leader"].(map[string]any)
	if !ok {
		t.Fatalf("campaign answered %v", camp)
	}
	lk, _ := json.Marshal(leader)

	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(octx, "POST", base+"/v3/election/observe", strings.NewReader(`{"name":"ZWxlYw=="}`))
	oresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer oresp.Body.Close()
	lines := bufio.NewScanner(oresp.Body)
	nextValue := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("observe stream ended: %v", lines.Err())
		}
		var msg struct {
			Result struct {
				Kv struct {
					Value string `json:"value"`
				} `json:"kv"`
			} `json:"result"`
		}
		if err := json.Unmarshal(lines.Bytes(), &msg); err != nil {
			t.Fatalf("observe line %q: %v", lines.Bytes(), err)
		}
		return msg.Result.Kv.Value
	}
	if v := nextValue(); v != "djE=" {
		t.Fatalf("observe first value %q", v)
	}
	post("/v3/election/proclaim", `{"leader":`+string(lk)+`,"value":"djI="}`)
	if v := nextValue(); v != "djI=" {
		t.Fatalf("observe after proclaim %q", v)
	}
	if got := post("/v3/election/leader", `{"name":"ZWxlYw=="}`); got["kv"].(map[string]any)["value"] != "djI=" {
		t.Fatalf("leader answered %v", got)
	}
	if got := post("/v3/election/resign", `{"leader":`+string(lk)+`}`); got["header"] == nil {
		t.Fatalf("resign answered %v", got)
	}
	if got := post("/v3/election/proclaim", `{"leader":`+string(lk)+`,"value":"djM="}`); got["message"] != "election: not leader" {
		t.Fatalf("proclaim after resign answered %v", got)
	}
	if got := post("/v3/election/resign", `{}`); got["message"] != `"leader" field must be provided` {
		t.Fatalf("resign without leader answered %v", got)
	}

	// Lock through the gateway.
	lock := post("/v3/lock/lock", `{"name":"bG9jaw=="}`)
	key, _ := lock["key"].(string)
	if key == "" {
		t.Fatalf("lock answered %v", lock)
	}
	if got := post("/v3/lock/unlock", `{"key":"`+key+`"}`); got["header"] == nil {
		t.Fatalf("unlock answered %v", got)
	}
}
