package api

import (
	"io"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/mvcc"
)

// watchStreamBuffer is how many responses a stream may have queued before
// its watchers fall back to catching up from storage.
const watchStreamBuffer = 256

// stallAfter is how long a Send may take before the stream counts as
// stalled by its client (mvcc.WatchStream.Stalled): gRPC only blocks a
// Send when the client has not made room in its flow-control window.
const stallAfter = time.Millisecond

type watchServer struct {
	pb.UnimplementedWatchServer
	s *Server
}

// watchSession is one gRPC Watch stream: a receive loop handling create,
// cancel and progress requests, and a send loop writing responses in
// order. A watcher's "created" response always precedes its events.
type watchSession struct {
	s      *Server
	stream grpc.BidiStreamingServer[pb.WatchRequest, pb.WatchResponse]
	ws     *mvcc.WatchStream
	ctrl   chan *pb.WatchResponse

	mu       sync.Mutex
	progress map[int64]bool // watchers that asked for progress_notify
	fragment map[int64]bool
	live     map[int64]bool // watchers created and not canceled

	closec chan struct{}
}

func (w *watchServer) Watch(stream grpc.BidiStreamingServer[pb.WatchRequest, pb.WatchResponse]) error {
	sess := &watchSession{
		s: w.s, stream: stream,
		ws:       w.s.m.Store().NewWatchStream(watchStreamBuffer),
		ctrl:     make(chan *pb.WatchResponse, 16),
		progress: map[int64]bool{},
		fragment: map[int64]bool{},
		live:     map[int64]bool{},
		closec:   make(chan struct{}),
	}
	defer sess.ws.Close()
	errc := make(chan error, 2)
	go func() {
		// A client that half-closes (io.EOF: the grpc-gateway does so
		// once it has forwarded the request body) sends no more
		// requests, but its watchers stay: like etcd, keep sending
		// until the stream's context ends.
		if err := sess.recvLoop(); err != io.EOF {
			errc <- err
		}
	}()
	go func() { errc <- sess.sendLoop() }()
	var err error
	select {
	case err = <-errc:
	case <-stream.Context().Done():
		err = stream.Context().Err()
	}
	close(sess.closec)
	return toGRPC(err)
}

func (w *watchSession) recvLoop() error {
	for {
		req, err := w.stream.Recv()
		if err != nil {
			return err
		}
		switch {
		case req.GetCreateRequest() != nil:
			w.create(req.GetCreateRequest())
		case req.GetCancelRequest() != nil:
			id := req.GetCancelRequest().WatchId
			if w.ws.Cancel(id) {
				w.mu.Lock()
				delete(w.live, id)
				delete(w.progress, id)
				delete(w.fragment, id)
				w.mu.Unlock()
				w.sendCtrl(&pb.WatchResponse{Header: w.s.header(0), WatchId: id, Canceled: true})
			}
		case req.GetProgressRequest() != nil:
			w.ws.RequestProgress()
		default:
			// etcd ignores unknown request kinds rather than closing the stream.
		}
	}
}

func (w *watchSession) sendCtrl(r *pb.WatchResponse) {
	select {
	case w.ctrl <- r:
	case <-w.closec:
	}
}

func (w *watchSession) create(c *pb.WatchCreateRequest) {
	key, end := c.Key, c.RangeEnd
	if len(key) == 0 {
		key = []byte{0} // the smallest key, as etcd does
	}
	start := time.Now()
	if c.StartRevision >= 0 {
		if err := w.s.watchRefusal(w.stream.Context(), key, end); err != nil {
			w.s.auditWatch(w.stream.Context(), key, end, err, start)
			w.sendCtrl(&pb.WatchResponse{Header: w.s.header(0), WatchId: -1, Created: true, Canceled: true, CancelReason: err.Error()})
			return
		}
	}
	o := mvcc.WatchOptions{ID: c.WatchId, Key: key, End: end, StartRev: c.StartRevision, PrevKV: c.PrevKv}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			o.NoPut = true
		case pb.WatchCreateRequest_NODELETE:
			o.NoDelete = true
		}
	}
	// w.mu is held across Watch so the send loop, which checks live under
	// it, cannot see this watcher's first events before it is marked live.
	w.mu.Lock()
	id, err := w.ws.Watch(o)
	// The header's revision is read after the watcher exists, as etcd
	// does: a write committed in between is delivered by the watcher, so
	// the header never claims a revision whose event the stream misses.
	resp := &pb.WatchResponse{Header: w.s.header(0), WatchId: id, Created: true}
	if err != nil {
		resp.WatchId = -1
		resp.Canceled = true
		resp.CancelReason = err.Error()
	} else {
		w.live[id] = true
		if c.ProgressNotify {
			w.progress[id] = true
		}
		if c.Fragment {
			w.fragment[id] = true
		}
	}
	w.mu.Unlock()
	w.s.auditWatch(w.stream.Context(), key, end, toGRPC(err), start)
	w.sendCtrl(resp)
}

