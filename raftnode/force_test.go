package raftnode

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/wal"
)

func confEntry(t *testing.T, index, term uint64, typ raftpb.ConfChangeType, id uint64) *raftpb.Entry {
	t.Helper()
	data, err := proto.Marshal(&raftpb.ConfChange{Type: typ.Enum(), NodeId: proto.Uint64(id)})
	if err != nil {
		t.Fatal(err)
	}
	return &raftpb.Entry{Type: raftpb.EntryType_EntryConfChange.Enum(), Index: proto.Uint64(index), Term: proto.Uint64(term), Data: data}
}

func dataEntry(index, term uint64) *raftpb.Entry {
	return &raftpb.Entry{Type: raftpb.EntryType_EntryNormal.Enum(), Index: proto.Uint64(index), Term: proto.Uint64(term), Data: []byte("x")}
}

// A restart with ForceNewCluster keeps the whole log as committed (the
// WAL's saved commit index may lag entries acknowledged before a power
// cut), and appends committed changes that remove every other member,
// learners too, adding this member first when the configuration lacks
// it; the member then elects itself alone, and a later restart without
// the flag finds the same log.
func TestForceNewCluster(t *testing.T) {
	for _, tc := range []struct {
		name    string
		voters  []uint64 // in the snapshot marker
		applied uint64
		want    []string // the changes after the kept log
		keep    uint64   // the last kept index
	}{
		{name: "store ahead of the WAL commit", voters: []uint64{1, 2, 3}, applied: 8, keep: 9, want: []string{"-2", "-3", "-4"}},
		{name: "WAL commit", voters: []uint64{1, 2, 3}, applied: 6, keep: 9, want: []string{"-2", "-3", "-4"}},
		{name: "self missing", voters: []uint64{2, 3}, applied: 6, keep: 9, want: []string{"+1", "-2", "-3", "-4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := wal.Open(dir, wal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			five, two := uint64(5), uint64(2)
			if err := w.SaveSnapshot(&raftpb.SnapshotMetadata{Index: &five, Term: &two, ConfState: &raftpb.ConfState{Voters: tc.voters}}); err != nil {
				t.Fatal(err)
			}
			// 6 data, 7 adds learner 4 (committed), 8 and 9 data (past
			// the WAL's saved commit index: kept all the same).
			ents := []*raftpb.Entry{dataEntry(6, 3), confEntry(t, 7, 3, raftpb.ConfChangeType_ConfChangeAddLearnerNode, 4), dataEntry(8, 3), dataEntry(9, 3)}
			if err := w.Save(&raftpb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(2), Commit: proto.Uint64(7)}, ents); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			cfg := Config{ID: 1, WALDir: dir, TickInterval: 10 * time.Millisecond, ForceNewCluster: true, Applied: tc.applied,
				SelfContext: []byte(`{"id":1}`)}
			n, err := Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !n.Forced() {
				t.Fatal("Forced() = false")
			}
			last := tc.keep + uint64(len(tc.want))
			got := applyUntilLeader(t, n, last)
			var kept []uint64
			var changes []string
			for _, e := range got {
				if e.GetIndex() > last {
					break // the new leader's empty entry
				}
				if e.GetIndex() <= tc.keep {
					kept = append(kept, e.GetIndex())
					continue
				}
				if e.GetType() != raftpb.EntryType_EntryConfChange || e.GetTerm() != 3 {
					t.Fatalf("entry %d: %v at term %d, want a membership change at term 3", e.GetIndex(), e.GetType(), e.GetTerm())
				}
				var cc raftpb.ConfChange
				if err := proto.Unmarshal(e.Data, &cc); err != nil {
					t.Fatal(err)
				}
				switch cc.GetType() {
				case raftpb.ConfChangeType_ConfChangeAddNode:
					changes = append(changes, "+"+idString(cc.GetNodeId()))
					if string(cc.GetContext()) != `{"id":1}` {
						t.Errorf("self added with context %q", cc.GetContext())
					}
				case raftpb.ConfChangeType_ConfChangeRemoveNode:
					changes = append(changes, "-"+idString(cc.GetNodeId()))
				default:
					t.Fatalf("entry %d: %v", e.GetIndex(), cc.GetType())
				}
			}
			if want := seq(6, tc.keep); !slices.Equal(kept, want) {
				t.Errorf("kept entries %v, want %v", kept, want)
			}
			if !slices.Equal(changes, tc.want) {
				t.Errorf("forced changes %v, want %v", changes, tc.want)
			}
			if v := n.Status().Config.Voters.IDs(); len(v) != 1 || !hasKey(v, 1) {
				t.Errorf("voters %v, want only 1", v)
			}
			n.Stop()

			// Without the flag the same log comes back, committed.
			cfg.ForceNewCluster = false
			n, err = Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Stop()
			if n.Forced() {
				t.Fatal("Forced() without the flag")
			}
			if got := applyUntilLeader(t, n, last); len(got) == 0 {
				t.Fatal("nothing replayed")
			}
		})
	}
}

