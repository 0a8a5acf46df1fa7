package transport

import (
	"context"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// partitionProxy is a stock httputil.ReverseProxy in front of a member,
// as the cluster tests use: it refuses requests from blocked senders,
// telling them apart by X-Cairn-From, and cuts their requests in flight.
type partitionProxy struct {
	srv    *httptest.Server
	rp     *httputil.ReverseProxy
	client *http.Transport

	mu       sync.Mutex
	blocked  map[string]bool
	inflight map[*proxied]struct{}
}

type proxied struct {
	from   string
	cancel context.CancelFunc
}

// startProxy starts a proxy without a target; call to() before use.
// Started before its member, it is closed after it.
func startProxy(t *testing.T) *partitionProxy {
	p := &partitionProxy{
		client:   &http.Transport{},
		blocked:  make(map[string]bool),
		inflight: make(map[*proxied]struct{}),
	}
	p.rp = &httputil.ReverseProxy{Transport: p.client, ErrorLog: log.New(t.Output(), "proxy: ", 0)}
	p.srv = httptest.NewServer(p)
	t.Cleanup(func() {
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
	return p
}

func (p *partitionProxy) to(target string) {
	u, _ := url.Parse(target)
	p.rp.Rewrite = func(r *httputil.ProxyRequest) { r.SetURL(u) }
}

func (p *partitionProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	from := r.Header.Get(HeaderFrom)
	p.mu.Lock()
	if p.blocked[from] {
		p.mu.Unlock()
		http.Error(w, "partitioned", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	req := &proxied{from: from, cancel: cancel}
	p.inflight[req] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.inflight, req)
		p.mu.Unlock()
		cancel()
	}()
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// block refuses requests from member id and cuts those in flight.
func (p *partitionProxy) block(id uint64, blocked bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked[idString(id)] = blocked
	if blocked {
		for req := range p.inflight {
			if req.from == idString(id) {
				req.cancel()
			}
		}
	}
}

func TestThroughReverseProxy(t *testing.T) {
	checkNoLeaks(t)
	var ms []*member
	var proxies []*partitionProxy
	for id := uint64(1); id <= 3; id++ {
		p := startProxy(t)
		m := startMember(t, id, 7, nil)
		p.to(m.url)
		m.url = p.srv.URL
		ms, proxies = append(ms, m), append(proxies, p)
	}
	connect(ms...)
	a, b, c := ms[0], ms[1], ms[2]

	// Everyone to everyone, in order.
	const n = 500
	for i := uint64(1); i <= n; i++ {
		for _, from := range ms {
			for _, to := range ms {
				if from != to {
					from.tr.Send([]*raftpb.Message{appMsg(from.id, to.id, i, []byte("through the proxy"))})
				}
			}
		}
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // stay well inside the queues
		}
	}
	for _, to := range ms {
		for _, from := range ms {
			if from != to {
				waitFor(t, 10*time.Second, "messages through the proxies", func() bool { return len(to.raft.received(from.id, msgApp)) >= n })
				checkIndexes(t, to.raft.received(from.id, msgApp), 1, n)
			}
		}
	}

	// A snapshot.
	a.store.size = 8 << 20
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 77)})
	waitFor(t, 10*time.Second, "ReportSnapshot", func() bool { return len(a.raft.snapshotReports(2)) > 0 })
	if got := a.raft.snapshotReports(2); got[0] != raft.SnapshotFinish {
		t.Fatalf("ReportSnapshot(%v) through the proxy, want SnapshotFinish", got[0])
	}
	if h, ok := b.store.savedHash(77); !ok || h != snapshotHash(77, a.store.size) {
		t.Fatal("snapshot through the proxy arrived damaged")
	}

	// Partition A from B, both ways; C still reaches both.
	unreachableBefore := a.raft.unreachableCount(2)
	proxies[1].block(1, true)
	proxies[0].block(2, true)
	waitFor(t, 5*time.Second, "the cut streams to be noticed", func() bool {
		return a.tr.ActiveSince(2).IsZero() && b.tr.ActiveSince(1).IsZero() && a.raft.unreachableCount(2) > unreachableBefore
	})
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, n+1, nil)})
	c.tr.Send([]*raftpb.Message{appMsg(3, 2, n+1, nil)})
	waitFor(t, 5*time.Second, "C's message to B", func() bool { return len(b.raft.received(3, msgApp)) == n+1 })
	if got := b.raft.received(1, msgApp); len(got) != n {
		t.Fatalf("B got %d messages from A during the partition", len(got)-n)
	}

	// Heal: the message queued during the partition, and new ones, arrive.
	proxies[1].block(1, false)
	proxies[0].block(2, false)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, n+2, nil)})
	waitFor(t, 5*time.Second, "A's messages after healing", func() bool {
		got := b.raft.received(1, msgApp)
		return got[len(got)-1].GetIndex() == n+2
	})
	checkIncreasing(t, b.raft.received(1, msgApp))
	if a.tr.ActiveSince(2).IsZero() {
		t.Error("ActiveSince is zero after healing")
	}
	noViolations(t, ms...)
}
