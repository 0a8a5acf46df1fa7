package testcluster

import (
	"fmt"
	"net"
	"sync"
)

// A client partition is made by a plain TCP proxy in front of a member's
// client port (gRPC is HTTP/2 on long-lived connections, which an HTTP
// reverse proxy would terminate). While a member's client proxy is cut,
// it black-holes: connections stay open and accepted, but every byte in
// either direction is dropped, so a client notices only by its own
// timeouts and keepalives, as behind a real partition. A connection that
// lived through a cut has lost bytes in the middle of its HTTP/2 stream,
// so healing closes it and the client reconnects.

// tcpProxy forwards one listening port to one member's client port.
type tcpProxy struct {
	ln  net.Listener
	URL string

	mu     sync.Mutex
	target string // host:port
	cut    bool
	conns  map[*proxyConn]struct{}
	wg     sync.WaitGroup
	closed bool
}

// proxyConn is one client connection and its connection to the member.
type proxyConn struct {
	client, server net.Conn
	doomed         bool // lived through a cut: closed on heal; under mu
}

func listenTCPProxy() (*tcpProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testcluster: client proxy: %w", err)
	}
	p := &tcpProxy{ln: ln, URL: "http://" + ln.Addr().String(), conns: make(map[*proxyConn]struct{})}
	p.wg.Go(p.serve)
	return p, nil
}

func (p *tcpProxy) setTarget(hostport string) {
	p.mu.Lock()
	p.target = hostport
	p.mu.Unlock()
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target, closed := p.target, p.closed
		p.mu.Unlock()
		if closed {
			c.Close()
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close() // the member is down: as if nothing listened
			continue
		}
		pc := &proxyConn{client: c, server: s}
		p.mu.Lock()
		pc.doomed = p.cut
		p.conns[pc] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(pc, c, s) })
		p.wg.Go(func() { p.pipe(pc, s, c) })
	}
}

// pipe copies src to dst, dropping what it reads while pc is doomed,
// until either side fails; then it closes both.
func (p *tcpProxy) pipe(pc *proxyConn, src, dst net.Conn) {
	defer func() {
		pc.client.Close()
		pc.server.Close()
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			drop := pc.doomed
			p.mu.Unlock()
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// setCut starts or ends a black-hole.
func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	for pc := range p.conns {
		switch {
		case cut:
			pc.doomed = true
		case pc.doomed:
			pc.client.Close()
			pc.server.Close()
		}
	}
}

func (p *tcpProxy) close() {
	p.mu.Lock()
	p.closed = true
	for pc := range p.conns {
		pc.client.Close()
		pc.server.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// ProxiedEndpoints are the URLs of every member's client proxy, for
// clients that CutClient should be able to cut off. It needs
// Config.ClientProxy.
func (c *Cluster) ProxiedEndpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientProxyURL
	}
	return eps
}

// CutClient black-holes every client connection through member i's
// client proxy, open or opened later, until HealClient. The member and
// its peers notice nothing.
func (c *Cluster) CutClient(i int) {
	c.t.Helper()
	c.clientProxy(i).setCut(true)
}

// HealClient ends a CutClient of member i; the connections that lived
// through it are closed, and clients reconnect.
func (c *Cluster) HealClient(i int) {
	c.t.Helper()
	c.clientProxy(i).setCut(false)
}

func (c *Cluster) clientProxy(i int) *tcpProxy {
	c.t.Helper()
	if !c.cfg.ClientProxy {
		c.t.Fatal("testcluster: client partitions need Config.ClientProxy")
	}
	if i < 0 || i >= len(c.clientProxies) {
		c.t.Fatalf("testcluster: no member %d (the cluster has %d)", i, len(c.clientProxies))
	}
	return c.clientProxies[i]
}
