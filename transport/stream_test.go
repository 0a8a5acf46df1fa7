package transport

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

func TestStreamDeliversMessagesInOrderPerPeer(t *testing.T) {
	checkNoLeaks(t)
	a, b, c := startMember(t, 1, 7, nil), startMember(t, 2, 7, nil), startMember(t, 3, 7, nil)
	connect(a, b, c)

	const n = 3000
	send := func(from, to *member) {
		var batch []*raftpb.Message
		for i := uint64(1); i <= n; i++ {
			batch = append(batch, appMsg(from.id, to.id, i, []byte("x")))
			if len(batch) == 100 {
				from.tr.Send(batch)
				batch = nil
			}
		}
	}
	// Everyone sends to everyone at once.
	for _, from := range []*member{a, b, c} {
		for _, to := range []*member{a, b, c} {
			if from != to {
				go send(from, to)
			}
		}
	}
	for _, to := range []*member{a, b, c} {
		for _, from := range []*member{a, b, c} {
			if from == to {
				continue
			}
			waitFor(t, 10*time.Second, "all messages", func() bool { return len(to.raft.received(from.id, nil)) >= n })
			checkIndexes(t, to.raft.received(from.id, nil), 1, n)
		}
	}
	for _, m := range []*member{a, b, c} {
		for _, p := range []*member{a, b, c} {
			if p != m && m.tr.ActiveSince(p.id).IsZero() {
				t.Errorf("member %d: ActiveSince(%d) is zero with a working stream", m.id, p.id)
			}
		}
	}
}

// A peer server with read and write timeouts (as servers often have)
// must not cut streams and snapshots that outlast them.
func TestStreamsOutliveServerTimeouts(t *testing.T) {
	checkNoLeaks(t)
	timeouts := func(s *http.Server) {
		s.ReadTimeout = 100 * time.Millisecond
		s.WriteTimeout = 100 * time.Millisecond
	}
	a := startMemberServer(t, 1, 7, nil, timeouts)
	b := startMemberServer(t, 2, 7, nil, timeouts)
	b.store.slowReceive = true // 4 KiB/ms: a 1 MiB snapshot takes ~250 ms
	connect(a, b)
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 3)})
	for i := uint64(1); i <= 30; i++ {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, nil)})
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, "all messages", func() bool { return len(b.raft.received(1, msgApp)) == 30 })
	waitFor(t, 5*time.Second, "the snapshot", func() bool { return len(a.raft.snapshotReports(2)) == 1 })
	if got := a.raft.snapshotReports(2); got[0] != raft.SnapshotFinish {
		t.Errorf("ReportSnapshot(%v), want SnapshotFinish", got[0])
	}
	if n := a.raft.unreachableCount(2); n != 0 {
		t.Errorf("stream broke %d times", n)
	}
}

func TestStreamReconnectsAfterReceiverRestarts(t *testing.T) {
	checkNoLeaks(t)
	a, b := startMember(t, 1, 7, nil), startMember(t, 2, 7, nil)
	connect(a, b)
	for i := uint64(1); i <= 10; i++ {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, nil)})
	}
	waitFor(t, 5*time.Second, "first messages", func() bool { return len(b.raft.received(1, nil)) == 10 })
	first := a.tr.ActiveSince(2)
	if first.IsZero() {
		t.Fatal("ActiveSince is zero with a working stream")
	}

	b.restart(t, 7, a)
	waitFor(t, 5*time.Second, "the broken stream to be reported", func() bool { return a.raft.unreachableCount(2) > 0 })

	// Whatever A sends now reaches the new B, in order.
	before := len(b.raft.received(1, nil))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(11); i <= 500; i++ {
			a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, nil)})
			time.Sleep(50 * time.Microsecond)
		}
	}()
	waitFor(t, 10*time.Second, "messages to the restarted member", func() bool {
		got := b.raft.received(1, nil)
		return len(got) > before && got[len(got)-1].GetIndex() == 500
	})
	<-done
	checkIncreasing(t, b.raft.received(1, nil))
	if since := a.tr.ActiveSince(2); !since.After(first) {
		t.Errorf("ActiveSince = %v after reconnecting, want after %v", since, first)
	}
}

