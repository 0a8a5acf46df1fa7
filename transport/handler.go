package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Handler serves peers' streams and snapshots. Mount it on the peer
// listener at "/"; it owns the paths under /raft/.
func (t *Transport) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+StreamPath, t.serveStream)
	mux.HandleFunc("POST "+SnapshotPath, t.serveSnapshot)
	mux.HandleFunc("POST "+ProbePath, t.serveProbe)
	return mux
}

// inbound is a request being served: a stream or a snapshot upload.
// Stop and RemovePeer end it with abort, which the handler notices on
// its next read.
type inbound struct {
	from   uint64
	stream bool
	ctx    context.Context
	cancel context.CancelFunc
	rc     *http.ResponseController
	closed atomic.Bool
}

// abort ends the request: its context is cancelled and, since a handler
// blocked reading a body does not watch any context, the connection's
// read deadline is moved to the past so the read fails now. Called with
// t.mu held, so the handler has not returned yet.
func (in *inbound) abort() {
	in.closed.Store(true)
	in.cancel()
	// A ResponseWriter that cannot do this (a wrapper without Unwrap)
	// leaves the handler to notice on its next frame.
	_ = in.rc.SetReadDeadline(time.Unix(1, 0))
}

// checkHeaders validates the identity headers every peer request
// carries and returns the sender. On failure it has answered the
// request.
func (t *Transport) checkHeaders(w http.ResponseWriter, r *http.Request) (from uint64, ok bool) {
	var to, cluster uint64
	var err error
	for _, h := range []struct {
		name string
		dst  *uint64
	}{{HeaderFrom, &from}, {HeaderTo, &to}, {HeaderClusterID, &cluster}} {
		if *h.dst, err = parseID(r.Header.Get(h.name)); err != nil {
			t.refuse(w, r, http.StatusBadRequest, slog.LevelWarn, fmt.Sprintf("missing or malformed %s header %q", h.name, r.Header.Get(h.name)))
			return 0, false
		}
	}
	if cluster != t.cfg.ClusterID {
		t.refuse(w, r, http.StatusConflict, slog.LevelWarn, fmt.Sprintf("cluster ID mismatch: member %x is in cluster %x, member %x sent a request for cluster %x",
			t.cfg.ID, t.cfg.ClusterID, from, cluster))
		return 0, false
	}
	if to != t.cfg.ID {
		t.refuse(w, r, http.StatusMisdirectedRequest, slog.LevelWarn, fmt.Sprintf("request from member %x for member %x reached member %x", from, to, t.cfg.ID))
		return 0, false
	}
	return from, true
}

// clearDeadlines lifts the server's ReadTimeout and WriteTimeout, if it
// has them, for this request: a stream lasts as long as the member, and
// a snapshot as long as it takes. It must run before register, or it
// could undo an abort.
func clearDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}

// register records a request from a checked sender. It refuses senders
// that are not (or no longer) peers. A new stream from a peer replaces
// the one being served, which is dead or about to be (the sender keeps
// one at a time).
func (t *Transport) register(w http.ResponseWriter, r *http.Request, from uint64, stream bool) *inbound {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		t.refuse(w, r, http.StatusServiceUnavailable, slog.LevelDebug, fmt.Sprintf("member %x is stopping", t.cfg.ID))
		return nil
	}
	if _, ok := t.peers[from]; !ok {
		// Also the case while this member has not yet applied the
		// change that added the sender: it retries.
		t.refuse(w, r, http.StatusForbidden, slog.LevelInfo, fmt.Sprintf("member %x is not a peer of member %x (unknown or removed)", from, t.cfg.ID))
		return nil
	}
	in := &inbound{from: from, stream: stream, rc: http.NewResponseController(w)}
	// Stop and RemovePeer cancel it through abort.
	in.ctx, in.cancel = context.WithCancel(r.Context())
	if stream {
		if old := t.streamFrom[from]; old != nil {
			old.abort()
		}
		t.streamFrom[from] = in
	}
	t.inbound[in] = struct{}{}
	t.serving.Add(1)
	return in
}

func (t *Transport) unregister(in *inbound) {
	t.mu.Lock()
	delete(t.inbound, in)
	if in.stream && t.streamFrom[in.from] == in {
		delete(t.streamFrom, in.from)
	}
	t.mu.Unlock()
	in.cancel()
	t.serving.Done()
}

// refuse answers a request the transport will not serve. "Connection:
// close" keeps the server from reading the rest of a body nobody wants.
func (t *Transport) refuse(w http.ResponseWriter, r *http.Request, code int, level slog.Level, msg string) {
	t.lg.Log(r.Context(), level, "transport: refused peer request", "path", r.URL.Path, "from", r.Header.Get(HeaderFrom), "status", code, "reason", msg)
	w.Header().Set("Connection", "close")
	http.Error(w, msg, code)
}

