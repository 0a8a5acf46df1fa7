package testcluster

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestNetworkBlocksPairsAcrossGroups(t *testing.T) {
	n := newNetwork()
	for i := range 5 {
		n.setID(i, uint64(0x10+i))
	}
	n.partition([]int{0, 0, 1, 1, 2}) // {0,1} {2,3} {4}
	for _, tc := range []struct {
		from, to int
		blocked  bool
	}{
		{0, 1, false}, {1, 0, false}, {2, 3, false},
		{0, 2, true}, {2, 0, true}, {3, 4, true}, {4, 1, true},
		// An unknown sender reaches anyone someone may reach...
		{-1, 0, false}, {-1, 3, false},
		// ...but not a member cut off from all.
		{-1, 4, true},
	} {
		n.mu.Lock()
		got := n.blockedLocked(pair{tc.from, tc.to})
		n.mu.Unlock()
		if got != tc.blocked {
			t.Errorf("%d→%d blocked = %v; want %v", tc.from, tc.to, got, tc.blocked)
		}
	}
	n.heal()
	if n.blockedLocked(pair{0, 4}) || n.blockedLocked(pair{-1, 4}) {
		t.Error("heal left pairs blocked")
	}
}

func TestNetworkMapsEitherSenderHeader(t *testing.T) {
	n := newNetwork()
	n.setID(3, 0x8e9e05c52164694d)
	for _, h := range []string{"X-Cairn-From", "X-Server-From"} {
		hdr := http.Header{}
		hdr.Set(h, "8e9e05c52164694d")
		if got := n.sender(hdr); got != 3 {
			t.Errorf("%s: sender = %d; want 3", h, got)
		}
	}
	hdr := http.Header{}
	hdr.Set("X-Server-From", "ffff")
	if got := n.sender(hdr); got != -1 {
		t.Errorf("unknown ID: sender = %d; want -1", got)
	}
	if got := n.sender(http.Header{}); got != -1 {
		t.Errorf("no header: sender = %d; want -1", got)
	}
}

// TestProxyCutsStreamsWhenPartitioned pins the proxy against a stand-in
// peer that streams forever, as etcd's raft streams do: the stream flows
// through, a partition breaks it and refuses new requests of the pair,
// and healing lets them through again.
func TestProxyCutsStreamsWhenPartitioned(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "msg %d\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	defer upstream.Close()

	n := newNetwork()
	n.setID(0, 0xa)
	n.setID(1, 0xb)
	p, err := listenProxy(n, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.setTarget(upstream.URL); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	stream := func(header string) (*bufio.Reader, func(), error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/raft/stream/message/a", nil)
		req.Header.Set(header, "a")
		resp, err := client.Do(req)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close(); cancel() }, nil
	}

	r, done, err := stream("X-Server-From")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if line, err := r.ReadString('\n'); err != nil || line != "msg 0\n" {
		t.Fatalf("first streamed line = %q, %v", line, err)
	}
	n.partition([]int{0, 1})
	start := time.Now()
	for {
		if _, err := r.ReadString('\n'); err != nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the stream still flows 5s after the partition")
		}
	}
	if _, _, err := stream("X-Cairn-From"); err == nil {
		t.Fatal("a new request of a blocked pair went through")
	}
	if refused, cut := n.stats(); refused == 0 || cut != 1 {
		t.Errorf("refused %d, cut %d; want some refused and 1 cut", refused, cut)
	}

	n.heal()
	r, done2, err := stream("X-Cairn-From")
	if err != nil {
		t.Fatalf("after heal: %v", err)
	}
	defer done2()
	if line, err := r.ReadString('\n'); err != nil || line != "msg 0\n" {
		t.Fatalf("after heal, first streamed line = %q, %v", line, err)
	}
}
