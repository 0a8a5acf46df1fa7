package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/internal/testcluster"
	"github.com/cairnkv/cairn/transport"
)

// TestGarbageOnThePeerPort sends the leader's peer port what a broken
// peer, a port scanner or a hostile host sends: random bytes, truncated
// frames, length prefixes claiming the largest frame allowed (and more),
// frames from a member ID the cluster does not have, messages addressed
// to someone else, and malformed HTTP. The member must refuse or drop
// each connection, log it, keep serving clients, and the cluster must
// keep committing writes without losing any; its RSS must stay bounded,
// even while dozens of connections hold a near-limit length prefix open.
func TestGarbageOnThePeerPort(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx := testContext(t)
	li := c.WaitLeader(t)
	target := c.Members[li]
	follower := c.Members[(li+1)%3]
	st, err := target.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := &garbagePeer{
		t:       t,
		addr:    hostOf(t, target.PeerURL),
		cluster: st.Header.ClusterId,
		to:      target.ID(),
		from:    follower.ID(), // a real peer's ID: the headers pass, the frames are reached
		rng:     rand.New(rand.NewPCG(18, 18)),
	}

	cli := c.Client(t)
	l := startLoad(t, cli, "gp/", 4)
	l.waitMore(t, 50, 30*time.Second)
	pid := target.PID()
	rssBefore := testcluster.ProcStatusKiB(t, pid, "VmRSS")

	// 1. Random bytes on fresh TCP connections, of every size up to 64 KiB.
	for range 300 {
		g.raw(g.random(1 + g.rng.IntN(64<<10)))
	}
	// 2. Plain HTTP garbage: not HTTP, wrong methods, bad and missing
	// headers, a foreign cluster, a request for another member, an
	// unknown member, a header block over the server's limit.
	for range 10 {
		g.raw([]byte("hello raft\r\n\r\n"))
		g.raw([]byte("GET /raft/stream HTTP/1.1\r\nHost: x\r\n\r\n"))
		g.raw([]byte("POST /raft/stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
		g.raw(g.request(transport.StreamPath, map[string]string{transport.HeaderFrom: "zz"}, nil, 0))
		g.raw(g.request(transport.StreamPath, g.headers(g.from, g.to, g.cluster+1), nil, 0))
		g.raw(g.request(transport.StreamPath, g.headers(g.from, g.to+1, g.cluster), nil, 0))
		g.raw(g.request(transport.SnapshotPath, g.headers(0xdead, g.to, g.cluster), g.frames(g.msg(raftpb.MsgSnap, 0xdead)), 0))
		g.raw(g.request(transport.StreamPath, g.headers(0xdead, g.to, g.cluster), g.frames(g.msg(raftpb.MsgHeartbeat, 0xdead)), 0))
		g.raw([]byte("POST /raft/probe HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"))
		g.raw([]byte("GET /members/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"))
	}
	// 3. Streams with the real peer's headers and garbage frames:
	// random payloads, truncated frames, an overflowing length, a
	// message decoded fine but from an unknown member or to another one
	// (dropped), a MsgSnap on the stream (dropped), a length over the
	// limit.
	for range 40 {
		hb := g.frames(g.msg(raftpb.MsgHeartbeatResp, g.from))
		g.raw(g.request(transport.StreamPath, g.headers(g.from, g.to, g.cluster), g.random(1+g.rng.IntN(4096)), 0))
		g.raw(g.request(transport.StreamPath, g.headers(g.from, g.to, g.cluster), hb[:len(hb)-1], 0))
		g.raw(g.request(transport.StreamPath, g.headers(g.from, g.to, g.cluster), bytes.Repeat([]byte{0xff}, 11), 0))
		g.raw(g.request(transport.StreamPath, g.headers(g.from, g.to, g.cluster), g.frames(g.msg(raftpb.MsgHeartbeatResp, 0xdead), g.msg(raftpb.MsgSnap, g.from)), 0))
		g.raw(g.request(transport.StreamPath, g.headers(g.from, g.to, g.cluster), binary.AppendUvarint(nil, transport.DefaultMaxFrameSize+1), 0))
		g.raw(g.request(transport.SnapshotPath, g.headers(g.from, g.to, g.cluster), g.random(1+g.rng.IntN(4096)), 0))
		g.raw(g.request(transport.SnapshotPath, g.headers(g.from, g.to, g.cluster), g.frames(g.msg(raftpb.MsgApp, g.from)), 0))
	}
	l.waitMore(t, 50, 30*time.Second)

	// 4. Length prefixes claiming the largest frame allowed, held open:
	// 32 streams and 32 snapshot uploads, each having sent 1 KiB of the
	// 64 MiB it announced. The member must not reserve 4 GiB for them.
	var held []net.Conn
	for i := range 64 {
		path := transport.StreamPath
		if i%2 == 1 {
			path = transport.SnapshotPath
		}
		body := append(binary.AppendUvarint(nil, transport.DefaultMaxFrameSize), g.random(1024)...)
		conn := g.open(g.request(path, g.headers(g.from, g.to, g.cluster), body, transport.DefaultMaxFrameSize+16))
		if conn != nil {
			held = append(held, conn)
		}
	}
	time.Sleep(2 * time.Second)
	rssHeld := testcluster.ProcStatusKiB(t, pid, "VmRSS")
	// Clients are still served while they are held.
	readStart := time.Now()
	if _, err := target.Client(t).Get(ctx, "gp/"); err != nil {
		t.Fatalf("linearizable read from the member under garbage: %v", err)
	}
	readTook := time.Since(readStart)
	l.waitMore(t, 50, 30*time.Second)
	for _, conn := range held {
		conn.Close()
	}

	l.waitMore(t, 100, 30*time.Second)
	l.stop()
	acked, failed := l.snapshot()
	checkAcked(t, ctx, cli, "gp/", acked)
	rssAfter := testcluster.ProcStatusKiB(t, pid, "VmRSS")
	hwm := testcluster.ProcStatusKiB(t, pid, "VmHWM")
	if !target.Running() || target.PID() != pid {
		t.Fatal("the member under garbage exited")
	}
	t.Logf("garbage: %d connections, %d bytes, %d frames (%d refused with an HTTP error, %d dropped without an answer); %d held open with a 64 MiB length prefix",
		g.conns, g.bytes, g.frameCount, g.refused, g.dropped, len(held))
	l.mu.Lock()
	lastErr := l.last
	l.mu.Unlock()
	t.Logf("leader RSS: %d MiB before, %d MiB with the prefixes held, %d MiB after (peak %d MiB); a linearizable read took %v while they were held; load: %d writes acknowledged, %d failed (last: %v)",
		rssBefore>>10, rssHeld>>10, rssAfter>>10, hwm>>10, readTook.Round(time.Millisecond), len(acked), failed, lastErr)
	if grow := rssHeld - rssBefore; grow > 200<<10 {
		t.Errorf("RSS grew by %d MiB while 64 connections held a 64 MiB length prefix", grow>>10)
	}
	if grow := rssAfter - rssBefore; grow > 200<<10 {
		t.Errorf("RSS grew by %d MiB over the garbage", grow>>10)
	}
	if readTook > 5*time.Second {
		t.Errorf("a linearizable read took %v under garbage", readTook)
	}
	logs := target.Logs()
	for _, want := range []string{"transport: bad stream from peer", "transport: refused peer request", "transport: receiving snapshot failed", "transport: dropped misaddressed message"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the member's log has no %q", want)
		}
	}
}

// garbagePeer sends bytes to one member's peer port and counts them.
type garbagePeer struct {
	t                 *testing.T
	addr              string
	cluster, to, from uint64
	rng               *rand.Rand

	mu                       sync.Mutex
	conns, bytes, frameCount int
	refused, dropped         int
}

func (g *garbagePeer) random(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return b
}

func (g *garbagePeer) headers(from, to, cluster uint64) map[string]string {
	return map[string]string{
		transport.HeaderFrom:      strconv.FormatUint(from, 16),
		transport.HeaderTo:        strconv.FormatUint(to, 16),
		transport.HeaderClusterID: strconv.FormatUint(cluster, 16),
	}
}

// msg is a message of type typ from from to the target, at term 0 so
// that raft, if it ever saw one, would ignore it.
func (g *garbagePeer) msg(typ raftpb.MessageType, from uint64) *raftpb.Message {
	return &raftpb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(g.to), Term: proto.Uint64(0)}
}

