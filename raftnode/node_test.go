package raftnode

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A single member's in-memory log is trimmed by size as well as by count:
// with room for 5,000 entries but only 256 KiB, writing 400 entries of 16
// KiB leaves about 16 of them (and never fewer than the bound allows).
func TestInMemoryLogBoundBySize(t *testing.T) {
	n, err := Start(Config{
		ID: 1, Peers: []raft.Peer{{ID: 1}}, WALDir: t.TempDir(),
		TickInterval: 10 * time.Millisecond, SnapshotCatchUp: 5000, SnapshotCatchUpBytes: 256 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for n.Lead() != 1 {
		if err := n.Campaign(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("no leader")
		case <-time.After(20 * time.Millisecond):
		}
	}
	const writes, size = 400, 16 << 10
	go func() {
		for range writes {
			if err := n.Propose(ctx, make([]byte, size)); err != nil {
				return
			}
		}
	}()
	var last uint64
	for seen := 0; seen < writes; {
		select {
		case ap := <-n.Apply():
			for _, e := range ap.Entries {
				if len(e.Data) == size {
					seen++
				}
				last = e.GetIndex()
			}
			n.MaybeSnapshot(last)
		case <-ctx.Done():
			t.Fatal("timed out applying")
		}
	}
	first, err := n.storage.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	held, max := last-first+1, uint64(256<<10)/size
	// Trims happen every memoryCompactEvery entries, so up to that many
	// more may be held between two trims.
	if held > max+memoryCompactEvery || held < max-1 {
		t.Fatalf("in-memory log holds entries %d..%d (%d), want about %d", first, last, held, max)
	}
}

// A heartbeat to a peer later than two heartbeat intervals after the
// previous one is reported, with by how much; the first one is not, nor
// other messages, nor a heartbeat on time.
func TestHeartbeatLateReported(t *testing.T) {
	var late []uint64
	n := &Node{cfg: Config{TickInterval: 20 * time.Millisecond,
		OnHeartbeatLate: func(to uint64, exceeded time.Duration) {
			if exceeded <= 0 {
				t.Errorf("exceeded %v", exceeded)
			}
			late = append(late, to)
		}}}
	hb := func(to uint64) *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: proto.Uint64(to)}
	}
	app := &raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), To: proto.Uint64(2)}
	n.watchHeartbeats([]*raftpb.Message{hb(2), hb(3), app})
	n.watchHeartbeats([]*raftpb.Message{hb(2)}) // on time
	time.Sleep(60 * time.Millisecond)
	n.watchHeartbeats([]*raftpb.Message{hb(3), app})
	if len(late) != 1 || late[0] != 3 {
		t.Fatalf("late heartbeats reported for %v, want [3]", late)
	}
}
