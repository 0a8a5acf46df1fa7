// Package raftnode drives go.etcd.io/raft for one member: it ticks the
// clock, runs the Ready loop, persists entries and hard state to the
// write-ahead log before anything that depends on them happens, hands
// committed entries to the apply loop in order, and takes log snapshots
// so the log does not grow forever.
//
// It never interprets entry payloads (that is package apply) and never
// touches the key-value store except to ask it to flush before a
// snapshot.
//
// Persistence order in the Ready loop, and why it is safe:
//
//  0. A leader sends its messages first (its appends travel while it
//     writes its own copy, raft thesis 10.2.1).
//  1. A snapshot from the leader: save its marker to the WAL first (the
//     WAL refuses entries that do not follow the newest marker).
//  2. Save HardState and new entries to the WAL and fsync, one fsync for
//     all the proposals since the last Ready (group commit); skip the
//     fsync when raft says nothing needs it (only the commit index moved).
//  3. Install the snapshot in, and append the entries to, the in-memory
//     raft log.
//  4. Anyone but the leader sends its messages now: a vote or an append
//     acknowledgement never promises state that is not durable.
//  5. Hand the snapshot and the committed entries to the apply loop.
//  6. Advance.
//
// Read states and leader changes are handed on without ever blocking the
// loop (the newest wins).
//
// Raft only reports an entry committed after the leader's own copy is
// stable (the leader acknowledges its own append after Advance), so a
// client is never answered for an entry that is not fsynced here. The
// store applies entries without fsync and records the applied index in
// the same atomic batch; after a crash the member replays the WAL from
// the store's applied index. A log snapshot only marks the WAL as
// released after the store has been flushed past the snapshot index. A
// snapshot received from the leader is marked in the WAL before the store
// is restored from it; if the member crashes in between, the server sees
// the marker ahead of the store at start-up and restores first.
//
// A snapshot sent to a follower carries the store as it is at send time,
// so its metadata is rewritten to the applied index and the configuration
// there (freshenSnapshot), as etcd does.
//
// A member restarted with Config.ForceNewCluster (etcd's
// --force-new-cluster) rewrites the end of its log before raft starts:
// the uncommitted entries go, and committed membership changes that leave
// it the only member follow (force.go). The changes are ordinary log
// entries: the apply loop applies them like any other.
package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/wal"
)

// Errors.
var (
	// ErrStopped is returned by calls on a stopped node.
	ErrStopped = errors.New("raftnode: stopped")
	// ErrNotLeader is returned by calls only the leader can serve.
	ErrNotLeader = errors.New("raftnode: not the leader")
)

// Transport carries messages to peers. Send must not block.
type Transport interface {
	Send(msgs []*raftpb.Message)
}

// Config configures a node.
type Config struct {
	// ID is this member's Raft ID.
	ID uint64
	// Peers bootstraps a new cluster (ignored when the WAL has state).
	Peers []raft.Peer
	// Join starts a member added to a running cluster: no bootstrap
	// entries; the leader sends it the log or a snapshot.
	Join bool
	// Transport sends messages to peers; nil for a member with none.
	Transport Transport
	// WALDir is the write-ahead log directory.
	WALDir string
	// TickInterval is the heartbeat interval; ElectionTicks is the
	// election timeout in ticks.
	TickInterval  time.Duration
	ElectionTicks int
	// SnapshotCount is how many applied entries trigger a log snapshot;
	// SnapshotCatchUp is how many entries the log keeps behind it.
	SnapshotCount   uint64
	SnapshotCatchUp uint64
	// SnapshotCatchUpBytes also bounds the in-memory log by size: entries
	// beyond the newest SnapshotCatchUpBytes bytes are dropped once every
	// follower has them, even when fewer than SnapshotCatchUp entries are
	// kept. 0 means no bound by size.
	SnapshotCatchUpBytes uint64
	// PreVote enables raft's pre-vote.
	PreVote bool
	// Flush makes the state machine durable up to at least the index it
	// has applied; called before the log is truncated.
	Flush func() error
	// OnWALSync, if set, is told how long each WAL fsync took.
	OnWALSync func(time.Duration)
	// UnsafeNoFsync skips the WAL's fsyncs (see wal.Options.UnsafeNoSync).
	UnsafeNoFsync bool
	// OnHeartbeatLate, if set, is told when the leader sends a peer a
	// heartbeat more than two heartbeat intervals after the previous one
	// (etcd's "leader failed to send out heartbeat on time"), and by how
	// much it exceeded that. It runs on the Raft loop: it must not block.
	OnHeartbeatLate func(to uint64, exceeded time.Duration)
	// ForceNewCluster restarts a member that has a log as the only member
	// of its cluster (etcd's --force-new-cluster, see forceNewCluster).
	// It has no effect on a member without one.
	ForceNewCluster bool
	// Applied is the state machine's applied index, for ForceNewCluster:
	// what the store has applied was committed, whatever the WAL's hard
	// state says.
	Applied uint64
	// SelfContext is the Context of the change that adds this member back
	// when ForceNewCluster finds it missing from the configuration.
	SelfContext []byte
	// ClusterID is used only in log lines.
	ClusterID uint64
	// Logger may be nil.
	Logger *slog.Logger
}