// frames encodes ms as the transport does: a uvarint length, then the message.
func (g *garbagePeer) frames(ms ...*raftpb.Message) []byte {
	var out []byte
	for _, m := range ms {
		b, err := proto.Marshal(m)
		if err != nil {
			g.t.Fatal(err)
		}
		out = append(binary.AppendUvarint(out, uint64(len(b))), b...)
	}
	g.mu.Lock()
	g.frameCount += len(ms)
	g.mu.Unlock()
	return out
}

// request is an HTTP/1.1 POST of body to path; contentLength, if
// positive, is what the request claims to carry instead of len(body).
func (g *garbagePeer) request(path string, hdr map[string]string, body []byte, contentLength int) []byte {
	if contentLength <= 0 {
		contentLength = len(body)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n", path, g.addr, contentLength)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// open connects, writes data and returns the open connection (nil if
// the member closed it first, which it may for garbage).
func (g *garbagePeer) open(data []byte) net.Conn {
	conn, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
	if err != nil {
		g.t.Fatalf("dial the peer port: %v", err)
	}
	g.mu.Lock()
	g.conns++
	g.bytes += len(data)
	g.mu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(data); err != nil {
		conn.Close()
		return nil
	}
	return conn
}

// raw sends data on a fresh connection, half-closes it and reads
// whatever the member answers until it closes the connection, which it
// must do within 15 s (its header timeout is 10 s).
func (g *garbagePeer) raw(data []byte) {
	conn := g.open(data)
	if conn == nil {
		g.mu.Lock()
		g.dropped++
		g.mu.Unlock()
		return
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		// A stream is answered 200 before its body is read; the member
		// then closes it on the bad frame.
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		g.t.Errorf("the member kept a garbage connection open for 15 s (sent %q...)", data[:min(len(data), 60)])
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if resp != nil && resp.StatusCode >= 400 {
		g.refused++
	} else {
		g.dropped++
	}
}

func hostOf(t *testing.T, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
