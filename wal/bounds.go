package wal

import "fmt"

// bounds is the shape of the logical log: the entries it holds are exactly
// the indexes snap+1 through last. Save and recovery apply the same rules
// through it, so a log Save accepted is a log Open can read back.
//
// Invariant: snap <= last.
type bounds struct {
	snap uint64 // index of the newest snapshot marker, 0 if none
	last uint64 // index of the last entry, or snap if that is larger
}

// checkAppend reports whether a run of entries starting at index first may be
// written next. It may overwrite a suffix of the log (first <= last) but may
// neither reach under the snapshot nor leave a gap.
func (b bounds) checkAppend(first uint64) error {
	if first <= b.snap {
		return fmt.Errorf("entry index %d is not above snapshot index %d", first, b.snap)
	}
	if first > b.last+1 {
		return fmt.Errorf("entry index %d leaves a gap after last index %d", first, b.last)
	}
	return nil
}

// checkSnapshot reports whether a snapshot marker at index may be written next.
// Markers never move backwards: entries at or below a marker may already be
// gone from the log.
func (b bounds) checkSnapshot(index uint64) error {
	if index < b.snap {
		return fmt.Errorf("snapshot index %d is below saved snapshot index %d", index, b.snap)
	}
	return nil
}

// appended returns the bounds after entries ending at index last were written.
func (b bounds) appended(last uint64) bounds {
	b.last = last
	return b
}

// snapshotted returns the bounds after a marker at index was written.
func (b bounds) snapshotted(index uint64) bounds {
	b.snap = index
	b.last = max(b.last, index)
	return b
}