// serveStream receives a stream of messages from one peer and steps
// them into raft in order.
func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request) {
	from, ok := t.checkHeaders(w, r)
	if !ok {
		return
	}
	clearDeadlines(w)
	in := t.register(w, r, from, true)
	if in == nil {
		return
	}
	defer t.unregister(in)
	lg := t.lg.With("peer", idString(from))

	// Answer before the body ends, so the sender knows the stream is
	// accepted. Full duplex stops net/http from first draining the body
	// (the stream never ends); see doc.go, "Through proxies".
	_ = in.rc.EnableFullDuplex()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	if err := in.rc.Flush(); err != nil {
		lg.Warn("transport: cannot answer stream from peer", "err", err)
		return
	}
	lg.Info("transport: stream from peer open")

	// Keep-alive: one byte on the response body every KeepAliveInterval
	// tells the sender its stream still reaches this member. Through a
	// proxy, the sender's writes may keep succeeding into buffers long
	// after the path behind the proxy died; this silence is how it learns.
	// The handler must not return while the keep-alive goroutine may be
	// writing (net/http finishes the response then): close, then wait.
	var kaWG sync.WaitGroup
	kaDone := make(chan struct{})
	defer kaWG.Wait()
	defer close(kaDone)
	kaWG.Go(func() {
		tk := time.NewTicker(t.cfg.KeepAliveInterval)
		defer tk.Stop()
		for {
			select {
			case <-kaDone:
				return
			case <-in.ctx.Done():
				return
			case <-tk.C:
				// A peer that stops reading must not pin this goroutine.
				_ = in.rc.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
				if _, err := w.Write([]byte{0}); err != nil {
					return
				}
				if err := in.rc.Flush(); err != nil {
					return
				}
			}
		}
	})

	body := &countingReader{r: r.Body, add: func(n int) { t.cfg.Observer.Received(from, n) }}
	fr := newFrameReader(bufio.NewReaderSize(body, 64<<10), t.cfg.MaxFrameSize)
	for {
		m, err := fr.next()
		switch {
		case in.closed.Load():
			lg.Debug("transport: stream from peer closed here")
			return
		case errors.Is(err, errBadFrame):
			lg.Warn("transport: bad stream from peer", "err", err)
			t.cfg.Observer.ReceiveFailed(from)
			return
		case err != nil:
			lg.Info("transport: stream from peer ended", "err", err)
			t.cfg.Observer.ReceiveFailed(from)
			return
		case m == nil:
			continue
		case m.GetFrom() != from || m.GetTo() != t.cfg.ID || m.GetType() == raftpb.MsgSnap:
			// A MsgSnap without its store snapshot would make raft
			// install a snapshot the store does not have.
			lg.Warn("transport: dropped misaddressed message", "type", m.GetType(), "from", idString(m.GetFrom()), "to", idString(m.GetTo()))
			continue
		}
		if err := t.cfg.Raft.Process(in.ctx, m); err != nil {
			if in.ctx.Err() != nil {
				return
			}
			lg.Debug("transport: raft refused message", "type", m.GetType(), "err", err)
		}
	}
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r   io.Reader
	add func(int)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(n)
	}
	return n, err
}

// serveSnapshot receives a MsgSnap and its store snapshot. Raft hears of
// the MsgSnap only after the store snapshot is durably saved and the
// body ended exactly where it should, so raft never installs a snapshot
// whose data is missing or torn.
func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	from, ok := t.checkHeaders(w, r)
	if !ok {
		return
	}
	clearDeadlines(w)
	in := t.register(w, r, from, false)
	if in == nil {
		return
	}
	defer t.unregister(in)
	w.Header().Set("Connection", "close")
	lg := t.lg.With("peer", idString(from))
	start := time.Now()
	t.cfg.Observer.SnapshotStarted(from, false)
	ok = false
	defer func() { t.cfg.Observer.SnapshotDone(from, false, ok, time.Since(start)) }()

	fail := func(code int, err error) {
		if in.closed.Load() {
			code = http.StatusServiceUnavailable
		}
		lg.Warn("transport: receiving snapshot failed", "err", err)
		http.Error(w, err.Error(), code)
	}
	fr := newFrameReader(bufio.NewReaderSize(r.Body, 64<<10), t.cfg.MaxFrameSize)
	m, err := fr.next()
	if err == nil && m == nil {
		err = errors.New("empty frame")
	}
	if err != nil {
		fail(http.StatusBadRequest, fmt.Errorf("read snapshot message: %w", err))
		return
	}
	if m.GetType() != raftpb.MsgSnap || m.GetFrom() != from || m.GetTo() != t.cfg.ID {
		fail(http.StatusBadRequest, fmt.Errorf("want MsgSnap from %x to %x, got %s from %x to %x",
			from, t.cfg.ID, m.GetType(), m.GetFrom(), m.GetTo()))
		return
	}
	lg = lg.With("index", m.GetSnapshot().GetMetadata().GetIndex())
	lg.Info("transport: receiving snapshot")
	if s := t.cfg.Snapshots; s != nil {
		if err := s.Receive(m, fr.r); err != nil {
			fail(http.StatusInternalServerError, fmt.Errorf("snapshot store: %w", err))
			return
		}
	}
	// The body must end exactly here: more data, or a read error, means
	// the two sides disagree about the snapshot or the transfer broke.
	var one [1]byte
	if n, err := io.ReadFull(fr.r, one[:]); n > 0 {
		fail(http.StatusBadRequest, errors.New("data left after the store snapshot"))
		return
	} else if err != io.EOF {
		fail(http.StatusBadRequest, fmt.Errorf("after the store snapshot: %w", err))
		return
	}
	if err := t.cfg.Raft.Process(in.ctx, m); err != nil {
		fail(http.StatusInternalServerError, fmt.Errorf("raft: %w", err))
		return
	}
	ok = true
	lg.Info("transport: received snapshot", "took", time.Since(start))
	w.WriteHeader(http.StatusNoContent)
}
