package wal

import (
	"bytes"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// findBudget bounds the bytes recovery checksums while deciding whether damage
// at the end of the last segment is a torn write. See findFrame.
const findBudget = 256 << 20

// replay rebuilds the logical log from segment images, oldest segment first.
// It is pure: it reads images and returns errors, and leaves every decision
// about the files (truncating a torn tail) to its caller.
type replay struct {
	started bool
	b       bounds

	// ents covers a suffix of the indexes (b.snap, b.last], contiguously and
	// ending at b.last. It covers all of them once the replay is complete;
	// finish checks that.
	ents []*raftpb.Entry

	snap     *raftpb.SnapshotMetadata
	snapData []byte // encoding of snap, as the record held it
	hs       *raftpb.HardState
	hsData   []byte
}

// segmentResult is what replaying one segment found beyond its records.
type segmentResult struct {
	end int64 // offset just past the last valid record

	// For the last segment only: damage from end onwards that is a torn
	// write, to be zeroed through tornEnd (exclusive).
	torn       bool
	tornEnd    int64
	tornReason string
}

// segment replays the records of seg, whose bytes are img. Damage is a
// *CorruptError unless seg is the last segment and the damage is a torn tail:
// bad bytes with no valid record after them, which a crash in the middle of
// the final write leaves behind.
func (r *replay) segment(seg *segment, img []byte, last bool) (segmentResult, error) {
	corrupt := func(off int64, format string, args ...any) error {
		return &CorruptError{Path: seg.path, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}

	// The header was made durable before the file got its name, so it is
	// never torn: damage to it is corruption even in the last segment.
	typ, data, off, st, reason := readFrame(img, seg.seq, 0)
	switch {
	case st == frameEnd:
		return segmentResult{}, corrupt(0, "missing segment header")
	case st == frameBad:
		return segmentResult{}, corrupt(0, "%s", reason)
	case typ != recHeader:
		return segmentResult{}, corrupt(0, "first record has type %d, not a segment header", typ)
	}
	h, err := parseHeader(data)
	if err != nil {
		return segmentResult{}, corrupt(0, "%v", err)
	}
	if h.seq != seg.seq || h.first != seg.first {
		return segmentResult{}, corrupt(0, "header names segment %d from index %d, file name says segment %d from index %d",
			h.seq, h.first, seg.seq, seg.first)
	}
	if err := r.header(h); err != nil {
		return segmentResult{}, corrupt(0, "%v", err)
	}
	seg.bodyStart = off

	for {
		typ, data, next, st, reason := readFrame(img, seg.seq, off)
		switch st {
		case frameOK:
			idx, err := r.record(typ, data)
			if err != nil {
				return segmentResult{}, corrupt(off, "%v", err)
			}
			seg.maxIndex = max(seg.maxIndex, idx)
			off = next
			continue
		case frameEnd:
			if allZero(tailFrom(img, off)) {
				return segmentResult{end: off}, nil
			}
			reason = "non-zero bytes after the end of data"
		}
		if !last {
			return segmentResult{}, corrupt(off, "%s", reason)
		}
		switch p, err := findFrame(img, seg.seq, off+frameHeaderSize, findBudget); {
		case err != nil:
			return segmentResult{}, corrupt(off, "%s, and %v", reason, err)
		case p >= 0:
			return segmentResult{}, corrupt(off, "%s, and a valid record follows at offset %d", reason, p)
		}
		return segmentResult{end: off, torn: true, tornEnd: off + int64(lastNonZero(tailFrom(img, off))) + 1, tornReason: reason}, nil
	}
}

// header applies a segment header. The first segment read seeds the state;
// every later header must repeat the state the records before it built.
func (r *replay) header(h headerRecord) error {
	if r.started {
		if h.first != r.b.last+1 {
			return fmt.Errorf("segment starts at index %d, but the log before it ends at index %d", h.first, r.b.last)
		}
		if !bytes.Equal(h.snap, r.snapData) || !bytes.Equal(h.hs, r.hsData) {
			return fmt.Errorf("segment header disagrees with the records before it")
		}
		return nil
	}
	r.started = true
	r.b = bounds{last: h.first - 1}
	if len(h.snap) > 0 {
		if _, err := r.applySnapshot(h.snap); err != nil {
			return err
		}
		if r.b.last != h.first-1 {
			return fmt.Errorf("header snapshot index %d is past the segment's first index %d", r.b.snap, h.first)
		}
	}
	if len(h.hs) > 0 {
		if err := r.applyHardState(h.hs); err != nil {
			return err
		}
	}
	return nil
}

// record applies one record and returns the entry index it wrote, if any.
func (r *replay) record(typ byte, data []byte) (uint64, error) {
	switch typ {
	case recEntry:
		e := new(raftpb.Entry)
		if err := proto.Unmarshal(data, e); err != nil {
			return 0, fmt.Errorf("unparseable entry: %v", err)
		}
		i := e.GetIndex()
		if err := r.b.checkAppend(i); err != nil {
			return 0, err
		}
		// Overwrite: drop the suffix from i on. ents is contiguous and ends
		// at b.last, so position arithmetic finds i.
		if n := len(r.ents); n > 0 {
			k := 0
			if first := r.ents[0].GetIndex(); i > first {
				k = int(i - first)
			}
			if k < n {
				clear(r.ents[k:])
				r.ents = r.ents[:k]
			}
		}
		r.ents = append(r.ents, e)
		r.b = r.b.appended(i)
		return i, nil
	case recHardState:
		return 0, r.applyHardState(data)
	case recSnapshot:
		return r.applySnapshot(data)
	case recHeader:
		return 0, fmt.Errorf("segment header in the middle of a segment")
	default:
		return 0, fmt.Errorf("unknown record type %d", typ)
	}
}

func (r *replay) applySnapshot(data []byte) (uint64, error) {
	m := new(raftpb.SnapshotMetadata)
	if err := proto.Unmarshal(data, m); err != nil {
		return 0, fmt.Errorf("unparseable snapshot marker: %v", err)
	}
	i := m.GetIndex()
	if err := r.b.checkSnapshot(i); err != nil {
		return 0, err
	}
	r.b = r.b.snapshotted(i)
	// Entries at or below the marker are covered by the snapshot.
	k := 0
	for k < len(r.ents) && r.ents[k].GetIndex() <= i {
		k++
	}
	r.ents = slices.Delete(r.ents, 0, k)
	r.snap = m
	r.snapData = append(r.snapData[:0], data...)
	return 0, nil
}

func (r *replay) applyHardState(data []byte) error {
	hs := new(raftpb.HardState)
	if err := proto.Unmarshal(data, hs); err != nil {
		return fmt.Errorf("unparseable hard state: %v", err)
	}
	r.hs = hs
	r.hsData = append(r.hsData[:0], data...)
	return nil
}

// finish checks that the replayed records hold every entry above the
// snapshot: entries written into segments that are gone are missing.
func (r *replay) finish() error {
	want := r.b.snap + 1
	switch {
	case len(r.ents) == 0 && r.b.last != r.b.snap:
		return fmt.Errorf("entries %d through %d are missing", want, r.b.last)
	case len(r.ents) > 0 && r.ents[0].GetIndex() != want:
		return fmt.Errorf("entries %d through %d are missing", want, r.ents[0].GetIndex()-1)
	}
	return nil
}

// tailFrom returns img from off on, empty if off is past its end.
func tailFrom(img []byte, off int64) []byte {
	return img[min(off, int64(len(img))):]
}