func TestStreamRefusesOtherCluster(t *testing.T) {
	checkNoLeaks(t)
	a, b := startMember(t, 1, 7, nil), startMember(t, 2, 8, nil)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, nil)})
	waitFor(t, 5*time.Second, "A to report B unreachable", func() bool { return a.raft.unreachableCount(2) >= 2 })
	if got := b.raft.received(1, nil); len(got) != 0 {
		t.Errorf("B stepped %d messages from another cluster", len(got))
	}
	if !a.tr.ActiveSince(2).IsZero() {
		t.Error("ActiveSince is set for a peer that refuses the stream")
	}

	// What the sender is told.
	code, body := post(t, b.tr.Handler(), StreamPath, map[string]string{HeaderFrom: "1", HeaderTo: "2", HeaderClusterID: "7"}, nil)
	if code != http.StatusConflict || !strings.Contains(body, "cluster ID mismatch") || !strings.Contains(body, "cluster 8") || !strings.Contains(body, "cluster 7") {
		t.Errorf("got %d %q, want 409 naming both clusters", code, body)
	}
}

func TestHandlerRefusesBadRequests(t *testing.T) {
	checkNoLeaks(t)
	m := startMember(t, 0xa, 0xc, nil)
	m.tr.AddPeer(0xb, []string{deadURL(t)})
	ok := map[string]string{HeaderFrom: "b", HeaderTo: "a", HeaderClusterID: "c"}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for k, v := range ok {
			h[k] = v
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	frame := func(m *raftpb.Message) *bytes.Reader {
		b, err := appendFrame(nil, m, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.NewReader(b)
	}
	for _, tc := range []struct {
		name   string
		path   string
		hdr    map[string]string
		body   *bytes.Reader
		code   int
		reason string
	}{
		{"no from", StreamPath, with(HeaderFrom, ""), nil, http.StatusBadRequest, "X-Cairn-From"},
		{"bad from", StreamPath, with(HeaderFrom, "0xzz"), nil, http.StatusBadRequest, "X-Cairn-From"},
		{"no cluster", SnapshotPath, with(HeaderClusterID, ""), nil, http.StatusBadRequest, "X-Cairn-Cluster-ID"},
		{"other cluster", SnapshotPath, with(HeaderClusterID, "d"), nil, http.StatusConflict, "cluster ID mismatch"},
		{"not for me", StreamPath, with(HeaderTo, "e"), nil, http.StatusMisdirectedRequest, "reached member a"},
		{"unknown sender", StreamPath, with(HeaderFrom, "f"), nil, http.StatusForbidden, "not a peer"},
		{"snapshot without MsgSnap", SnapshotPath, ok, frame(appMsg(0xb, 0xa, 1, nil)), http.StatusBadRequest, "want MsgSnap"},
		{"snapshot from someone else", SnapshotPath, ok, frame(snapMsg(0xf, 0xa, 1)), http.StatusBadRequest, "want MsgSnap"},
		{"empty snapshot body", SnapshotPath, ok, bytes.NewReader(nil), http.StatusBadRequest, "read snapshot message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body *bytes.Reader = tc.body
			if body == nil {
				body = bytes.NewReader(nil)
			}
			code, msg := post(t, m.tr.Handler(), tc.path, tc.hdr, body)
			if code != tc.code || !strings.Contains(msg, tc.reason) {
				t.Errorf("got %d %q, want %d mentioning %q", code, msg, tc.code, tc.reason)
			}
		})
	}
	t.Run("wrong method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, m.url+StreamPath, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %s, want 405", StreamPath, resp.Status)
		}
	})
}

func TestSendNeverBlocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t testing.TB) string
	}{
		{"peer down", deadURL},
		{"peer never answers", blackhole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			a := startMember(t, 1, 7, func(c *Config) { c.DialTimeout = 100 * time.Millisecond })
			a.tr.AddPeer(2, []string{tc.url(t)})
			msgs := make([]*raftpb.Message, 3*DefaultQueueSize)
			for i := range msgs {
				msgs[i] = appMsg(1, 2, uint64(i+1), nil)
			}
			start := time.Now()
			a.tr.Send(msgs)
			for range 100 {
				a.tr.Send(msgs[:10])
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Send took %v with the peer unreachable", d)
			}
			waitFor(t, 5*time.Second, "ReportUnreachable", func() bool { return a.raft.unreachableCount(2) > 0 })
		})
	}
}

