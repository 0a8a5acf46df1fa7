package transport

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

var msgSnap = raftpb.MsgSnap.Enum()

func TestSnapshotIsSavedBeforeRaftSeesIt(t *testing.T) {
	checkNoLeaks(t)
	a, b := startMember(t, 1, 7, nil), startMember(t, 2, 7, nil)
	connect(a, b)
	const size = 24 << 20
	a.store.size = size

	// Heartbeats keep flowing on the stream while the snapshot is sent.
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 42)})
	for i := uint64(1); i <= 20; i++ {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, i)})
	}
	waitFor(t, 20*time.Second, "ReportSnapshot", func() bool { return len(a.raft.snapshotReports(2)) == 1 })
	if got := a.raft.snapshotReports(2); got[0] != raft.SnapshotFinish {
		t.Fatalf("ReportSnapshot(%v), want SnapshotFinish", got[0])
	}
	h, ok := b.store.savedHash(42)
	if !ok || h != snapshotHash(42, size) {
		t.Fatalf("receiver saved a snapshot that differs from the sender's (saved: %v)", ok)
	}
	got := b.raft.received(1, msgSnap)
	if len(got) != 1 || got[0].GetSnapshot().GetMetadata().GetIndex() != 42 {
		t.Fatalf("raft got %d MsgSnaps, want the one for index 42", len(got))
	}
	waitFor(t, 5*time.Second, "heartbeats", func() bool { return len(b.raft.received(1, raftpb.MsgHeartbeat.Enum())) == 20 })
	noViolations(t, a, b)
}

func TestSnapshotFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, a, b *member) *raftpb.Message
		// recvErr is what the receiving store should have seen, if anything.
		recvErr string
	}{
		{"receiver store fails", func(t *testing.T, a, b *member) *raftpb.Message {
			b.store.failReceiveAfter = 3 << 20
			return snapMsg(1, 2, 5)
		}, ""},
		{"sender store fails", func(t *testing.T, a, b *member) *raftpb.Message {
			a.store.failWriteAfter = 3 << 20
			return snapMsg(1, 2, 5)
		}, "unexpected EOF"},
		{"receiver store stops short", func(t *testing.T, a, b *member) *raftpb.Message {
			b.store.receiveShort = 1 << 20
			return snapMsg(1, 2, 5)
		}, ""},
		{"peer down", func(t *testing.T, a, b *member) *raftpb.Message {
			a.tr.UpdatePeer(2, []string{deadURL(t)})
			return snapMsg(1, 2, 5)
		}, ""},
		{"unknown peer", func(t *testing.T, a, b *member) *raftpb.Message {
			a.tr.RemovePeer(2)
			return snapMsg(1, 2, 5)
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			a, b := startMember(t, 1, 7, nil), startMember(t, 2, 7, nil)
			connect(a, b)
			a.store.size = 8 << 20
			m := tc.setup(t, a, b)
			a.tr.Send([]*raftpb.Message{m})
			waitFor(t, 10*time.Second, "ReportSnapshot", func() bool { return len(a.raft.snapshotReports(2)) > 0 })
			if got := a.raft.snapshotReports(2); !slices.Equal(got, []raft.SnapshotStatus{raft.SnapshotFailure}) {
				t.Errorf("ReportSnapshot(%v), want one SnapshotFailure", got)
			}
			if got := b.raft.received(1, msgSnap); len(got) != 0 {
				t.Errorf("raft stepped a MsgSnap whose transfer failed")
			}
			if tc.recvErr != "" {
				// The receiver may still be reading what was sent before the failure.
				waitFor(t, 5*time.Second, "the receiving store to fail", func() bool { return len(b.store.receiveErrors()) > 0 })
				errs := b.store.receiveErrors()
				if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.recvErr) {
					t.Errorf("receiving store saw %v, want an error with %q", errs, tc.recvErr)
				}
			}
			noViolations(t, a, b)
		})
	}
}

func TestSnapshotWithoutStore(t *testing.T) {
	checkNoLeaks(t)
	noStore := func(c *Config) { c.Snapshots = nil }
	a, b := startMember(t, 1, 7, noStore), startMember(t, 2, 7, noStore)
	b.raft.store = nil
	connect(a, b)
	m := snapMsg(1, 2, 9)
	m.Snapshot.Data = []byte("everything")
	a.tr.Send([]*raftpb.Message{m})
	waitFor(t, 5*time.Second, "ReportSnapshot", func() bool { return len(a.raft.snapshotReports(2)) > 0 })
	if got := a.raft.snapshotReports(2); got[0] != raft.SnapshotFinish {
		t.Fatalf("ReportSnapshot(%v), want SnapshotFinish", got[0])
	}
	if got := b.raft.received(1, msgSnap); len(got) != 1 || string(got[0].GetSnapshot().GetData()) != "everything" {
		t.Errorf("raft got %v, want the MsgSnap with its data", got)
	}
}
