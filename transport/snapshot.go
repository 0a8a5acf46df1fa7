package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// storeError marks a failure of the local SnapshotStore, as opposed to
// the network or the peer.
type storeError struct{ err error }

func (e storeError) Error() string { return "snapshot store: " + e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

// sendSnapshot sends MsgSnap m and its store snapshot on a connection of
// their own, so a multi-gigabyte transfer never holds up heartbeats and
// votes on the stream, and reports the outcome with ReportSnapshot.
// The caller holds t.mu (read), so the peer is not being stopped.
func (p *peer) sendSnapshot(m *raftpb.Message) {
	p.wg.Go(func() {
		lg := p.t.lg.With("peer", idString(p.id), "index", m.GetSnapshot().GetMetadata().GetIndex())
		lg.Info("transport: sending snapshot")
		start := time.Now()
		p.t.cfg.Observer.SnapshotStarted(p.id, true)
		err := p.postSnapshot(m)
		p.t.cfg.Observer.SnapshotDone(p.id, true, err == nil, time.Since(start))
		if p.ctx.Err() != nil {
			// Removed or stopping: raft has no one to hear about it.
			return
		}
		status := raft.SnapshotFinish
		if err != nil {
			lg.Warn("transport: sending snapshot failed", "err", err)
			status = raft.SnapshotFailure
		} else {
			lg.Info("transport: sent snapshot", "took", time.Since(start))
		}
		p.t.cfg.Raft.ReportSnapshot(p.id, status)
	})
}

// postSnapshot makes one attempt, on the URL the stream uses: raft asks
// again if it fails.
func (p *peer) postSnapshot(m *raftpb.Message) error {
	u, _ := p.currentURL()
	if u == nil {
		return errNoURLs
	}
	ctx, cancel := context.WithCancelCause(p.ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	abort := func(cause error) {
		cancel(cause)
		pr.CloseWithError(cause)
	}
	defer closeOnDone(ctx, pr)()
	req, err := p.t.newRequest(ctx, u, SnapshotPath, p.id, pr)
	if err != nil {
		return err
	}

	written := make(chan error, 1)
	go func() { written <- p.writeSnapshot(m, pw, abort) }()

	resp, err := p.t.rt.RoundTrip(req)
	if err == nil {
		if resp.StatusCode != http.StatusNoContent {
			err = fmt.Errorf("POST %s: %s: %s", u.Redacted(), resp.Status, readErrorBody(resp))
		}
		resp.Body.Close()
	} else if c := context.Cause(ctx); c != nil {
		err = fmt.Errorf("POST %s: %w", u.Redacted(), c)
	} else {
		err = fmt.Errorf("POST %s: %w", u.Redacted(), err)
	}
	// The peer answers only after reading the whole body, so on success
	// the writer is done; otherwise this unblocks it.
	abort(errors.New("snapshot request finished"))
	werr := <-written
	var se storeError
	if errors.As(werr, &se) {
		return werr // the root cause; the request failed because of it
	}
	return err
}

// writeSnapshot writes the body of a snapshot request to pw and closes
// it: cleanly when all is written, with the error otherwise, so the
// receiver never mistakes a failed transfer for a complete one.
func (p *peer) writeSnapshot(m *raftpb.Message, pw *io.PipeWriter, abort func(error)) (err error) {
	defer func() { pw.CloseWithError(err) }()
	sw := newStallWriter(pw, p.t.cfg.SnapshotWriteTimeout, func() { abort(errWriteStalled) })
	defer sw.stop()
	sink := &errWriter{w: sw}
	bw := bufio.NewWriterSize(sink, 64<<10)
	frame, err := appendFrame(bw.AvailableBuffer(), m, p.t.cfg.MaxFrameSize)
	if err != nil {
		return err
	}
	if _, err := bw.Write(frame); err != nil {
		return err
	}
	if s := p.t.cfg.Snapshots; s != nil {
		if err := s.Write(m, bw); err != nil {
			if sink.err != nil {
				return sink.err // the store only passed on the network's error
			}
			return storeError{err}
		}
	}
	return bw.Flush()
}

// errWriter remembers the first error of w.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}