// Apply is a batch of work for the state machine: a snapshot to restore
// first, if any, then committed entries.
type Apply struct {
	Snapshot *raftpb.Snapshot
	Entries  []*raftpb.Entry
}

// Node is a running Raft member.
type Node struct {
	cfg     Config
	lg      *slog.Logger
	rn      raft.Node
	storage *raft.MemoryStorage
	sizes   logSizes // of the entries in storage

	walMu sync.Mutex
	wal   *wal.WAL

	applyc chan Apply
	readc  chan raft.ReadState
	leadc  chan uint64

	snapWG sync.WaitGroup // the background log snapshot, if any
	// heartbeats holds when the last heartbeat went to each peer (Raft
	// loop only; cleared when the leader changes).
	heartbeats map[uint64]time.Time
	lead       atomic.Uint64
	term       atomic.Uint64
	commit     atomic.Uint64
	snapping   atomic.Bool

	// forced is set when the node restarted with ForceNewCluster.
	forced bool

	confMu sync.Mutex
	// confState is the configuration after the entries applied up to
	// applied (the newest index given to ApplyConfChange or
	// MaybeSnapshot, or of a snapshot installed).
	confState *raftpb.ConfState
	applied   uint64
	snapIndex uint64
	// memIndex is the newest snapshot of the in-memory log (see
	// MaybeSnapshot), at or after snapIndex.
	memIndex uint64

	stopc chan struct{}
	donec chan struct{}
	errMu sync.Mutex
	err   error
}

