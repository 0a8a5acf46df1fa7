package raftnode

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func ents(first uint64, sizes ...int) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i, n := range sizes {
		idx := first + uint64(i)
		out = append(out, &raftpb.Entry{Index: &idx, Data: make([]byte, n)})
	}
	return out
}

func TestLogSizesKeepFrom(t *testing.T) {
	var l logSizes
	const o = 48                                   // entrySize's fixed part
	l.append(ents(10, 100-o, 100-o, 100-o, 100-o)) // 10..13, 100 bytes each
	for _, c := range []struct{ last, max, want uint64 }{
		{13, 1000, 10}, // everything fits
		{13, 400, 10},
		{13, 399, 11},
		{13, 100, 13},
		{13, 99, 14}, // not even the last entry
		{12, 200, 11},
	} {
		if got := l.keepFrom(c.last, c.max); got != c.want {
			t.Errorf("keepFrom(%d, %d) = %d, want %d", c.last, c.max, got, c.want)
		}
	}

	l.dropBefore(12)
	if got := l.keepFrom(13, 1000); got != 12 {
		t.Fatalf("after dropping below 12: keepFrom = %d, want 12", got)
	}
	if got := l.keepFrom(13, 100); got != 13 {
		t.Fatalf("after dropping below 12: keepFrom(13, 100) = %d, want 13", got)
	}

	// A new leader overwrites 13 with a bigger entry and appends 14.
	l.append(ents(13, 1000-o, 100-o))
	if got := l.keepFrom(14, 1100); got != 13 {
		t.Fatalf("after overwrite: keepFrom(14, 1100) = %d, want 13", got)
	}
	if got := l.keepFrom(14, 1099); got != 14 {
		t.Fatalf("after overwrite: keepFrom(14, 1099) = %d, want 14", got)
	}

	// A snapshot replaces everything.
	l.reset(100)
	if got := l.keepFrom(100, 10); got != 101 {
		t.Fatalf("after reset: keepFrom = %d, want 101", got)
	}
	l.append(ents(101, 100-o))
	if got := l.keepFrom(101, 100); got != 101 {
		t.Fatalf("after reset and append: keepFrom = %d, want 101", got)
	}
	l.dropBefore(500)
	if got := l.keepFrom(600, 10); got != 500 {
		t.Fatalf("after dropping everything: keepFrom = %d, want 500", got)
	}
}
