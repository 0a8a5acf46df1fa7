package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Why a stream ended, as the cause of its context.
var (
	errDialTimeout  = errors.New("peer did not accept the stream in time")
	errWriteStalled = errors.New("peer stopped taking bytes")
	errURLsChanged  = errors.New("peer URLs changed")
	errNoURLs       = errors.New("peer has no usable URLs")
	errPeerEnded    = errors.New("peer ended the stream")
	errPeerSilent   = errors.New("no keep-alive from the peer")
)

// peer is the sending side for one remote member: a bounded queue, the
// goroutine that keeps one stream open and drains the queue into it, and
// any snapshot sends in flight.
type peer struct {
	t     *Transport
	id    uint64
	queue chan *raftpb.Message

	// ctx is cancelled by stop (RemovePeer or Transport.Stop); wg counts
	// the stream goroutine and snapshot sends.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// since is when the current stream was accepted (UnixNano), 0 if
	// there is none.
	since atomic.Int64

	mu   sync.Mutex
	urls []*url.URL
	// cur indexes the URL in use or to try next.
	cur int
	// abortStream ends the current stream attempt, if any.
	abortStream func(error)
	// redial wakes the stream goroutine from its back-off.
	redial chan struct{}
}

func newPeer(t *Transport, id uint64, urls []*url.URL) *peer {
	p := &peer{
		t:      t,
		id:     id,
		queue:  make(chan *raftpb.Message, t.cfg.QueueSize),
		urls:   urls,
		redial: make(chan struct{}, 1),
	}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	return p
}

func (p *peer) start() {
	p.wg.Add(1)
	go p.run()
	p.wg.Go(p.probeLoop)
}

// stop ends the peer's goroutines and waits for them.
func (p *peer) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *peer) activeSince() time.Time {
	ns := p.since.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// parseURLs keeps the usable URLs among urls, logging the others.
func (t *Transport) parseURLs(id uint64, urls []string) []*url.URL {
	var out []*url.URL
	for _, s := range urls {
		u, err := url.Parse(strings.TrimSpace(s))
		if err == nil && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
			err = errors.New("want http(s)://host:port")
		}
		if err != nil {
			t.lg.Error("transport: ignoring bad peer URL", "peer", idString(id), "url", s, "err", err)
			continue
		}
		out = append(out, u)
	}
	return out
}

// setURLs replaces the peer's URLs and, if they changed, reopens the
// stream on the new ones. It reports whether they changed.
func (p *peer) setURLs(urls []*url.URL) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.EqualFunc(p.urls, urls, func(a, b *url.URL) bool { return a.String() == b.String() }) {
		return false
	}
	p.urls, p.cur = urls, 0
	if p.abortStream != nil {
		p.abortStream(errURLsChanged)
	}
	select {
	case p.redial <- struct{}{}:
	default:
	}
	return true
}

// currentURL returns the URL in use (or to try next) and how many URLs
// the peer has.
func (p *peer) currentURL() (*url.URL, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.urls) == 0 {
		return nil, 0
	}
	return p.urls[p.cur%len(p.urls)], len(p.urls)
}

// beginStream registers abort as the way to end the stream attempt that
// is starting and returns the URL it should use.
func (p *peer) beginStream(abort func(error)) (*url.URL, int) {
	p.mu.Lock()
	p.abortStream = abort
	p.mu.Unlock()
	return p.currentURL()
}

func (p *peer) endStream() {
	p.mu.Lock()
	p.abortStream = nil
	p.mu.Unlock()
}

// skipURL moves on from u (which failed) to the peer's next URL.
func (p *peer) skipURL(u *url.URL) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.urls); n > 0 && p.urls[p.cur%n] == u {
		p.cur = (p.cur + 1) % n
	}
}

// run keeps a stream to the peer open until the peer is stopped. After a
// failure it tries each of the peer's URLs in turn, then backs off.
func (p *peer) run() {
	defer p.wg.Done()
	bo := backoff{min: p.t.cfg.MinBackoff, max: p.t.cfg.MaxBackoff}
	failedInPass := 0
	quiet := false // log repeated failures at debug level
	for {
		accepted, u, n, err := p.stream()
		if p.ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, errURLsChanged):
			bo.reset()
			failedInPass = 0
			continue
		case accepted:
			p.t.lg.Warn("transport: stream to peer broken", "peer", idString(p.id), "url", u.Redacted(), "err", err)
			p.t.cfg.Observer.SendFailed(p.id)
			p.t.report(p.id, false)
			bo.reset()
			failedInPass = 0
			quiet = false
		default:
			if quiet {
				p.t.lg.Debug("transport: cannot open stream to peer", "peer", idString(p.id), "err", err)
			} else {
				p.t.lg.Warn("transport: cannot open stream to peer", "peer", idString(p.id), "err", err)
				quiet = true
			}
			p.t.cfg.Observer.SendFailed(p.id)
			p.t.report(p.id, false)
			if u != nil {
				p.skipURL(u)
			}
			if failedInPass++; failedInPass < n {
				continue // another URL may work: try it at once
			}
			failedInPass = 0
		}
		wait := time.NewTimer(bo.next())
		select {
		case <-p.ctx.Done():
			wait.Stop()
			return
		case <-p.redial:
		case <-wait.C:
		}
		wait.Stop()
	}
}