// Start opens the WAL and starts the node (new or restarted).
func Start(cfg Config) (*Node, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	if cfg.ElectionTicks == 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.SnapshotCatchUp == 0 {
		cfg.SnapshotCatchUp = 5000
	}
	existed := wal.Exists(cfg.WALDir)
	w, err := wal.Open(cfg.WALDir, wal.Options{Logger: lg, OnSync: cfg.OnWALSync, UnsafeNoSync: cfg.UnsafeNoFsync})
	if err != nil {
		return nil, err
	}
	snap, hs, ents, err := w.ReadAll()
	if err != nil {
		w.Close()
		return nil, err
	}
	st := raft.NewMemoryStorage()
	n := &Node{
		cfg: cfg, lg: lg, storage: st, wal: w,
		applyc: make(chan Apply, 64), readc: make(chan raft.ReadState, 16), leadc: make(chan uint64, 16),
		stopc: make(chan struct{}), donec: make(chan struct{}),
	}
	rc := &raft.Config{
		ID:              cfg.ID,
		ElectionTick:    cfg.ElectionTicks,
		HeartbeatTick:   1,
		Storage:         st,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 512,
		CheckQuorum:     true,
		PreVote:         cfg.PreVote,
		Logger:          raftLogger{lg},
	}
	n.confState = &raftpb.ConfState{}
	if existed && (len(ents) > 0 || !raft.IsEmptyHardState(hs) || snap.GetIndex() > 0) {
		if snap.GetIndex() > 0 {
			if err := st.ApplySnapshot(&raftpb.Snapshot{Metadata: snap}); err != nil {
				w.Close()
				return nil, fmt.Errorf("raftnode: load snapshot %d: %w", snap.GetIndex(), err)
			}
			n.confState = raftpb.EnsureConfState(snap.ConfState)
			n.snapIndex = snap.GetIndex()
			n.memIndex = snap.GetIndex()
			n.applied = snap.GetIndex()
			n.sizes.reset(snap.GetIndex())
		}
		if cfg.ForceNewCluster {
			if hs, ents, err = n.forceNewCluster(w, snap, hs, ents); err != nil {
				w.Close()
				return nil, err
			}
			n.forced = true
		}
		if hs != nil {
			if err := st.SetHardState(hs); err != nil {
				w.Close()
				return nil, err
			}
		}
		if err := st.Append(ents); err != nil {
			w.Close()
			return nil, err
		}
		n.sizes.append(ents)
		// Entries after the snapshot are re-delivered; the apply loop
		// skips those the store already has, but re-applies membership
		// changes to raft, whose configuration lives only in memory.
		rc.Applied = snap.GetIndex()
		n.rn = raft.RestartNode(rc)
		lg.Info("raftnode: restarted", "id", fmt.Sprintf("%x", cfg.ID), "term", hs.GetTerm(), "commit", hs.GetCommit(), "snapshot", snap.GetIndex(), "entries", len(ents))
	} else if cfg.Join {
		n.rn = raft.RestartNode(rc)
		lg.Info("raftnode: joining running cluster", "id", fmt.Sprintf("%x", cfg.ID))
	} else {
		if len(cfg.Peers) == 0 {
			w.Close()
			return nil, fmt.Errorf("raftnode: the WAL in %s holds no raft state and there are no initial peers to start from", cfg.WALDir)
		}
		n.rn = raft.StartNode(rc, cfg.Peers)
		lg.Info("raftnode: started new member", "id", fmt.Sprintf("%x", cfg.ID), "peers", len(cfg.Peers))
	}
	go n.run()
	return n, nil
}

// Apply delivers committed entries in log order.
func (n *Node) Apply() <-chan Apply { return n.applyc }

// LeaderChanges delivers the new leader ID (0: none) on every change.
func (n *Node) LeaderChanges() <-chan uint64 { return n.leadc }

// Done is closed when the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.donec }

// Err is the error that stopped the node, if any.
func (n *Node) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

// Lead is the current leader's ID (0: none known).
func (n *Node) Lead() uint64 { return n.lead.Load() }

// Term is the current term.
func (n *Node) Term() uint64 { return n.term.Load() }

// CommitIndex is the highest index known committed.
func (n *Node) CommitIndex() uint64 { return n.commit.Load() }

// ID is this member's Raft ID.
func (n *Node) ID() uint64 { return n.cfg.ID }

// WALBytes is the number of bytes written to the WAL since start.
func (n *Node) WALBytes() uint64 { return n.wal.BytesWritten() }

// Propose appends data to the log (through the leader).
func (n *Node) Propose(ctx context.Context, data []byte) error {
	return n.rn.Propose(ctx, data)
}

// ProposeConfChange proposes a membership change.
func (n *Node) ProposeConfChange(ctx context.Context, cc raftpb.ConfChangeI) error {
	return n.rn.ProposeConfChange(ctx, cc)
}

// ApplyConfChange tells raft the membership change at index has been
// applied.
func (n *Node) ApplyConfChange(index uint64, cc raftpb.ConfChangeI) {
	cs := n.rn.ApplyConfChange(cc)
	n.confMu.Lock()
	n.confState = cs
	n.applied = max(n.applied, index)
	n.confMu.Unlock()
}

// Forced reports whether the node restarted with ForceNewCluster: its log
// ends with the committed changes that leave it the only member.
func (n *Node) Forced() bool { return n.forced }

// ReadIndex asks the leader for the commit index a linearizable read must
// wait for; the answer arrives on ReadStates with the same rctx.
func (n *Node) ReadIndex(ctx context.Context, rctx []byte) error {
	return n.rn.ReadIndex(ctx, rctx)
}

// ReadStates delivers answers to ReadIndex.
func (n *Node) ReadStates() <-chan raft.ReadState { return n.readc }

// Process steps a message from a peer (for the transport).
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	return n.rn.Step(ctx, m)
}

