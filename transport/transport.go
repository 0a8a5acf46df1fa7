package transport

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Paths and headers of the peer protocol. They are exported for tools
// that sit between members, such as a test proxy that partitions the
// cluster by reading HeaderFrom.
const (
	// StreamPath takes a long-lived POST whose body is a stream of frames.
	StreamPath = "/raft/stream"
	// SnapshotPath takes a POST whose body is one MsgSnap frame followed
	// by the state-machine snapshot.
	SnapshotPath = "/raft/snapshot"
	// ProbePath takes an empty POST answered at once: a round-trip probe.
	ProbePath = "/raft/probe"

	// HeaderFrom is the sending member's ID in hex, on every request.
	HeaderFrom = "X-Cairn-From"
	// HeaderTo is the receiving member's ID in hex, on every request.
	HeaderTo = "X-Cairn-To"
	// HeaderClusterID is the cluster ID in hex, on every request.
	HeaderClusterID = "X-Cairn-Cluster-ID"
)

// Defaults for the zero values of Config's tuning fields.
const (
	DefaultDialTimeout          = 2 * time.Second
	DefaultWriteTimeout         = 5 * time.Second
	DefaultSnapshotWriteTimeout = 30 * time.Second
	DefaultKeepAliveInterval    = 500 * time.Millisecond
	DefaultKeepAliveTimeout     = 3 * time.Second
	DefaultQueueSize            = 4096
	DefaultMaxFrameSize         = 64 << 20
	DefaultMinBackoff           = 50 * time.Millisecond
	DefaultMaxBackoff           = 2 * time.Second
)