// stream opens one stream and writes the queue into it until it breaks.
// It returns whether the peer accepted the stream, the URL used, the
// number of URLs the peer has, and why the stream ended.
func (p *peer) stream() (accepted bool, u *url.URL, n int, err error) {
	ctx, cancel := context.WithCancelCause(p.ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	// abort ends the attempt from any goroutine: cancelling the request
	// makes RoundTrip and the response body fail, closing the pipe fails
	// our writes even if the RoundTripper ignores the context. The first
	// cause given is the one that sticks.
	abort := func(cause error) {
		cancel(cause)
		pr.CloseWithError(cause)
	}
	defer abort(context.Canceled)
	defer closeOnDone(ctx, pr)()
	u, n = p.beginStream(abort)
	defer p.endStream()
	if u == nil {
		return false, nil, 0, errNoURLs
	}

	req, err := p.t.newRequest(ctx, u, StreamPath, p.id, pr)
	if err != nil {
		return false, u, n, err
	}
	timer := time.AfterFunc(p.t.cfg.DialTimeout, func() { abort(errDialTimeout) })
	resp, err := p.t.rt.RoundTrip(req)
	if !timer.Stop() && err == nil {
		resp.Body.Close()
		err = errDialTimeout
	}
	if err != nil {
		if c := context.Cause(ctx); c != nil {
			err = c
		}
		return false, u, n, fmt.Errorf("POST %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("POST %s: %s: %s", u.Redacted(), resp.Status, readErrorBody(resp))
		resp.Body.Close()
		return false, u, n, err
	}

	p.t.cfg.Observer.Active(p.id, true)
	defer p.t.cfg.Observer.Active(p.id, false)
	p.since.Store(time.Now().UnixNano())
	defer p.since.Store(0)
	p.t.lg.Info("transport: stream to peer active", "peer", idString(p.id), "url", u.Redacted())

	// The receiver answers nothing on the response body; when it ends,
	// the receiver (or a proxy in between) has closed the stream.
	// The receiver sends a keep-alive byte on the response body every
	// KeepAliveInterval; a stream silent for KeepAliveTimeout is dead
	// somewhere between here and the peer (a proxy may still be taking
	// our writes), so it is dropped and redialled.
	var heard atomic.Int64
	heard.Store(time.Now().UnixNano())
	var watch sync.WaitGroup
	watch.Go(func() {
		buf := make([]byte, 512)
		for {
			_, err := resp.Body.Read(buf)
			heard.Store(time.Now().UnixNano())
			if err != nil {
				if err == io.EOF {
					err = errPeerEnded
				}
				abort(err)
				return
			}
		}
	})
	watch.Go(func() {
		tk := time.NewTicker(p.t.cfg.KeepAliveInterval)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				if time.Since(time.Unix(0, heard.Load())) > p.t.cfg.KeepAliveTimeout {
					abort(errPeerSilent)
					return
				}
			}
		}
	})
	abort(p.writeLoop(ctx, pw, abort))
	resp.Body.Close()
	watch.Wait()
	return true, u, n, context.Cause(ctx)
}

// writeLoop drains the queue into w until ctx ends or a write fails.
// Whatever is queued when it wakes goes out as one batch with one flush.
func (p *peer) writeLoop(ctx context.Context, w io.Writer, abort func(error)) error {
	sw := newStallWriter(w, p.t.cfg.WriteTimeout, func() { abort(errWriteStalled) })
	defer sw.stop()
	bw := bufio.NewWriterSize(sw, 64<<10)
	for {
		var m *raftpb.Message
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case m = <-p.queue:
		}
		// Only this goroutine takes from the queue, so the messages
		// counted now are there to take.
		for more := len(p.queue); ; more-- {
			// Encode straight into bufio's spare room; a message too big
			// for it is copied by Write.
			frame, err := appendFrame(bw.AvailableBuffer(), m, p.t.cfg.MaxFrameSize)
			if err != nil {
				p.t.lg.Error("transport: message dropped", "peer", idString(p.id), "err", err)
				p.t.report(p.id, false)
			} else if _, err := bw.Write(frame); err != nil {
				return err
			} else {
				p.t.cfg.Observer.Sent(p.id, len(frame))
			}
			if more == 0 {
				break
			}
			m = <-p.queue
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}

// newRequest builds a request to peer to at base+path. Every request
// says who sends it, to whom, in which cluster, and asks for a
// connection of its own (see doc.go: "Through proxies").
func (t *Transport) newRequest(ctx context.Context, base *url.URL, path string, to uint64, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.JoinPath(path).String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(HeaderFrom, idString(t.cfg.ID))
	req.Header.Set(HeaderTo, idString(to))
	req.Header.Set(HeaderClusterID, idString(t.cfg.ClusterID))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Close = true
	return req, nil
}

// closeOnDone closes pr, a request body, as soon as ctx ends, whoever
// ends it. This is what makes cancellation prompt: an HTTP/1 transport
// returns from a cancelled RoundTrip only once it stops reading the
// body, and a stream's body has nothing to say until the peer answers.
// The returned func unregisters it, or waits for it if it has started,
// so it never outlives its caller.
func closeOnDone(ctx context.Context, pr *io.PipeReader) (release func()) {
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		pr.CloseWithError(context.Cause(ctx))
	})
	return func() {
		if !stop() {
			<-done
		}
	}
}

// readErrorBody returns the start of an error response's body.
func readErrorBody(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return strings.TrimSpace(string(b))
}
