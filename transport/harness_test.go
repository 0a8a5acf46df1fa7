package transport

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// fakeRaft records what the transport tells raft.
type fakeRaft struct {
	mu          sync.Mutex
	got         map[uint64][]*raftpb.Message // by sender
	unreachable map[uint64]int
	snapReports map[uint64][]raft.SnapshotStatus
	// store, if set, must hold a snapshot before its MsgSnap is stepped.
	store *fakeStore
	// gate, if set, makes Process wait until it is closed.
	gate chan struct{}
	// violations lists broken promises, reported by the test.
	violations []string
}

func newFakeRaft() *fakeRaft {
	return &fakeRaft{
		got:         make(map[uint64][]*raftpb.Message),
		unreachable: make(map[uint64]int),
		snapReports: make(map[uint64][]raft.SnapshotStatus),
	}
}

func (r *fakeRaft) Process(ctx context.Context, m *raftpb.Message) error {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.GetType() == raftpb.MsgSnap && r.store != nil && !r.store.has(m.GetSnapshot().GetMetadata().GetIndex()) {
		r.violations = append(r.violations, fmt.Sprintf("MsgSnap %d stepped before its store snapshot was saved", m.GetSnapshot().GetMetadata().GetIndex()))
	}
	r.got[m.GetFrom()] = append(r.got[m.GetFrom()], m)
	return nil
}

func (r *fakeRaft) ReportUnreachable(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable[id]++
}

func (r *fakeRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snapReports[id] = append(r.snapReports[id], status)
}

func (r *fakeRaft) setGate(c chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gate = c
}

// received returns the messages from a peer, of one type (or all if typ
// is nil).
func (r *fakeRaft) received(from uint64, typ *raftpb.MessageType) []*raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*raftpb.Message
	for _, m := range r.got[from] {
		if typ == nil || m.GetType() == *typ {
			out = append(out, m)
		}
	}
	return out
}

func (r *fakeRaft) unreachableCount(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[id]
}

func (r *fakeRaft) snapshotReports(id uint64) []raft.SnapshotStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]raft.SnapshotStatus(nil), r.snapReports[id]...)
}

// fakeStore is a SnapshotStore whose snapshot for index i is size bytes
// of a pseudo-random sequence seeded by i, so the receiver can check
// every byte by its hash.
type fakeStore struct {
	size int64
	// failWriteAfter, if positive, makes Write fail after that many bytes.
	failWriteAfter int64
	// failReceiveAfter, if positive, makes Receive fail after that many bytes.
	failReceiveAfter int64
	// receiveShort, if positive, makes Receive stop reading (and succeed)
	// after that many bytes.
	receiveShort int64
	// slowReceive makes Receive read 4 KiB a millisecond.
	slowReceive bool

	mu        sync.Mutex
	saved     map[uint64][32]byte // index → hash of what Receive saved
	recvErrs  []error             // read errors Receive saw
	writeDone int                 // completed Write calls
}

func newFakeStore(size int64) *fakeStore {
	return &fakeStore{size: size, saved: make(map[uint64][32]byte)}
}

func snapshotStream(index uint64, size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(sha256.Sum256(fmt.Appendf(nil, "%d", index))), size)
}

func snapshotHash(index uint64, size int64) [32]byte {
	h := sha256.New()
	io.Copy(h, snapshotStream(index, size))
	return [32]byte(h.Sum(nil))
}

func (s *fakeStore) Write(m *raftpb.Message, w io.Writer) error {
	src := snapshotStream(m.GetSnapshot().GetMetadata().GetIndex(), s.size)
	if s.failWriteAfter > 0 {
		if _, err := io.CopyN(w, src, s.failWriteAfter); err != nil {
			return err
		}
		return errors.New("disk on fire")
	}
	if _, err := io.Copy(w, src); err != nil {
		return err
	}
	s.mu.Lock()
	s.writeDone++
	s.mu.Unlock()
	return nil
}

func (s *fakeStore) Receive(m *raftpb.Message, r io.Reader) error {
	h := sha256.New()
	switch {
	case s.failReceiveAfter > 0:
		io.CopyN(h, r, s.failReceiveAfter)
		return errors.New("no space left on device")
	case s.receiveShort > 0:
		if _, err := io.CopyN(h, r, s.receiveShort); err != nil {
			return err
		}
	default:
		if s.slowReceive {
			r = &slowReader{r}
		}
		if _, err := io.Copy(h, r); err != nil {
			s.mu.Lock()
			s.recvErrs = append(s.recvErrs, err)
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saved[m.GetSnapshot().GetMetadata().GetIndex()] = [32]byte(h.Sum(nil))
	return nil
}

type slowReader struct{ r io.Reader }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return s.r.Read(p[:min(len(p), 4<<10)])
}

func (s *fakeStore) has(index uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.saved[index]
	return ok
}

func (s *fakeStore) savedHash(index uint64) ([32]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.saved[index]
	return h, ok
}

func (s *fakeStore) receiveErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.recvErrs...)
}

// member is one Transport with its fake raft, store and HTTP server.
type member struct {
	id    uint64
	raft  *fakeRaft
	store *fakeStore
	tr    *Transport
	srv   *httptest.Server
	// url is what peers dial: the server, or a proxy in front of it.
	url string
}

// testConfig is a Config with short timeouts, logging to the test.
func testConfig(t testing.TB, id, cluster uint64) Config {
	return Config{
		ID:          id,
		ClusterID:   cluster,
		Logger:      slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("member", id),
		DialTimeout: time.Second,
		MinBackoff:  5 * time.Millisecond,
		MaxBackoff:  50 * time.Millisecond,
	}
}

// startMember starts a member; edit, if not nil, adjusts its config.
// Cleanup stops it.
func startMember(t testing.TB, id, cluster uint64, edit func(*Config)) *member {
	t.Helper()
	return startMemberServer(t, id, cluster, edit, nil)
}

// startMemberServer is startMember with a hook to configure the HTTP
// server before it starts.
func startMemberServer(t testing.TB, id, cluster uint64, edit func(*Config), srvEdit func(*http.Server)) *member {
	t.Helper()
	m := &member{id: id, raft: newFakeRaft(), store: newFakeStore(1 << 20)}
	m.raft.store = m.store
	cfg := testConfig(t, id, cluster)
	cfg.Raft, cfg.Snapshots = m.raft, m.store
	if edit != nil {
		edit(&cfg)
	}
	m.tr = New(cfg)
	m.srv = httptest.NewUnstartedServer(m.tr.Handler())
	if srvEdit != nil {
		srvEdit(m.srv.Config)
	}
	m.srv.Start()
	m.url = m.srv.URL
	t.Cleanup(m.stop)
	return m
}

// stop stops the transport, then the server: the server waits for its
// handlers, and the transport's streams end only when it stops.
func (m *member) stop() {
	m.tr.Stop()
	m.srv.CloseClientConnections()
	m.srv.Close()
}