// ReportUnreachable tells raft a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) { n.rn.ReportUnreachable(id) }

// ReportSnapshot tells raft how sending a snapshot went.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.rn.ReportSnapshot(id, status)
}

// TransferLeadership asks the leader to hand leadership to transferee.
func (n *Node) TransferLeadership(ctx context.Context, lead, transferee uint64) {
	n.rn.TransferLeadership(ctx, lead, transferee)
}

// Status is raft's view of this member.
func (n *Node) Status() raft.Status { return n.rn.Status() }

// Campaign makes this member campaign for leadership now.
func (n *Node) Campaign(ctx context.Context) error { return n.rn.Campaign(ctx) }

// Stop stops the node and closes the WAL.
func (n *Node) Stop() {
	select {
	case <-n.stopc:
	default:
		close(n.stopc)
	}
	<-n.donec
	n.snapWG.Wait()
}

// SnapshotIndex is the index of the newest snapshot marker in the WAL: the
// state machine must hold at least this much before it applies entries.
func (n *Node) SnapshotIndex() uint64 {
	n.confMu.Lock()
	defer n.confMu.Unlock()
	return n.snapIndex
}

func (n *Node) fail(err error) {
	n.errMu.Lock()
	if n.err == nil {
		n.err = err
	}
	n.errMu.Unlock()
	n.lg.Error("raftnode: stopping on error", "err", err)
}

func (n *Node) run() {
	defer close(n.donec)
	defer func() {
		n.rn.Stop()
		n.walMu.Lock()
		if err := n.wal.Close(); err != nil {
			n.lg.Error("raftnode: close wal", "err", err)
		}
		n.walMu.Unlock()
	}()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-n.stopc:
			return
		case <-ticker.C:
			n.rn.Tick()
		case rd := <-n.rn.Ready():
			if err := n.handleReady(rd); err != nil {
				n.fail(err)
				return
			}
			// Let the goroutines with proposals run before the next
			// Ready is taken, so it carries them all (group commit).
			// On a machine with one core free for the server, the
			// loop would otherwise take the next Ready at once, with
			// the one or two proposals that arrived during the fsync,
			// and fsync again: 1.7 proposals per fsync and 0.5x etcd's
			// put rate where this yield gives 20 per fsync and 2.5x
			// the rate (docs/BENCHMARKS.md, "Pinned"). With idle cores
			// it costs a few hundred nanoseconds.
			runtime.Gosched()
		}
	}
}