func TestSendDropsWhenPeerIsSlow(t *testing.T) {
	checkNoLeaks(t)
	edit := func(c *Config) {
		c.QueueSize = 16
		c.WriteTimeout = time.Minute // this test is about the queue, not stalls
	}
	a, b := startMember(t, 1, 7, edit), startMember(t, 2, 7, edit)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, nil)})
	waitFor(t, 5*time.Second, "the stream", func() bool { return len(b.raft.received(1, nil)) == 1 })

	gate := make(chan struct{})
	b.raft.setGate(gate)
	// 256 KiB a message: TCP and pipe buffers fill after some megabytes,
	// and then the 16-message queue.
	data := make([]byte, 256<<10)
	start := time.Now()
	const n = 400
	for i := uint64(2); i <= n; i++ {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, data)})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %v with a slow peer", d)
	}
	waitFor(t, 5*time.Second, "ReportUnreachable for the drops", func() bool { return a.raft.unreachableCount(2) > 0 })
	close(gate)
	// Once B catches up, the queue has room again.
	waitFor(t, 10*time.Second, "a message after the flood", func() bool {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, n+1, nil)})
		time.Sleep(10 * time.Millisecond)
		got := b.raft.received(1, nil)
		return got[len(got)-1].GetIndex() == n+1
	})
	var got []*raftpb.Message
	for _, m := range b.raft.received(1, nil) {
		if m.GetIndex() <= n {
			got = append(got, m)
		}
	}
	checkIncreasing(t, got)
	if len(got) == n {
		t.Errorf("all %d messages arrived; expected drops with a 16-message queue", n)
	}
}

func TestStalledStreamIsBroken(t *testing.T) {
	checkNoLeaks(t)
	edit := func(c *Config) { c.WriteTimeout = 200 * time.Millisecond }
	a, b := startMember(t, 1, 7, edit), startMember(t, 2, 7, edit)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, nil)})
	waitFor(t, 5*time.Second, "the stream", func() bool { return len(b.raft.received(1, nil)) == 1 })

	// B stops reading; A keeps sending until its writes stall.
	gate := make(chan struct{})
	b.raft.setGate(gate)
	defer close(gate)
	data := make([]byte, 256<<10)
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := uint64(2); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, data)})
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); <-sent }()
	waitFor(t, 10*time.Second, "the stalled stream to be dropped", func() bool {
		return a.raft.unreachableCount(2) > 0 && a.tr.ActiveSince(2).IsZero()
	})
}

func TestOversizedMessageIsDroppedAlone(t *testing.T) {
	checkNoLeaks(t)
	edit := func(c *Config) { c.MaxFrameSize = 1 << 20 }
	a, b := startMember(t, 1, 7, edit), startMember(t, 2, 7, edit)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{
		appMsg(1, 2, 1, nil),
		appMsg(1, 2, 2, make([]byte, 2<<20)),
		appMsg(1, 2, 3, nil),
	})
	waitFor(t, 5*time.Second, "the messages around the big one", func() bool { return len(b.raft.received(1, nil)) == 2 })
	got := b.raft.received(1, nil)
	if got[0].GetIndex() != 1 || got[1].GetIndex() != 3 {
		t.Errorf("got indexes %d, %d; want 1, 3", got[0].GetIndex(), got[1].GetIndex())
	}
	waitFor(t, 5*time.Second, "ReportUnreachable for the drop", func() bool { return a.raft.unreachableCount(2) > 0 })
}

