package wal

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// This file holds the model the tests check the WAL against: the simplest
// possible reading of raft's persistence rules, kept entirely in memory.

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{
		Index: new(index),
		Term:  new(term),
		Type:  raftpb.EntryType_EntryNormal.Enum(),
		Data:  []byte(data),
	}
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func snapMeta(index, term uint64, voters ...uint64) *raftpb.SnapshotMetadata {
	return &raftpb.SnapshotMetadata{
		Index:     new(index),
		Term:      new(term),
		ConfState: &raftpb.ConfState{Voters: voters},
	}
}

// model is what a log should read back as. It keeps every entry ever
// written, minus those overwritten, and applies the snapshot only on view.
type model struct {
	snap *raftpb.SnapshotMetadata
	hs   *raftpb.HardState
	ents []*raftpb.Entry
}

func (m *model) entry(e *raftpb.Entry) {
	m.ents = slices.DeleteFunc(m.ents, func(x *raftpb.Entry) bool { return x.GetIndex() >= e.GetIndex() })
	m.ents = append(m.ents, e)
}

func (m *model) key() string {
	var b strings.Builder
	var ents []*raftpb.Entry
	for _, e := range m.ents {
		if e.GetIndex() > m.snap.GetIndex() {
			ents = append(ents, e)
		}
	}
	writeKey(&b, m.snap, m.hs, ents)
	return b.String()
}

// stateKey renders a read-back state canonically, for comparison with model
// states.
func stateKey(snap *raftpb.SnapshotMetadata, hs *raftpb.HardState, ents []*raftpb.Entry) string {
	var b strings.Builder
	writeKey(&b, snap, hs, ents)
	return b.String()
}

func writeKey(b *strings.Builder, snap *raftpb.SnapshotMetadata, hs *raftpb.HardState, ents []*raftpb.Entry) {
	fmt.Fprintf(b, "snap=%d/%d%v hs=%d/%d/%d ents=", snap.GetIndex(), snap.GetTerm(), snap.GetConfState().GetVoters(),
		hs.GetTerm(), hs.GetVote(), hs.GetCommit())
	for _, e := range ents {
		fmt.Fprintf(b, "[%d/%d %q]", e.GetIndex(), e.GetTerm(), e.GetData())
	}
}

// recorder drives a WAL and the model side by side and remembers the model
// state after every record written: a log cut short anywhere must read back
// as one of them.
type recorder struct {
	t        testing.TB
	w        *WAL
	m        model
	prefixes []string // model key after each record, in write order

	// The workload's position, kept here so that a workload can resume on a
	// reopened log.
	term, last, snap, commit uint64
}

func newRecorder(t testing.TB, w *WAL) *recorder {
	r := &recorder{t: t, w: w, term: 1}
	r.prefixes = []string{r.m.key()}
	return r
}

func (r *recorder) save(hs *raftpb.HardState, ents ...*raftpb.Entry) {
	r.t.Helper()
	if err := r.w.Save(hs, ents); err != nil {
		r.t.Fatalf("Save: %v", err)
	}
	for _, e := range ents {
		r.m.entry(e)
		r.prefixes = append(r.prefixes, r.m.key())
	}
	if hs != nil && !isEmptyHardState(hs) {
		r.m.hs = hs
		r.prefixes = append(r.prefixes, r.m.key())
	}
}

func (r *recorder) snapshot(meta *raftpb.SnapshotMetadata) {
	r.t.Helper()
	if err := r.w.SaveSnapshot(meta); err != nil {
		r.t.Fatalf("SaveSnapshot: %v", err)
	}
	r.m.snap = meta
	r.prefixes = append(r.prefixes, r.m.key())
}

// workload writes a random but valid raft persistence history: appends,
// suffix overwrites after term changes, and snapshot markers.
func (r *recorder) workload(rng *rand.Rand, steps int) {
	r.t.Helper()
	term, last, snap, commit := r.term, r.last, r.snap, r.commit
	defer func() { r.term, r.last, r.snap, r.commit = term, last, snap, commit }()
	for range steps {
		switch k := rng.IntN(10); {
		case k == 0 && last > commit+1:
			// A new leader overwrites an uncommitted suffix.
			term++
			from := commit + 1 + rng.Uint64N(last-commit)
			n := 1 + rng.Uint64N(3)
			ents := make([]*raftpb.Entry, 0, n)
			for i := range n {
				ents = append(ents, ent(from+i, term, fmt.Sprintf("t%d-%d", term, from+i)))
			}
			last = from + n - 1
			r.save(hardState(term, 1, commit), ents...)
		case k == 1 && commit > snap:
			snap = snap + 1 + rng.Uint64N(commit-snap)
			r.snapshot(snapMeta(snap, term, 1, 2, 3))
		default:
			n := 1 + rng.Uint64N(5)
			ents := make([]*raftpb.Entry, 0, n)
			for i := range n {
				ents = append(ents, ent(last+1+i, term, strings.Repeat("x", rng.IntN(40))+fmt.Sprint(last+1+i)))
			}
			last += n
			commit = max(commit, last-rng.Uint64N(min(last, 3)))
			r.save(hardState(term, 1, commit), ents...)
		}
	}
}

// readBack opens dir and returns the state it reads back.
func readBack(t testing.TB, dir string, opts Options) (string, error) {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		return "", err
	}
	defer w.Close()
	snap, hs, ents, err := w.ReadAll()
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return stateKey(snap, hs, ents), nil
}
