package api

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Requests that require a leader.
//
// A client can mark a request or stream with clientv3.WithRequireLeader
// (gRPC metadata "hasleader: true"); kube-apiserver does so for its
// watches. Such a request is refused with "etcdserver: no leader" when
// this member knows no leader, and such a stream is canceled with the
// same error once the member has known no leader for noLeaderStreamLimit
// election timeouts, so a client on the minority side of a partition
// moves to another member instead of waiting on a stream that will never
// deliver. etcd does exactly this; without it a partitioned member's
// watchers would hang silently.

// noLeaderStreamLimit is how many election timeouts without a leader end
// the require-leader streams (etcd's maxNoLeaderCnt). Streams are costly
// to re-establish, so a short election does not end them.
const noLeaderStreamLimit = 3

// requiresLeader reports whether ctx's metadata asks for a leader.
func requiresLeader(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	ks := md[rpctypes.MetadataRequireLeaderKey]
	return len(ks) > 0 && ks[0] == rpctypes.MetadataHasLeader
}

// leaderStreams holds the open require-leader streams, so the monitor can
// end them when the leader stays away.
type leaderStreams struct {
	mu      sync.Mutex
	streams map[*leaderStream]struct{}
}

// leaderStream is a stream whose context the monitor can cancel with a
// reason: the handler's stream.Context().Err() is then ErrGRPCNoLeader,
// which Watch and LeaseKeepAlive return to the client.
type leaderStream struct {
	grpc.ServerStream
	ctx *reasonContext
}

func (ls *leaderStream) Context() context.Context { return ls.ctx }

// reasonContext is a cancelable context that reports why it was canceled.
type reasonContext struct {
	context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	reason error
}

func (c *reasonContext) cancelWith(reason error) {
	c.mu.Lock()
	if c.reason == nil {
		c.reason = reason
	}
	c.mu.Unlock()
	c.cancel()
}

func (c *reasonContext) Err() error {
	c.mu.Lock()
	r := c.reason
	c.mu.Unlock()
	if r != nil {
		return r
	}
	return c.Context.Err()
}

// watchLeader wraps ss when the client requires a leader; the returned
// function unregisters it. It refuses the stream at once when there is no
// leader.
func (s *Server) watchLeader(ss grpc.ServerStream) (grpc.ServerStream, func(), error) {
	if !requiresLeader(ss.Context()) {
		return ss, func() {}, nil
	}
	if s.m.Leader() == 0 {
		return nil, nil, rpctypes.ErrGRPCNoLeader
	}
	ctx, cancel := context.WithCancel(ss.Context())
	ls := &leaderStream{ServerStream: ss, ctx: &reasonContext{Context: ctx, cancel: cancel}}
	s.leaderStreams.mu.Lock()
	s.leaderStreams.streams[ls] = struct{}{}
	s.leaderStreams.mu.Unlock()
	return ls, func() {
		s.leaderStreams.mu.Lock()
		delete(s.leaderStreams.streams, ls)
		s.leaderStreams.mu.Unlock()
		cancel()
	}, nil
}

// monitorLeader ends the require-leader streams once this member has seen
// no leader for noLeaderStreamLimit checks in a row, one check an
// election timeout. It returns when stop is closed.
func (s *Server) monitorLeader(stop <-chan struct{}) {
	interval := s.opts.ElectionTimeout
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if s.m.Leader() != 0 {
			missed = 0
			continue
		}
		if missed++; missed < noLeaderStreamLimit {
			continue
		}
		s.leaderStreams.mu.Lock()
		for ls := range s.leaderStreams.streams {
			ls.ctx.cancelWith(rpctypes.ErrGRPCNoLeader)
			delete(s.leaderStreams.streams, ls)
		}
		s.leaderStreams.mu.Unlock()
	}
}