// A learner cannot be forced: it is refused before anything is written,
// and the member then restarts without the flag as it was.
func TestForceNewClusterRefusesALearner(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	five, two := uint64(5), uint64(2)
	if err := w.SaveSnapshot(&raftpb.SnapshotMetadata{Index: &five, Term: &two,
		ConfState: &raftpb.ConfState{Voters: []uint64{2, 3}, Learners: []uint64{1}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(&raftpb.HardState{Term: proto.Uint64(2), Commit: proto.Uint64(6)}, []*raftpb.Entry{dataEntry(6, 2)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := Config{ID: 1, WALDir: dir, TickInterval: 10 * time.Millisecond, ForceNewCluster: true, Applied: 6}
	if n, err := Start(cfg); err == nil || !strings.Contains(err.Error(), "is a learner") {
		if n != nil {
			n.Stop()
		}
		t.Fatalf("forcing a learner: %v, want a refusal", err)
	}
	cfg.ForceNewCluster = false
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if v := n.Status().Config.Learners; !hasKey(v, 1) {
		t.Errorf("after a refused force the member is no longer a learner: %v", n.Status().Config)
	}
}

// Without a WAL the flag changes nothing: the member bootstraps as new.
func TestForceNewClusterWithoutWAL(t *testing.T) {
	n, err := Start(Config{ID: 1, Peers: []raft.Peer{{ID: 1}}, WALDir: t.TempDir(), TickInterval: 10 * time.Millisecond, ForceNewCluster: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if n.Forced() {
		t.Fatal("Forced() on a member without a WAL")
	}
}

func hasKey[V any](m map[uint64]V, k uint64) bool { _, ok := m[k]; return ok }

func idString(id uint64) string { return string(rune('0' + id)) }

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// applyUntilLeader plays the apply loop: it applies the membership
// changes delivered, until index last is applied and the node, which
// campaigns meanwhile, leads. It returns the entries delivered.
func applyUntilLeader(t *testing.T, n *Node, last uint64) []*raftpb.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*raftpb.Entry
	applied := uint64(0)
	for applied < last || n.Lead() != n.ID() {
		select {
		case ap := <-n.Apply():
			for _, e := range ap.Entries {
				got = append(got, e)
				if e.GetType() == raftpb.EntryType_EntryConfChange {
					var cc raftpb.ConfChange
					if err := proto.Unmarshal(e.Data, &cc); err != nil {
						t.Fatal(err)
					}
					n.ApplyConfChange(e.GetIndex(), &cc)
				}
				applied = e.GetIndex()
			}
			n.MaybeSnapshot(applied)
		case <-time.After(20 * time.Millisecond):
			if applied >= last {
				_ = n.Campaign(ctx)
			}
		case <-ctx.Done():
			t.Fatalf("applied %d of %d, leader %x", applied, last, n.Lead())
		}
	}
	return got
}

// An outgoing snapshot names the applied index, its term and the
// configuration there, not the older in-memory snapshot's: a member added
// since the latter must find itself in the configuration it receives.
func TestFreshenSnapshot(t *testing.T) {
	st := raft.NewMemoryStorage()
	old := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(5), Term: proto.Uint64(2), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}
	if err := st.ApplySnapshot(old); err != nil {
		t.Fatal(err)
	}
	if err := st.Append([]*raftpb.Entry{dataEntry(6, 2), dataEntry(7, 3), confEntry(t, 8, 3, raftpb.ConfChangeType_ConfChangeAddNode, 3)}); err != nil {
		t.Fatal(err)
	}
	n := &Node{storage: st, applied: 8, confState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}
	sent, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m := &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), To: proto.Uint64(3), Snapshot: sent}
	n.freshenSnapshot(m)
	md := m.GetSnapshot().GetMetadata()
	if md.GetIndex() != 8 || md.GetTerm() != 3 || !slices.Equal(md.GetConfState().GetVoters(), []uint64{1, 2, 3}) {
		t.Fatalf("sent snapshot %d term %d voters %v, want 8, 3, [1 2 3]", md.GetIndex(), md.GetTerm(), md.GetConfState().GetVoters())
	}
	if kept, _ := st.Snapshot(); kept.GetMetadata().GetIndex() != 5 || len(kept.GetMetadata().GetConfState().GetVoters()) != 2 {
		t.Fatalf("the in-memory snapshot changed: %v", kept.GetMetadata())
	}
	// Nothing newer applied: the message is left alone.
	n.applied = 5
	m.Snapshot = old
	n.freshenSnapshot(m)
	if m.GetSnapshot() != old {
		t.Fatal("a snapshot at the applied index was rewritten")
	}
}