func TestRemovePeerStopsItsGoroutines(t *testing.T) {
	checkNoLeaks(t)
	a, b := startMember(t, 1, 7, nil), startMember(t, 2, 7, nil)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, nil)})
	b.tr.Send([]*raftpb.Message{appMsg(2, 1, 1, nil)})
	waitFor(t, 5*time.Second, "streams both ways", func() bool {
		return len(a.raft.received(2, nil)) == 1 && len(b.raft.received(1, nil)) == 1
	})
	if n := countGoroutines(streamGoroutines); n != 2 {
		t.Fatalf("%d stream goroutines with two members, want 2", n)
	}

	a.tr.RemovePeer(2)
	if n := countGoroutines(streamGoroutines); n != 1 {
		t.Errorf("%d stream goroutines after RemovePeer, want 1 (B's)", n)
	}
	if !a.tr.ActiveSince(2).IsZero() {
		t.Error("ActiveSince of a removed peer is set")
	}
	// A drops messages to B and reports it; B's stream to A is refused
	// from now on.
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 2, nil)})
	waitFor(t, 5*time.Second, "ReportUnreachable for a removed peer", func() bool { return a.raft.unreachableCount(2) > 0 })
	waitFor(t, 5*time.Second, "B's stream to A to be closed", func() bool { return b.tr.ActiveSince(1).IsZero() })
	b.tr.Send([]*raftpb.Message{appMsg(2, 1, 2, nil)})
	time.Sleep(100 * time.Millisecond)
	if got := a.raft.received(2, nil); len(got) != 1 {
		t.Errorf("A stepped %d messages from B, a removed peer; want only the one from before", len(got))
	}
	if !b.tr.ActiveSince(1).IsZero() {
		t.Error("A accepted a stream from a removed peer")
	}

	// And adding it back works.
	a.tr.AddPeer(2, []string{b.url})
	b.tr.Send([]*raftpb.Message{appMsg(2, 1, 3, nil)})
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 3, nil)})
	waitFor(t, 5*time.Second, "messages after re-adding", func() bool {
		ga, gb := a.raft.received(2, nil), b.raft.received(1, nil)
		return len(ga) > 0 && ga[len(ga)-1].GetIndex() == 3 && len(gb) > 0 && gb[len(gb)-1].GetIndex() == 3
	})
}

func TestPeerURLs(t *testing.T) {
	checkNoLeaks(t)
	a, b := startMember(t, 1, 7, nil), startMember(t, 2, 7, nil)
	b.tr.AddPeer(1, []string{a.url})
	dead := deadURL(t)

	// A dead URL first: the next one is tried.
	a.tr.AddPeer(2, []string{dead, b.url})
	a.tr.AddPeer(2, []string{dead, b.url}) // idempotent
	a.tr.AddPeer(1, []string{a.url})       // itself: ignored
	if n := countGoroutines(streamGoroutines); n != 2 {
		t.Errorf("%d stream goroutines, want 2 (one each way)", n)
	}
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, nil)})
	waitFor(t, 5*time.Second, "the message via the second URL", func() bool { return len(b.raft.received(1, nil)) == 1 })

	// Updating to a dead URL breaks the stream; back to a live one mends it.
	a.tr.UpdatePeer(2, []string{dead})
	waitFor(t, 5*time.Second, "the stream to close", func() bool { return a.tr.ActiveSince(2).IsZero() })
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 2, nil)})
	a.tr.UpdatePeer(2, []string{"not a url", b.url})
	waitFor(t, 5*time.Second, "the message queued meanwhile", func() bool { return len(b.raft.received(1, nil)) == 2 })
	if a.tr.ActiveSince(2).IsZero() {
		t.Error("ActiveSince is zero after the stream reopened")
	}
	a.tr.UpdatePeer(9, []string{b.url}) // unknown: ignored
	if !a.tr.ActiveSince(9).IsZero() {
		t.Error("UpdatePeer added a peer")
	}
}

func TestStopEndsEverything(t *testing.T) {
	checkNoLeaks(t)
	a, b, c := startMember(t, 1, 7, nil), startMember(t, 2, 7, nil), startMember(t, 3, 7, nil)
	connect(a, b, c)
	// A snapshot stuck half-way and busy streams everywhere.
	a.store.size = 64 << 20
	b.store.slowReceive = true
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 10)})
	for _, m := range []*member{a, b, c} {
		for _, p := range []*member{a, b, c} {
			if m != p {
				m.tr.Send([]*raftpb.Message{appMsg(m.id, p.id, 1, nil)})
			}
		}
	}
	waitFor(t, 5*time.Second, "all streams", func() bool {
		return len(a.raft.received(2, nil)) == 1 && len(b.raft.received(3, nil)) == 1 && len(c.raft.received(1, nil)) == 1
	})
	waitFor(t, 5*time.Second, "the snapshot to start", func() bool { return countGoroutines("(*Transport).serveSnapshot") == 1 })

	start := time.Now()
	a.tr.Stop() // sending a snapshot to B
	b.tr.Stop() // receiving it, and streams from A and C
	c.tr.Stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v", d)
	}
	// Handlers run on the server's goroutines and may still be returning
	// from their last deferred call; anything else would be a leak.
	waitFor(t, time.Second, "handlers to return", func() bool { return len(transportGoroutines()) == 0 })
	if got := a.raft.snapshotReports(2); len(got) != 0 {
		t.Errorf("ReportSnapshot called during Stop: %v", got)
	}
	// Stopped transports do nothing, twice over.
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 2, nil), snapMsg(1, 2, 11)})
	a.tr.AddPeer(4, []string{deadURL(t)})
	a.tr.Stop()
	if n := countGoroutines(streamGoroutines); n != 0 {
		t.Errorf("%d stream goroutines after Stop", n)
	}
}

