package raftnode

import (
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/wal"
)

// forceNewCluster rewrites the log a member restarts from so that it comes
// up as the only member of its cluster (etcd's --force-new-cluster, after
// etcd 3.7's bootstrapWALFromSnapshot):
//
//   - every entry in the WAL is kept and taken as committed. etcd drops the
//     entries past the commit index its hard state records; but a hard
//     state whose only change is the commit index is saved without an
//     fsync, so after a power cut that index can lag entries this member
//     acknowledged (as leader) or applied, and dropping them would lose
//     acknowledged writes. An entry that was never committed is applied
//     too: its client was never told it succeeded, and without the other
//     members nothing can contradict it;
//   - membership changes follow it in the log: one adding this member if
//     the configuration does not hold it (first, so that the voters are
//     never empty), then one removing each other member, voter or learner,
//     in ID order. The configuration is the snapshot marker's plus the
//     changes in the log after it. A learner cannot be forced (it would
//     leave no voter): that is refused before anything is written;
//   - those changes are written to the WAL as committed, at the current
//     term, so the apply loop applies them like any other change and raft
//     restarts with a log in which they are already committed. Unlike
//     etcd, which raises the commit index only in memory, the new commit
//     index is saved too: a member that crashes before it is elected
//     restarts without the flag as the one-member cluster it became.
//
// It returns the hard state and entries to restart raft from.
func (n *Node) forceNewCluster(w *wal.WAL, snap *raftpb.SnapshotMetadata, hs *raftpb.HardState, ents []*raftpb.Entry) (*raftpb.HardState, []*raftpb.Entry, error) {
	walCommit := hs.GetCommit()
	last := snap.GetIndex()
	if k := len(ents); k > 0 {
		last = ents[k-1].GetIndex()
	}
	if applied := max(n.cfg.Applied, walCommit); applied > last {
		return nil, nil, fmt.Errorf("raftnode: --force-new-cluster: the store has applied entry %d but the WAL ends at %d; the WAL lost entries the store has (was it written with --unsafe-no-fsync?)",
			applied, last)
	}
	commit := last
	if commit > walCommit {
		n.lg.Info("keeping WAL entries past the saved commit index as committed", "commit-index-from-wal", walCommit,
			"last-index", last, "number-of-entries", commit-walCommit)
	}
	voters, learners, err := effectiveIDs(snap, ents)
	if err != nil {
		return nil, nil, err
	}
	if slices.Contains(learners, n.cfg.ID) {
		return nil, nil, fmt.Errorf("raftnode: --force-new-cluster: member %x is a learner, which cannot be the only member of a cluster; force a voting member, or restore a snapshot into a new cluster (cairnutl snapshot restore)", n.cfg.ID)
	}
	ids := append(slices.Clone(voters), learners...)
	slices.Sort(ids)
	term := hs.GetTerm()
	if k := len(ents); k > 0 {
		term = max(term, ents[k-1].GetTerm())
	}
	term = max(term, snap.GetTerm())
	changes := n.forcedChanges(ids)
	next := commit + 1
	forced := make([]*raftpb.Entry, 0, len(changes))
	for _, cc := range changes {
		data, err := proto.Marshal(cc)
		if err != nil {
			return nil, nil, err
		}
		forced = append(forced, &raftpb.Entry{Type: raftpb.EntryType_EntryConfChange.Enum(), Term: proto.Uint64(term),
			Index: proto.Uint64(next), Data: data})
		next++
	}
	newHS := &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(hs.GetVote()), Commit: proto.Uint64(next - 1)}
	if err := w.Save(newHS, forced); err != nil {
		return nil, nil, fmt.Errorf("raftnode: --force-new-cluster: save the membership changes: %w", err)
	}
	n.lg.Info("forcing restart member", "cluster-id", fmt.Sprintf("%x", n.cfg.ClusterID), "local-member-id", fmt.Sprintf("%x", n.cfg.ID),
		"wal-commit-index", walCommit, "commit-index", newHS.GetCommit())
	return newHS, append(ents, forced...), nil
}

// forcedChanges are the membership changes that leave only this member
// of the members ids (sorted).
func (n *Node) forcedChanges(ids []uint64) []*raftpb.ConfChange {
	var ccs []*raftpb.ConfChange
	if !slices.Contains(ids, n.cfg.ID) {
		ccs = append(ccs, &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(n.cfg.ID),
			Context: n.cfg.SelfContext})
	}
	for _, id := range ids {
		if id != n.cfg.ID {
			ccs = append(ccs, &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)})
		}
	}
	return ccs
}

// effectiveIDs is the membership that the snapshot marker and the
// membership changes after it leave, voters and learners apart, each in ID
// order (etcd's GetEffectiveNodeIDsFromWALEntries, which does not tell
// them apart).
func effectiveIDs(snap *raftpb.SnapshotMetadata, ents []*raftpb.Entry) (voters, learners []uint64, err error) {
	role := map[uint64]bool{} // id -> is a learner
	cs := snap.GetConfState()
	for _, id := range cs.GetVoters() {
		role[id] = false
	}
	for _, id := range cs.GetLearners() {
		role[id] = true
	}
	for _, e := range ents {
		switch e.GetType() {
		case raftpb.EntryType_EntryConfChange:
		case raftpb.EntryType_EntryConfChangeV2:
			return nil, nil, fmt.Errorf("raftnode: --force-new-cluster: entry %d is a joint-consensus membership change, which this version cannot apply", e.GetIndex())
		default:
			continue
		}
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.Data, &cc); err != nil {
			return nil, nil, fmt.Errorf("raftnode: --force-new-cluster: decode membership change %d: %w", e.GetIndex(), err)
		}
		switch cc.GetType() {
		case raftpb.ConfChangeType_ConfChangeAddNode:
			role[cc.GetNodeId()] = false // also a learner's promotion
		case raftpb.ConfChangeType_ConfChangeAddLearnerNode:
			role[cc.GetNodeId()] = true
		case raftpb.ConfChangeType_ConfChangeRemoveNode:
			delete(role, cc.GetNodeId())
		}
	}
	for id, learner := range role {
		if learner {
			learners = append(learners, id)
		} else {
			voters = append(voters, id)
		}
	}
	slices.Sort(voters)
	slices.Sort(learners)
	return voters, learners, nil
}
