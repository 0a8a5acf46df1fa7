package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// A client may half-close a stream (close its sending side) and still
// expect every response it is owed: the grpc-gateway does exactly that
// once it has forwarded an HTTP request body, so a curl watch depends on
// it. These tests pin etcd's behaviour: Watch keeps streaming until the
// client goes away; LeaseKeepAlive answers every request it read.

// gatewayStream posts body to the JSON gateway at path and returns a
// decoder of the streamed {"result": ...} objects, and the response
// body to close.
func gatewayStream(t *testing.T, ctx context.Context, endpoint, path, body string) (*json.Decoder, io.Closer) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("POST %s: %s %s", path, resp.Status, b)
	}
	return json.NewDecoder(bufio.NewReader(resp.Body)), resp.Body
}

// gatewayWatchResponse is one streamed object of POST /v3/watch. The
// gateway prints int64s as strings, as etcd's does.
type gatewayWatchResponse struct {
	Result *struct {
		Created bool   `json:"created"`
		WatchID string `json:"watch_id"`
		Events  []struct {
			Type string `json:"type"`
			KV   struct {
				Key         string `json:"key"`
				Value       string `json:"value"`
				ModRevision string `json:"mod_revision"`
			} `json:"kv"`
		} `json:"events"`
	} `json:"result"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// nextWatch reads one object from dec within d, or fails.
func nextWatch(t *testing.T, dec *json.Decoder, d time.Duration) gatewayWatchResponse {
	t.Helper()
	type got struct {
		r   gatewayWatchResponse
		err error
	}
	c := make(chan got, 1)
	go func() {
		var r gatewayWatchResponse
		err := dec.Decode(&r)
		c <- got{r, err}
	}()
	select {
	case g := <-c:
		if g.err != nil {
			t.Fatalf("gateway watch stream ended: %v", g.err)
		}
		if g.r.Error != nil {
			t.Fatalf("gateway watch stream error: %s", g.r.Error.Message)
		}
		if g.r.Result == nil {
			t.Fatalf("gateway watch object without a result")
		}
		return g.r
	case <-time.After(d):
		t.Fatalf("no gateway watch response within %v", d)
	}
	panic("unreachable")
}

// TestGatewayWatchStreamsAfterTheBodyEnds: a curl-style watch (the whole
// body sent, then the request's end) gets "created", then every event,
// and the stream stays open until the client goes away.
func TestGatewayWatchStreamsAfterTheBodyEnds(t *testing.T) {
	m, cli, ctx := start(t)
	key := base64.StdEncoding.EncodeToString([]byte("foo"))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dec, body := gatewayStream(t, wctx, m.Endpoint(), "/v3/watch", `{"create_request":{"key":"`+key+`"}}`)
	defer body.Close()

	if r := nextWatch(t, dec, 10*time.Second); !r.Result.Created {
		t.Fatalf("first response %+v; want created", *r.Result)
	}
	putRev := put(t, ctx, cli, "foo", "bar")
	r := nextWatch(t, dec, 10*time.Second)
	if len(r.Result.Events) != 1 || r.Result.Events[0].Type != "" || r.Result.Events[0].KV.Key != key ||
		r.Result.Events[0].KV.ModRevision != fmt.Sprint(putRev) {
		// A PUT is the enum's zero value, which the gateway leaves out.
		t.Fatalf("after a put, got %+v; want one PUT of foo at %d", r.Result.Events, putRev)
	}
	if _, err := cli.Delete(ctx, "foo"); err != nil {
		t.Fatal(err)
	}
	r = nextWatch(t, dec, 10*time.Second)
	if len(r.Result.Events) != 1 || r.Result.Events[0].Type != "DELETE" {
		t.Fatalf("after a delete, got %+v; want one DELETE", r.Result.Events)
	}

	// Still open: a read that waits sees no end of stream, and a later
	// put is still delivered.
	ended := make(chan error, 1)
	go func() {
		var r gatewayWatchResponse
		ended <- dec.Decode(&r)
	}()
	select {
	case err := <-ended:
		t.Fatalf("gateway watch stream ended while idle: %v", err)
	case <-time.After(2 * time.Second):
	}
	put(t, ctx, cli, "foo", "again")
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("gateway watch stream ended instead of delivering the next put: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the put after an idle spell was not delivered")
	}
}

// TestGatewayLeaseKeepAlive: POST /v3/lease/keepalive answers the
// request in its body with the lease's TTL, as etcd's gateway does.
func TestGatewayLeaseKeepAlive(t *testing.T) {
	m, cli, ctx := start(t)
	l, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	dec, body := gatewayStream(t, ctx, m.Endpoint(), "/v3/lease/keepalive", fmt.Sprintf(`{"ID":"%d"}`, l.ID))
	defer body.Close()
	var r struct {
		Result struct {
			ID  string `json:"ID"`
			TTL string `json:"TTL"`
		} `json:"result"`
	}
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Result.ID != fmt.Sprint(l.ID) || r.Result.TTL != "30" {
		t.Fatalf("keepalive answer %+v; want ID %d TTL 30", r.Result, l.ID)
	}
}

// rawConn is a plain gRPC connection to m, for streams clientv3 would
// never half-close.
func rawConn(t *testing.T, endpoint string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(endpoint, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestWatchServesAfterTheClientHalfCloses: a gRPC Watch stream whose
// client has sent its create request and closed its sending side still
// gets "created" and the events that follow.
func TestWatchServesAfterTheClientHalfCloses(t *testing.T) {
	m, cli, ctx := start(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ws, err := pb.NewWatchClient(rawConn(t, m.Endpoint())).Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("k")}}}); err != nil {
		t.Fatal(err)
	}
	if err := ws.CloseSend(); err != nil {
		t.Fatal(err)
	}
	resp, err := ws.Recv()
	if err != nil || !resp.Created {
		t.Fatalf("first response %v, %v; want created", resp, err)
	}
	for i := range 3 {
		rev := put(t, ctx, cli, "k", fmt.Sprint(i))
		resp, err := ws.Recv()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if len(resp.Events) != 1 || resp.Events[0].Kv.ModRevision != rev {
			t.Fatalf("event %d: %v; want the put at %d", i, resp.Events, rev)
		}
	}
}

// TestLeaseKeepAliveAnswersAfterTheClientHalfCloses: every keep-alive
// sent before the half-close is answered, then the stream ends cleanly.
func TestLeaseKeepAliveAnswersAfterTheClientHalfCloses(t *testing.T) {
	m, cli, ctx := start(t)
	var ids []int64
	for range 3 {
		l, err := cli.Grant(ctx, 20)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, int64(l.ID))
	}
	ks, err := pb.NewLeaseClient(rawConn(t, m.Endpoint())).LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := ks.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ks.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		resp, err := ks.Recv()
		if err != nil {
			t.Fatalf("answer for lease %x: %v", id, err)
		}
		if resp.ID != id || resp.TTL != 20 {
			t.Fatalf("answer %v; want lease %x with TTL 20", resp, id)
		}
		checkHeader(t, resp.Header, 0)
	}
	if resp, err := ks.Recv(); err != io.EOF {
		t.Fatalf("after the last answer: %v, %v; want the stream's end", resp, err)
	}
}

// TestRequireLeaderOnAHealthyMember: requests and streams marked
// WithRequireLeader are served as usual while there is a leader (the
// refusals without one are in tests/cluster).
func TestRequireLeaderOnAHealthyMember(t *testing.T) {
	m, _, ctx := start(t)
	conn := rawConn(t, m.Endpoint())
	rctx := metadata.AppendToOutgoingContext(ctx, rpctypes.MetadataRequireLeaderKey, rpctypes.MetadataHasLeader)
	if _, err := pb.NewKVClient(conn).Put(rctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	ws, err := pb.NewWatchClient(conn).Watch(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 1}}}); err != nil {
		t.Fatal(err)
	}
	for want := 0; want < 2; {
		resp, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Created || len(resp.Events) == 1 && bytes.Equal(resp.Events[0].Kv.Value, []byte("v")) {
			want++
		}
	}
}