func (n *Node) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil && rd.SoftState.Lead != n.lead.Load() {
		n.lead.Store(rd.SoftState.Lead)
		clear(n.heartbeats)
		// Never block the Ready loop; if the consumer is behind, the
		// newest leader is what it must see, so drop the oldest.
		for {
			select {
			case n.leadc <- rd.SoftState.Lead:
			default:
				select {
				case <-n.leadc:
				default:
				}
				continue
			}
			break
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		n.term.Store(rd.HardState.GetTerm())
		n.commit.Store(rd.HardState.GetCommit())
	}
	// Read states never block the Ready loop either: only the newest
	// answers a waiting read round (older ones are for abandoned rounds),
	// as etcd does.
	if k := len(rd.ReadStates); k > 0 {
		rs := rd.ReadStates[k-1]
		select {
		case n.readc <- rs:
		default:
			select {
			case <-n.readc:
			default:
			}
			select {
			case n.readc <- rs:
			default:
				n.lg.Warn("raftnode: read state dropped", "index", rs.Index)
			}
		}
	}
	// A leader may send its appends while it writes them itself (raft
	// thesis 10.2.1): it counts its own copy only once stable. Anything
	// else (votes, append responses) must wait until the state it
	// promises is durable.
	leader := n.lead.Load() == n.cfg.ID
	if leader {
		n.send(rd.Messages)
	}
	hasSnap := !raft.IsEmptySnap(rd.Snapshot)
	if hasSnap {
		// The marker first: the WAL refuses entries that do not follow it.
		n.walMu.Lock()
		err := n.wal.SaveSnapshot(rd.Snapshot.GetMetadata())
		n.walMu.Unlock()
		if err != nil {
			return fmt.Errorf("raftnode: save snapshot marker: %w", err)
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 {
		n.walMu.Lock()
		var err error
		if rd.MustSync {
			err = n.wal.Save(rd.HardState, rd.Entries)
		} else {
			// Only the commit index moved: raft does not need it durable.
			err = n.wal.SaveNoSync(rd.HardState, rd.Entries)
		}
		n.walMu.Unlock()
		if err != nil {
			return fmt.Errorf("raftnode: save to wal: %w", err)
		}
	}
	if hasSnap {
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("raftnode: apply snapshot %d to raft log: %w", rd.Snapshot.GetMetadata().GetIndex(), err)
		}
		n.confMu.Lock()
		n.confState = raftpb.EnsureConfState(rd.Snapshot.GetMetadata().GetConfState())
		n.snapIndex = rd.Snapshot.GetMetadata().GetIndex()
		n.memIndex = max(n.memIndex, n.snapIndex)
		n.applied = max(n.applied, n.snapIndex)
		n.confMu.Unlock()
		n.sizes.reset(rd.Snapshot.GetMetadata().GetIndex())
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("raftnode: append to raft log: %w", err)
	}
	n.sizes.append(rd.Entries)
	if !leader {
		n.send(rd.Messages)
	}
	if hasSnap || len(rd.CommittedEntries) > 0 {
		ap := Apply{Entries: rd.CommittedEntries}
		if hasSnap {
			ap.Snapshot = rd.Snapshot
		}
		select {
		case n.applyc <- ap:
		case <-n.stopc:
			return nil
		}
	}
	n.rn.Advance()
	return nil
}

func (n *Node) send(msgs []*raftpb.Message) {
	if len(msgs) > 0 && n.cfg.Transport != nil {
		n.watchHeartbeats(msgs)
		for _, m := range msgs {
			if m.GetType() == raftpb.MsgSnap {
				n.freshenSnapshot(m)
			}
		}
		n.cfg.Transport.Send(msgs)
	}
}

// freshenSnapshot makes an outgoing snapshot describe what the follower
// will receive, as etcd's merged snapshot message does: the store is
// streamed as it is when sent, at or past the applied index, so the
// metadata names the applied index, its term and the configuration there
// rather than those of the older in-memory snapshot raft picked. That one
// may predate the follower's own addition (raft refuses a snapshot whose
// configuration lacks the receiver, and the leader would resend it
// forever) or still list members removed since, such as those a
// --force-new-cluster removed.
func (n *Node) freshenSnapshot(m *raftpb.Message) {
	meta := m.GetSnapshot().GetMetadata()
	n.confMu.Lock()
	applied, cs := n.applied, n.confState
	n.confMu.Unlock()
	if applied <= meta.GetIndex() {
		return
	}
	term, err := n.storage.Term(applied)
	if err != nil {
		return // compacted meanwhile: the older snapshot is still valid
	}
	m.Snapshot = &raftpb.Snapshot{Data: m.GetSnapshot().GetData(), Metadata: &raftpb.SnapshotMetadata{
		Index: &applied, Term: &term, ConfState: proto.Clone(cs).(*raftpb.ConfState),
	}}
}

// watchHeartbeats reports heartbeats sent later than two heartbeat
// intervals after the previous one to the same peer: the leader was
// held up (a slow disk, an overloaded machine) long enough that its
// followers may start an election.
func (n *Node) watchHeartbeats(msgs []*raftpb.Message) {
	if n.cfg.OnHeartbeatLate == nil {
		return
	}
	var now time.Time
	for _, m := range msgs {
		if m.GetType() != raftpb.MsgHeartbeat {
			continue
		}
		if now.IsZero() {
			now = time.Now()
		}
		if n.heartbeats == nil {
			n.heartbeats = map[uint64]time.Time{}
		}
		if prev, ok := n.heartbeats[m.GetTo()]; ok {
			if exceed := now.Sub(prev) - 2*n.cfg.TickInterval; exceed > 0 {
				n.cfg.OnHeartbeatLate(m.GetTo(), exceed)
			}
		}
		n.heartbeats[m.GetTo()] = now
	}
}

// memoryCompactEvery is how many applied entries pass between trims of
// the in-memory log (etcd 3.7 trims as often).
const memoryCompactEvery = 100

// MaybeSnapshot is called by the apply loop after applying index.
//
// Every memoryCompactEvery entries it trims the in-memory log to the last
// SnapshotCatchUp entries behind index, as etcd does, and to the newest
// SnapshotCatchUpBytes bytes where every follower has the rest, so the log
// held in memory is bounded by entries and size, not by how long ago the
// last disk snapshot was; a follower further behind gets a snapshot (the data sent
// is always the live store, see server/snapshot.go, so a snapshot of the
// in-memory log needs no state of its own).
//
// Every SnapshotCount entries it also flushes the state machine, records
// a snapshot marker in the WAL and releases old WAL segments, in the
// background so the apply loop never waits for the flush.
func (n *Node) MaybeSnapshot(index uint64) {
	n.confMu.Lock()
	n.applied = max(n.applied, index)
	trim := index >= n.memIndex+memoryCompactEvery
	due := n.cfg.SnapshotCount > 0 && index-n.snapIndex >= n.cfg.SnapshotCount
	cs := n.confState
	n.confMu.Unlock()
	if trim || due {
		n.trimMemory(index, cs)
	}
	if !due || !n.snapping.CompareAndSwap(false, true) {
		return
	}
	term, err := n.storage.Term(index)
	if err != nil {
		// A newer snapshot replaced the log meanwhile: nothing to mark.
		n.snapping.Store(false)
		return
	}
	meta := &raftpb.SnapshotMetadata{Index: &index, Term: &term, ConfState: cs}
	n.snapWG.Add(1)
	go func() {
		defer n.snapWG.Done()
		defer n.snapping.Store(false)
		if err := n.snapshot(meta); err != nil {
			n.lg.Error("raftnode: snapshot failed", "index", index, "err", err)
		}
	}()
}

// trimMemory snapshots the in-memory log at index and drops the entries
// more than SnapshotCatchUp behind it. The WAL keeps them until the next
// disk snapshot.
func (n *Node) trimMemory(index uint64, cs *raftpb.ConfState) {
	if _, err := n.storage.CreateSnapshot(index, cs, nil); err != nil {
		if !errors.Is(err, raft.ErrSnapOutOfDate) {
			n.lg.Error("raftnode: snapshot of the in-memory log failed", "index", index, "err", err)
		}
		return
	}
	n.confMu.Lock()
	n.memIndex = max(n.memIndex, index)
	n.confMu.Unlock()
	var compact uint64
	if index > n.cfg.SnapshotCatchUp {
		compact = index - n.cfg.SnapshotCatchUp
	}
	if n.cfg.SnapshotCatchUpBytes > 0 {
		// Keep the newest SnapshotCatchUpBytes bytes, but never drop an
		// entry a follower still needs: a leader compacts no further than
		// its slowest follower's match.
		if keep := n.sizes.keepFrom(index, n.cfg.SnapshotCatchUpBytes); keep > 0 {
			bySize := keep - 1
			if st := n.rn.Status(); st.RaftState == raft.StateLeader {
				for id, pr := range st.Progress {
					if id != n.cfg.ID {
						bySize = min(bySize, pr.Match)
					}
				}
			}
			compact = max(compact, min(bySize, index))
		}
	}
	if compact == 0 {
		return
	}
	if err := n.storage.Compact(compact); err != nil && !errors.Is(err, raft.ErrCompacted) {
		n.lg.Error("raftnode: trim the in-memory log failed", "index", index, "err", err)
		return
	}
	n.sizes.dropBefore(compact + 1)
}

func (n *Node) snapshot(meta *raftpb.SnapshotMetadata) error {
	if n.cfg.Flush != nil {
		if err := n.cfg.Flush(); err != nil {
			return fmt.Errorf("flush state machine: %w", err)
		}
	}
	index := meta.GetIndex()
	n.walMu.Lock()
	err := n.wal.SaveSnapshot(meta)
	n.walMu.Unlock()
	if err != nil {
		return err
	}
	n.confMu.Lock()
	n.snapIndex = index
	n.confMu.Unlock()
	n.walMu.Lock()
	err = n.wal.ReleaseTo(index)
	n.walMu.Unlock()
	n.lg.Info("raftnode: snapshot", "index", index, "term", meta.GetTerm())
	return err
}