func (w *watchSession) sendLoop() error {
	announced := map[int64]bool{}
	pending := map[int64][]*pb.WatchResponse{}
	ticker := time.NewTicker(w.s.opts.ProgressNotifyInterval)
	defer ticker.Stop()
	for {
		select {
		case <-w.closec:
			return nil
		case c := <-w.ctrl:
			if err := w.stream.Send(c); err != nil {
				return err
			}
			if c.Canceled {
				delete(announced, c.WatchId)
				delete(pending, c.WatchId)
				continue
			}
			if c.Created {
				announced[c.WatchId] = true
				for _, r := range pending[c.WatchId] {
					if err := w.send(r); err != nil {
						return err
					}
				}
				delete(pending, c.WatchId)
			}
		case r := <-w.ws.C:
			w.ws.Freed()
			resp := &pb.WatchResponse{
				Header:          w.s.header(r.Revision),
				WatchId:         r.WatchID,
				Events:          r.Events,
				CompactRevision: r.CompactRevision,
				Canceled:        r.CompactRevision != 0,
			}
			if r.WatchID != mvcc.ProgressWatchID && !announced[r.WatchID] {
				w.mu.Lock()
				live := w.live[r.WatchID]
				w.mu.Unlock()
				if live {
					// Created, but its "created" response has not gone
					// out yet: hold the events until it has.
					pending[r.WatchID] = append(pending[r.WatchID], resp)
				}
				// Otherwise the watcher was canceled: drop its leftovers.
				continue
			}
			began := time.Now()
			if err := w.send(resp); err != nil {
				return err
			}
			if time.Since(began) > stallAfter {
				w.ws.Stalled()
			}
			if len(r.Events) > 0 {
				w.mu.Lock()
				if _, ok := w.progress[r.WatchID]; ok {
					w.progress[r.WatchID] = false
				}
				w.mu.Unlock()
			}
			if r.CompactRevision != 0 {
				delete(announced, r.WatchID)
				w.mu.Lock()
				delete(w.live, r.WatchID)
				w.mu.Unlock()
			}
		case <-ticker.C:
			ids := map[int64]bool{}
			w.mu.Lock()
			for id, quiet := range w.progress {
				if quiet {
					ids[id] = true
				}
				w.progress[id] = true
			}
			w.mu.Unlock()
			if len(ids) > 0 {
				w.ws.NotifyProgress(ids)
			}
		}
	}
}

// send writes one response, split into fragments when the watcher asked
// for them and the response exceeds --max-request-bytes.
func (w *watchSession) send(r *pb.WatchResponse) error {
	w.mu.Lock()
	frag := w.fragment[r.WatchId]
	w.mu.Unlock()
	// etcd splits at the request limit plus the gRPC overhead allowance.
	limit := w.s.opts.MaxRequestBytes + grpcOverheadBytes
	if !frag || len(r.Events) < 2 || proto.Size(r) < limit {
		return w.stream.Send(r)
	}
	idx := 0
	for {
		cur := &pb.WatchResponse{
			Header: r.Header, WatchId: r.WatchId, Created: r.Created, Canceled: r.Canceled,
			CompactRevision: r.CompactRevision, CancelReason: r.CancelReason, Fragment: true,
			Events: make([]*mvccpb.Event, 0),
		}
		for _, ev := range r.Events[idx:] {
			cur.Events = append(cur.Events, ev)
			if len(cur.Events) > 1 && proto.Size(cur) >= limit {
				cur.Events = cur.Events[:len(cur.Events)-1]
				break
			}
			idx++
		}
		if idx == len(r.Events) {
			cur.Fragment = false
		}
		if err := w.stream.Send(cur); err != nil {
			return err
		}
		if !cur.Fragment {
			return nil
		}
	}
}
