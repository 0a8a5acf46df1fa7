package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A partition is made in the peer network, not in the servers: with
// Config.Proxy, each member listens on its own peer port but advertises
// the URL of a reverse proxy the harness runs in front of it, so every
// peer request bound for member B passes through B's proxy. The proxy
// learns the sender from the header the sender's transport sets (Cairn:
// X-Cairn-From, etcd's rafthttp: X-Server-From; both the sender's member
// ID in hex), maps that ID to a member index, and refuses the request
// when the (sender, B) pair is blocked.
//
// Raft transports keep long-lived streams open (etcd's stream GETs whose
// response body carries messages for as long as the connection lives),
// so blocking new requests is not enough: when a partition starts, the
// proxy also cancels every in-flight request of a pair that is now
// blocked, which makes httputil.ReverseProxy abort the sender's
// connection. Requests are tracked by their cancel functions, so nothing
// is hijacked.
//
// What this cannot see: a peer request without a sender header (etcd's
// /members, /version and lease forwarding, Cairn's /members and lease
// calls). Those pass, unless their target is cut off from every other
// member (Isolate), in which case they are refused too.

// senderHeaders carry the sending member's ID in hex.
var senderHeaders = []string{"X-Cairn-From", "X-Server-From"}

// network is the fault state the proxies of one cluster share.
type network struct {
	mu      sync.Mutex
	size    int            // members the cluster has had, removed ones included
	ids     map[uint64]int // member ID → index in Cluster.Members
	blocked map[pair]bool  // both directions are listed
	flights map[*flight]struct{}
	cut     int // in-flight requests cancelled by partitions
	refused int // requests refused because their pair was blocked
}

// pair is a sender and a receiver, as member indexes; from is -1 when
// the sender is unknown.
type pair struct{ from, to int }

// flight is a request passing through a proxy.
type flight struct {
	pair
	cancel context.CancelFunc
}

func newNetwork() *network {
	return &network{ids: make(map[uint64]int), blocked: make(map[pair]bool), flights: make(map[*flight]struct{})}
}

// setID records that the member at index i has the given ID.
func (n *network) setID(i int, id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids[id] = i
	n.size = max(n.size, i+1)
}

// sender maps the request's sender header to a member index, or -1.
func (n *network) sender(h http.Header) int {
	for _, name := range senderHeaders {
		v := h.Get(name)
		if v == "" {
			continue
		}
		id, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			continue
		}
		n.mu.Lock()
		i, ok := n.ids[id]
		n.mu.Unlock()
		if ok {
			return i
		}
	}
	return -1
}

// admit registers a request from → to and returns its flight, or nil
// when the pair is blocked.
func (n *network) admit(p pair, cancel context.CancelFunc) *flight {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.blockedLocked(p) {
		n.refused++
		return nil
	}
	f := &flight{pair: p, cancel: cancel}
	n.flights[f] = struct{}{}
	return f
}

func (n *network) land(f *flight) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.flights, f)
}

func (n *network) blockedLocked(p pair) bool {
	if p.from >= 0 {
		return n.blocked[p]
	}
	// An unknown sender is refused only by a member nobody may reach.
	if n.size < 2 {
		return false
	}
	for i := range n.size {
		if i != p.to && !n.blocked[pair{i, p.to}] {
			return false
		}
	}
	return true
}

// partition replaces the blocked pairs with those between members of
// different groups and cuts the in-flight requests they forbid, along
// with every request whose sender was unknown when it started (it
// reconnects and is judged again).
func (n *network) partition(groupOf []int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.size = max(n.size, len(groupOf))
	clear(n.blocked)
	for a := range groupOf {
		for b := range groupOf {
			if a != b && groupOf[a] != groupOf[b] {
				n.blocked[pair{a, b}] = true
			}
		}
	}
	for f := range n.flights {
		if f.from < 0 || n.blockedLocked(f.pair) {
			f.cancel()
			delete(n.flights, f)
			n.cut++
		}
	}
}

// stats returns how many requests were refused and how many cut.
func (n *network) stats() (refused, cut int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.refused, n.cut
}

// heal unblocks every pair.
func (n *network) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.blocked)
}

// peerProxy forwards peer requests to one member's peer port.
type peerProxy struct {
	to  int // index of the member behind it
	net *network
	rp  *httputil.ReverseProxy
	tr  *http.Transport
	srv *http.Server
	ln  net.Listener
	wg  sync.WaitGroup // the serving goroutine and every request handler

	target atomic.Pointer[url.URL] // the member's peer URL; nil until known
	// URL is what the member advertises as its peer URL.
	URL string
}

// discard silences the proxy's own logs: refused and cut requests are
// the point of it, not news.
var discard = log.New(io.Discard, "", 0)

// listenProxy starts a proxy on a port of its own, for the member at
// index to; it forwards once setTarget names the member's peer port.
func listenProxy(n *network, to int) (*peerProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testcluster: listen for peer proxy: %w", err)
	}
	p := &peerProxy{to: to, net: n, ln: ln, URL: "http://" + ln.Addr().String()}
	p.tr = &http.Transport{
		Proxy:               nil, // never an HTTP_PROXY of the environment
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			if u := p.target.Load(); u != nil {
				r.SetURL(u)
			}
		},
		Transport:     p.tr,
		FlushInterval: -1, // raft streams: pass every write on at once
		ErrorLog:      discard,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				// Cut by a partition (or the sender left): drop the
				// connection as a broken network would.
				panic(http.ErrAbortHandler)
			}
			http.Error(w, "testcluster proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p, ErrorLog: discard}
	p.wg.Go(func() { _ = p.srv.Serve(ln) })
	return p, nil
}

// setTarget points the proxy at the member's real peer URL.
func (p *peerProxy) setTarget(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("testcluster: peer proxy target %q: %w", target, err)
	}
	p.target.Store(u)
	return nil
}

func (p *peerProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.wg.Add(1)
	defer p.wg.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	f := p.net.admit(pair{from: p.net.sender(r.Header), to: p.to}, cancel)
	if f == nil {
		// A partition: no answer, the connection just breaks.
		panic(http.ErrAbortHandler)
	}
	defer p.net.land(f)
	if p.target.Load() == nil {
		http.Error(w, "testcluster proxy: member has no peer port yet", http.StatusBadGateway)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// close stops the proxy and waits for the requests passing through it,
// which end as closing their connections cancels them.
func (p *peerProxy) close() {
	_ = p.srv.Close()
	p.wg.Wait()
	p.tr.CloseIdleConnections()
}

// errNoProxy is the failure of a fault injected into a cluster started
// without Config.Proxy.
var errNoProxy = errors.New("testcluster: partitions need Config.Proxy")