// rawStream opens a stream to a member by hand, as member from.
func rawStream(t *testing.T, url string, from, to, cluster uint64) (*io.PipeWriter, *http.Response) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, url+StreamPath, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderFrom, idString(from))
	req.Header.Set(HeaderTo, idString(to))
	req.Header.Set(HeaderClusterID, idString(cluster))
	req.Close = true
	rt := &http.Transport{}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream refused: %s", resp.Status)
	}
	t.Cleanup(func() {
		pw.Close()
		resp.Body.Close()
		rt.CloseIdleConnections()
	})
	return pw, resp
}

func writeFrames(t *testing.T, w io.Writer, msgs ...*raftpb.Message) {
	t.Helper()
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = appendFrame(buf, m, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Write(buf); err != nil {
		t.Fatal(err)
	}
}

func TestInboundStreamRules(t *testing.T) {
	checkNoLeaks(t)
	b := startMember(t, 2, 7, nil)
	b.tr.AddPeer(1, []string{deadURL(t)})
	b.tr.AddPeer(3, []string{deadURL(t)})

	old, oldResp := rawStream(t, b.url, 1, 2, 7)
	writeFrames(t, old, appMsg(1, 2, 1, nil))
	waitFor(t, 5*time.Second, "the first stream's message", func() bool { return len(b.raft.received(1, nil)) == 1 })

	// A second stream from the same member replaces the first, which the
	// receiver closes.
	cur, _ := rawStream(t, b.url, 1, 2, 7)
	ended := make(chan struct{})
	go func() {
		io.Copy(io.Discard, oldResp.Body)
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced stream is still open")
	}

	// Only messages from the stream's sender, to this member, and never
	// a MsgSnap (its store snapshot would be missing) are stepped.
	writeFrames(t, cur,
		appMsg(3, 2, 2, nil), // from someone else
		appMsg(1, 4, 3, nil), // for someone else
		snapMsg(1, 2, 4),     // a snapshot on the stream
		appMsg(1, 2, 5, nil),
	)
	waitFor(t, 5*time.Second, "the good message", func() bool { return len(b.raft.received(1, nil)) == 2 })
	if got := b.raft.received(1, nil); got[1].GetIndex() != 5 {
		t.Errorf("stepped index %d, want 5", got[1].GetIndex())
	}
	if got := b.raft.received(3, nil); len(got) != 0 {
		t.Errorf("stepped a message claiming to be from 3 on 1's stream")
	}

	// A corrupt frame ends the stream.
	_, err := cur.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err == nil {
		waitFor(t, 5*time.Second, "the corrupt stream to be closed", func() bool { return countGoroutines("(*Transport).serveStream") == 0 })
	}
}

// Stop and RemovePeer must not wait for a connection attempt to time
// out. (The HTTP transport waits for the request body before returning
// from a cancelled RoundTrip, and a stream's body has nothing to say yet.)
func TestStopIsPromptWhileConnecting(t *testing.T) {
	checkNoLeaks(t)
	for _, stop := range []struct {
		name string
		fn   func(*Transport)
	}{
		{"Stop", (*Transport).Stop},
		{"RemovePeer", func(tr *Transport) { tr.RemovePeer(2) }},
	} {
		t.Run(stop.name, func(t *testing.T) {
			a := startMember(t, 1, 7, func(c *Config) { c.DialTimeout = time.Minute })
			a.tr.AddPeer(2, []string{blackhole(t)})
			a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 1)})
			time.Sleep(50 * time.Millisecond) // connected, waiting for an answer
			start := time.Now()
			stop.fn(a.tr)
			if d := time.Since(start); d > time.Second {
				t.Errorf("%s took %v while connecting", stop.name, d)
			}
		})
	}
}
