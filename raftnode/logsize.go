package raftnode

import (
	"sort"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// logSizes tracks how many bytes the entries of the in-memory Raft log
// hold, so that trimming it can bound it by size as well as by count: a
// bulk load of 128 KiB entries would otherwise keep 5,000 of them (640
// MiB) in memory.
type logSizes struct {
	mu sync.Mutex
	// base is the index of the first tracked entry; cum[k] is the number
	// of bytes of the entries base..base+k, plus before.
	base   uint64
	before uint64
	cum    []uint64
}

// entrySize is what an entry costs in memory: its data and a fixed part
// for the struct and its fields.
func entrySize(e *raftpb.Entry) uint64 { return uint64(len(e.Data)) + 48 }

// append records ents, which follow the tracked entries or replace a
// suffix of them (a follower's log overwritten by a new leader).
func (l *logSizes) append(ents []*raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	first := ents[0].GetIndex()
	switch {
	case len(l.cum) == 0 || first < l.base:
		l.base, l.before, l.cum = first, 0, l.cum[:0]
	case first <= l.base+uint64(len(l.cum)):
		l.cum = l.cum[:first-l.base]
	default:
		// A gap (entries restored after a snapshot): start again.
		l.base, l.before, l.cum = first, 0, l.cum[:0]
	}
	total := l.before
	if len(l.cum) > 0 {
		total = l.cum[len(l.cum)-1]
	}
	for _, e := range ents {
		total += entrySize(e)
		l.cum = append(l.cum, total)
	}
}

// reset forgets every entry: the log was replaced by a snapshot at index.
func (l *logSizes) reset(index uint64) {
	l.mu.Lock()
	l.base, l.before, l.cum = index+1, 0, l.cum[:0]
	l.mu.Unlock()
}

// keepFrom returns the smallest index i such that the entries i..last
// hold at most max bytes (last+1 if even the last entry is bigger; the
// base if everything fits).
func (l *logSizes) keepFrom(last, max uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.cum) == 0 || last < l.base {
		return l.base
	}
	n := min(last-l.base+1, uint64(len(l.cum)))
	end := l.cum[n-1]
	// cumBefore(k) is the bytes before entry base+k; it grows with k.
	cumBefore := func(k int) uint64 {
		if k == 0 {
			return l.before
		}
		return l.cum[k-1]
	}
	k := sort.Search(int(n)+1, func(k int) bool { return end-cumBefore(k) <= max })
	return l.base + uint64(k)
}

// dropBefore forgets the entries below index (compacted away).
func (l *logSizes) dropBefore(index uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if index <= l.base {
		return
	}
	k := index - l.base
	if k >= uint64(len(l.cum)) {
		l.base, l.before, l.cum = index, 0, l.cum[:0]
		return
	}
	l.before = l.cum[k-1]
	l.cum = append(l.cum[:0], l.cum[k:]...)
	l.base = index
}