// restart stops the member and starts a new one with the same ID, raft,
// store and address, as a member process restarting would.
func (m *member) restart(t testing.TB, cluster uint64, peers ...*member) {
	t.Helper()
	addr := m.srv.Listener.Addr().String()
	m.stop()
	var ln net.Listener
	waitFor(t, 5*time.Second, "listen again on "+addr, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	cfg := testConfig(t, m.id, cluster)
	cfg.Raft, cfg.Snapshots = m.raft, m.store
	m.tr = New(cfg)
	m.srv = httptest.NewUnstartedServer(m.tr.Handler())
	m.srv.Listener.Close()
	m.srv.Listener = ln
	m.srv.Start()
	for _, p := range peers {
		m.tr.AddPeer(p.id, []string{p.url})
	}
	t.Cleanup(m.stop)
}

// connect makes every member a peer of every other.
func connect(ms ...*member) {
	for _, a := range ms {
		for _, b := range ms {
			a.tr.AddPeer(b.id, []string{b.url})
		}
	}
}

func msg(typ raftpb.MessageType, from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{
		Type:  typ.Enum(),
		From:  proto.Uint64(from),
		To:    proto.Uint64(to),
		Term:  proto.Uint64(1),
		Index: proto.Uint64(index),
	}
}

func appMsg(from, to, index uint64, data []byte) *raftpb.Message {
	m := msg(raftpb.MsgApp, from, to, index)
	m.Entries = []*raftpb.Entry{{
		Term:  proto.Uint64(1),
		Index: proto.Uint64(index + 1),
		Type:  raftpb.EntryNormal.Enum(),
		Data:  data,
	}}
	return m
}

func snapMsg(from, to, index uint64) *raftpb.Message {
	m := msg(raftpb.MsgSnap, from, to, index)
	m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(index),
		Term:      proto.Uint64(1),
		ConfState: &raftpb.ConfState{Voters: []uint64{from, to}},
	}}
	return m
}

var msgApp = raftpb.MsgApp.Enum()

// waitFor polls cond until it holds or the time is up.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkIndexes fails unless msgs have indexes from, from+1, ..., to.
func checkIndexes(t testing.TB, msgs []*raftpb.Message, from, to uint64) {
	t.Helper()
	if uint64(len(msgs)) != to-from+1 {
		t.Fatalf("got %d messages, want %d (indexes %d..%d)", len(msgs), to-from+1, from, to)
	}
	for i, m := range msgs {
		if want := from + uint64(i); m.GetIndex() != want {
			t.Fatalf("message %d has index %d, want %d: out of order or lost", i, m.GetIndex(), want)
		}
	}
}

// checkIncreasing fails unless the indexes of msgs strictly increase.
func checkIncreasing(t testing.TB, msgs []*raftpb.Message) {
	t.Helper()
	for i := 1; i < len(msgs); i++ {
		if msgs[i].GetIndex() <= msgs[i-1].GetIndex() {
			t.Fatalf("message %d has index %d after %d: out of order", i, msgs[i].GetIndex(), msgs[i-1].GetIndex())
		}
	}
}

// noViolations fails if a member's raft saw a broken promise.
func noViolations(t testing.TB, ms ...*member) {
	t.Helper()
	for _, m := range ms {
		m.raft.mu.Lock()
		v := m.raft.violations
		m.raft.mu.Unlock()
		for _, s := range v {
			t.Errorf("member %d: %s", m.id, s)
		}
	}
}

var ownFrame = regexp.MustCompile(`/transport/[a-z]+\.go:\d+`)

// transportGoroutines returns the stacks of goroutines running code of
// this package (not its tests).
func transportGoroutines() []string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if ownFrame.MatchString(g) {
			out = append(out, g)
		}
	}
	return out
}

// streamGoroutines identifies peers' stream goroutines, started or not
// (one not yet started shows only its wrapper).
const streamGoroutines = "created by github.com/cairnkv/cairn/transport.(*peer).start"

// countGoroutines counts goroutines whose stack mentions fn.
func countGoroutines(fn string) int {
	n := 0
	for _, g := range transportGoroutines() {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// checkNoLeaks registers a cleanup, to run after every member's, that
// fails the test if any goroutine of the package is left.
func checkNoLeaks(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			left := transportGoroutines()
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines left after Stop:\n\n%s", len(left), strings.Join(left, "\n\n"))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// blackhole is a listener that accepts connections and never answers.
func blackhole(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// deadURL returns a URL nothing listens on.
func deadURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// post sends a request with identity headers to a handler and returns
// the status and body.
func post(t testing.TB, h http.Handler, path string, hdr map[string]string, body io.Reader) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}
