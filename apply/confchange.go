package apply

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/storage"
)

// refusedPrefix records the indexes of refused membership changes
// ('m' "refusedcc/" index(8)), so that a restart replaying the log hands
// raft the same no-op: by then the member list has moved on and could not
// tell again.
var refusedPrefix = []byte("mrefusedcc/")

// ApplyConfChange applies a committed membership change at index. A
// change that is not valid against the member list at this index (a
// duplicate ID, a removed member coming back) is turned into a no-op for
// raft too, by clearing its node ID, exactly as on every other member; its
// Result carries the reason. The caller hands the returned change to raft.
func (a *Applier) ApplyConfChange(index uint64, cc *raftpb.ConfChange) (*Result, error) {
	t := a.store.Write()
	res := &Result{}
	if err := a.members.ValidateChange(cc); err != nil {
		res.Err = err
		cc.NodeId = new(uint64) // raft ignores a change to node 0
		if err := t.Batch().Set(binary.BigEndian.AppendUint64(append([]byte(nil), refusedPrefix...), index), nil); err != nil {
			t.Abort()
			return nil, err
		}
	} else if err := a.members.ApplyChange(t.Batch(), cc); err != nil {
		t.Abort()
		return nil, fmt.Errorf("apply: membership change at %d: %w", index, err)
	}
	if err := t.End(index); err != nil {
		return nil, fmt.Errorf("apply: commit membership change %d: %w", index, err)
	}
	return res, nil
}

// WasRefused reports whether the membership change at index was refused
// when it was first applied.
func (a *Applier) WasRefused(index uint64) bool {
	_, ok, err := a.store.Engine().Get(binary.BigEndian.AppendUint64(append([]byte(nil), refusedPrefix...), index))
	return err == nil && ok
}

// ForgetLog drops what the engine remembers of one Raft log's indexes
// (the refused membership changes), for a data directory restored from a
// snapshot: the new cluster's log starts over.
func ForgetLog(b storage.Batch) error {
	end := append([]byte(nil), refusedPrefix...)
	end[len(end)-1]++
	return b.DeleteRange(refusedPrefix, end)
}