// Raft is the local member's raft node as the transport sees it. Its
// methods are called from the transport's own goroutines (never from
// Send's caller), possibly concurrently, so it must be safe for
// concurrent use; raft.Node is.
type Raft interface {
	// Process steps a message received from a peer.
	Process(ctx context.Context, m *raftpb.Message) error
	// ReportUnreachable tells raft a peer could not be reached.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how sending a snapshot to id went.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// SnapshotStore moves the state-machine part of snapshots (the store's
// contents, possibly gigabytes) which raft's MsgSnap does not carry.
type SnapshotStore interface {
	// Write streams the store snapshot that goes with m (a MsgSnap about
	// to be sent) to w. An error from w means the send failed; Write
	// should return it.
	Write(m *raftpb.Message, w io.Writer) error
	// Receive persists a store snapshot arriving with m from r; it
	// returns once it is durably saved; the transport then calls
	// Raft.Process(m). A read error from r (the sender failed, the
	// connection broke, the transport is stopping) means the snapshot is
	// incomplete: Receive must discard it and return an error.
	Receive(m *raftpb.Message, r io.Reader) error
}

// Config configures a Transport. Only ID, ClusterID and Raft are
// required; every other zero value means the documented default.
type Config struct {
	// ID is this member's ID.
	ID uint64
	// ClusterID is the cluster's ID; peers with another one are refused.
	ClusterID uint64
	// Raft receives messages and delivery reports.
	Raft Raft
	// Snapshots moves the state-machine part of snapshots. If nil, a
	// MsgSnap travels alone (its Snapshot.Data is all there is).
	Snapshots SnapshotStore
	// Logger may be nil (no logging).
	Logger *slog.Logger

	// RoundTripper sends all requests to peers. If nil, the transport
	// builds an *http.Transport from DialTimeout and TLSClientConfig.
	// Tests set it to inject faults. Requests carry "Connection: close"
	// so that an HTTP/1 RoundTripper gives each stream its own
	// connection.
	RoundTripper http.RoundTripper
	// TLSClientConfig is used by the default RoundTripper for https peer
	// URLs. Nil means the defaults of crypto/tls.
	TLSClientConfig *tls.Config

	// DialTimeout bounds connecting to a peer. For a stream it covers
	// everything up to the peer's 200 response; for a snapshot, the TCP
	// (and TLS) handshake. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// WriteTimeout breaks a stream when a write to it makes no progress
	// for this long: the peer (or the network) has stopped taking bytes.
	// Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// KeepAliveInterval is how often a stream's receiver sends a
	// keep-alive byte back; KeepAliveTimeout is how long a sender waits
	// without one before it redials. Defaults DefaultKeepAliveInterval
	// and DefaultKeepAliveTimeout.
	KeepAliveInterval time.Duration
	KeepAliveTimeout  time.Duration
	// SnapshotWriteTimeout is WriteTimeout for snapshot bodies, longer
	// because the receiver may pause to persist. Default
	// DefaultSnapshotWriteTimeout.
	SnapshotWriteTimeout time.Duration
	// QueueSize bounds the messages waiting for each peer's stream.
	// Default DefaultQueueSize.
	QueueSize int
	// MaxFrameSize bounds one encoded message, sent or received. Default
	// DefaultMaxFrameSize (64 MiB).
	MaxFrameSize int
	// Observer, if set, counts bytes, failures and round trips
	// (metrics).
	Observer Observer
	// MinBackoff and MaxBackoff bound the pause between failed attempts
	// to open a stream; it doubles from MinBackoff to MaxBackoff, with
	// jitter. Defaults DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// ProbeInterval is how often the round trip to each peer is
	// measured. Default DefaultProbeInterval.
	ProbeInterval time.Duration
}

// Observer is told what the transport does, for metrics. Its methods
// must be cheap and must not block.
type Observer interface {
	Sent(to uint64, bytes int)
	Received(from uint64, bytes int)
	SendFailed(to uint64)
	ReceiveFailed(from uint64)
	// RoundTrip is the time a round-trip probe to a peer took (one
	// every Config.ProbeInterval).
	RoundTrip(to uint64, d time.Duration)
	// Active is told when the stream to a peer opens (true) and when it
	// ends (false).
	Active(peer uint64, active bool)
	// SnapshotStarted and SnapshotDone bracket one snapshot transfer
	// to (sending) or from a peer; ok is whether it succeeded.
	SnapshotStarted(peer uint64, sending bool)
	SnapshotDone(peer uint64, sending, ok bool, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) Sent(uint64, int)                               {}
func (nopObserver) Received(uint64, int)                           {}
func (nopObserver) SendFailed(uint64)                              {}
func (nopObserver) ReceiveFailed(uint64)                           {}
func (nopObserver) RoundTrip(uint64, time.Duration)                {}
func (nopObserver) Active(uint64, bool)                            {}
func (nopObserver) SnapshotStarted(uint64, bool)                   {}
func (nopObserver) SnapshotDone(uint64, bool, bool, time.Duration) {}

func (c *Config) setDefaults() {
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.KeepAliveInterval <= 0 {
		c.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if c.KeepAliveTimeout <= 0 {
		c.KeepAliveTimeout = DefaultKeepAliveTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.SnapshotWriteTimeout <= 0 {
		c.SnapshotWriteTimeout = DefaultSnapshotWriteTimeout
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
}

// Transport carries one member's Raft messages to and from its peers.
// All methods are safe for concurrent use.
type Transport struct {
	cfg Config
	lg  *slog.Logger
	rt  http.RoundTripper
	// ownRT is rt when the transport built it, so Stop can close its
	// idle connections.
	ownRT *http.Transport

	// ctx is cancelled by Stop; every goroutine and request the
	// transport starts derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.RWMutex
	stopped bool
	peers   map[uint64]*peer
	// inbound holds the streams and snapshot uploads being served.
	inbound map[*inbound]struct{}
	// streamFrom is the stream being served for each peer; a new stream
	// from the same peer replaces the old one.
	streamFrom map[uint64]*inbound
	serving    sync.WaitGroup // handlers registered in inbound

	reports  reporter
	reporter sync.WaitGroup
}

// New returns a running Transport with no peers. It panics if cfg lacks
// an ID or a Raft, which are programming errors.
func New(cfg Config) *Transport {
	if cfg.ID == 0 {
		panic("transport: Config.ID is zero")
	}
	if cfg.Raft == nil {
		panic("transport: Config.Raft is nil")
	}
	cfg.setDefaults()
	t := &Transport{
		cfg:        cfg,
		lg:         cfg.Logger,
		rt:         cfg.RoundTripper,
		peers:      make(map[uint64]*peer),
		inbound:    make(map[*inbound]struct{}),
		streamFrom: make(map[uint64]*inbound),
	}
	if t.rt == nil {
		t.ownRT = &http.Transport{
			// Peer traffic never goes through the environment's HTTP
			// proxy.
			Proxy: nil,
			DialContext: (&net.Dialer{
				Timeout:   cfg.DialTimeout,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			TLSClientConfig:     cfg.TLSClientConfig,
			TLSHandshakeTimeout: cfg.DialTimeout,
			WriteBufferSize:     64 << 10,
		}
		t.rt = t.ownRT
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.reports.init()
	t.reporter.Add(1)
	go t.runReporter()
	return t
}

// AddPeer starts talking to member id at urls. Adding a known peer
// again is harmless; if urls differ it acts as UpdatePeer. Adding this
// member itself is ignored.
func (t *Transport) AddPeer(id uint64, urls []string) {
	if id == 0 || id == t.cfg.ID {
		return
	}
	parsed := t.parseURLs(id, urls)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if p, ok := t.peers[id]; ok {
		p.setURLs(parsed)
		return
	}
	p := newPeer(t, id, parsed)
	t.peers[id] = p
	p.start()
	t.lg.Info("transport: added peer", "peer", idString(id), "urls", urls)
}

// UpdatePeer replaces the URLs of a known peer. If they changed, the
// peer's stream is reopened on the new ones. Unknown peers are ignored.
func (t *Transport) UpdatePeer(id uint64, urls []string) {
	parsed := t.parseURLs(id, urls)
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p == nil {
		t.lg.Warn("transport: update of unknown peer ignored", "peer", idString(id))
		return
	}
	if p.setURLs(parsed) {
		t.lg.Info("transport: updated peer", "peer", idString(id), "urls", urls)
	}
}

// RemovePeer stops talking to member id: it closes the stream to it,
// abandons queued messages and snapshots being sent (without reporting
// them), closes streams from it and refuses new ones. It returns once
// the peer's goroutines have exited.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	for in := range t.inbound {
		if in.from == id {
			in.abort()
		}
	}
	t.mu.Unlock()
	if p == nil {
		return
	}
	p.stop()
	t.lg.Info("transport: removed peer", "peer", idString(id))
}

// Send queues msgs for their peers. It never blocks: a message for a
// peer whose queue is full is dropped and the peer reported unreachable
// (raft retransmits what matters). A MsgSnap is sent on a connection of
// its own and reported with ReportSnapshot. Messages to unknown peers
// are dropped and reported the same way.
//
// The transport keeps the messages until they are written; the caller
// must not modify them (raft does not).
func (t *Transport) Send(msgs []*raftpb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.stopped {
		return
	}
	for _, m := range msgs {
		to := m.GetTo()
		p := t.peers[to]
		if p == nil {
			if to != t.cfg.ID {
				t.lg.Debug("transport: message to unknown peer dropped", "peer", idString(to), "type", m.GetType())
				t.report(to, m.GetType() == raftpb.MsgSnap)
			}
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			p.sendSnapshot(m)
			continue
		}
		select {
		case p.queue <- m:
		default:
			t.report(to, false)
		}
	}
}

// ActiveSince reports when the stream to peer id was established, or
// the zero time if there is none now.
func (t *Transport) ActiveSince(id uint64) time.Time {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p == nil {
		return time.Time{}
	}
	return p.activeSince()
}

// Stop closes every stream, in both directions, and snapshot transfer,
// and returns when all goroutines the transport started and all handler
// calls it is serving have returned. After Stop the transport drops
// everything and calls Raft no more. Stop is idempotent.
func (t *Transport) Stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	peers := t.peers
	t.peers = nil
	for in := range t.inbound {
		in.abort()
	}
	t.mu.Unlock()

	t.cancel()
	for _, p := range peers {
		p.stop()
	}
	t.serving.Wait()
	t.reporter.Wait()
	if t.ownRT != nil {
		t.ownRT.CloseIdleConnections()
	}
}

func idString(id uint64) string { return strconv.FormatUint(id, 16) }

func parseID(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }
