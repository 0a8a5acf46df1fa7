/*
Package wal is Cairn's write-ahead log: the durable record of what raft
needs to restart — the entries it has appended, its HardState (term, vote,
commit) and a marker saying which snapshot the log continues from. It owns
the files in one directory and nothing else: snapshot data lives in package
snap, applied state in the storage engine.

# Usage

The raft driver opens the log at start-up and seeds raft's storage from it:

	w, err := wal.Open(dir, wal.Options{Logger: logger})
	if err != nil {
		return err // a *wal.CorruptError names the file and offset
	}
	meta, hs, ents, err := w.ReadAll()
	storage := raft.NewMemoryStorage()
	if meta.GetIndex() > 0 {
		storage.ApplySnapshot(loadSnapshot(meta)) // from package snap
	}
	storage.SetHardState(hs)
	storage.Append(ents)

Then, in the Ready loop, it persists each Ready before sending messages or
acknowledging anything:

	if !raft.IsEmptySnap(rd.Snapshot) {
		saveSnapshotFile(rd.Snapshot)          // the data first...
		w.SaveSnapshot(rd.Snapshot.Metadata)  // ...then the marker
	}
	if err := w.Save(rd.HardState, rd.Entries); err != nil {
		return err // the WAL is now failed; stop the node
	}
	send(rd.Messages)

Save writes all of a Ready's entries and its hard state with one write and
one fdatasync, so a busy server pays one disk flush for many client requests
(group commit). After a snapshot has been taken and its marker saved,
ReleaseTo lets the log delete segment files that only hold entries the
snapshot covers.

# Files

The log is a sequence of segment files named

	<seq>-<first>.wal      e.g. 0000000000000002-00000000000a3f01.wal

with both numbers in 16 hex digits, so that lexical order is log order. seq
counts segments from 1 without gaps; first is the entry index the log
expected next when the segment was cut. Each segment is preallocated to
Options.SegmentSize bytes of zeros; records are appended until the next
write would pass that size, and then a new segment is cut. A new segment is
built under a temporary name (<name>.tmp), its header is fsynced, and only
then is it renamed into place and the directory fsynced.

# Records

A segment is a run of 8-byte-aligned frames followed by zeros:

	+--------+--------+------+---------------------+---------+
	| length | crc    | type | payload             | padding |
	| uint32 | uint32 | byte | length-1 bytes      | to 8    |
	+--------+--------+------+---------------------+---------+

length (little-endian) counts the type byte and the payload, so it is never
zero in a written frame: a zero length field marks the end of data. crc is
the CRC-32C (Castagnoli) of type and payload, seeded with the segment's seq
and the frame's offset in the file, so a frame is valid only at the place it
was written. The types are:

	1 header      first frame of every segment: format version, seq, first,
	              and copies of the newest snapshot marker and hard state
	2 entry       a raftpb.Entry, protobuf-encoded
	3 hard state  a raftpb.HardState
	4 snapshot    a raftpb.SnapshotMetadata: the snapshot marker

Because frames are 8-aligned, a frame header never straddles a disk sector,
so a torn write cannot produce a plausible header from two different writes.

# Reading back

Open replays the segments in order. Entries follow raft's overwrite rule: an
entry with index i replaces every entry at i and above written before it. A
snapshot marker at index s drops the entries at or below s. Hard states and
markers simply replace their predecessors. ReadAll returns the result: the
newest marker, the last hard state, and the entries s+1 through the last.

# Invariants

Writers keep these, and Open checks them, failing rather than serving a log
that breaks one:

  - The entries form a contiguous run from the newest marker's index plus one
    to the last index. Save rejects an entry run that would start at or below
    the marker or leave a gap; Open reports a log whose segments have lost
    entries the marker does not cover.
  - Markers never move backwards.
  - Segment seq numbers are contiguous, and each segment's first is one past
    the last index of the log before it; its header repeats exactly the
    marker and hard state the records before it left. So any suffix of the
    segments reads back to the same state as the whole log, which is what
    makes ReleaseTo safe: it deletes only a prefix of the segments, never the
    last, and only segments whose entries are all at or below the newest
    marker.
  - Everything before the write offset of the last segment, and all of every
    other segment, is durable: Save and SaveSnapshot return only after an
    fdatasync, and a failed write or sync fails the WAL for good.

# Recovery

A crash during a write can leave the end of the last segment torn: a frame
cut short, a checksum that fails, or garbage where zeros should be. Nothing
in it was acknowledged, since the Save that wrote it never returned. Open
recognises a torn tail as damage in the last segment after which no valid
frame follows; it zeroes those bytes, logs a warning, and opens the log with
everything before them.

Any other damage is corruption and Open returns an error matching ErrCorrupt,
usually a *CorruptError such as

	wal: corrupt record in /data/wal/0000000000000003-0000000000000401.wal at offset 4096: checksum mismatch

That covers a bad frame followed by valid ones, a bad frame in any segment
but the last, a damaged segment header, an impossible length, a payload that
does not parse, and records that break the invariants above. The log never
guesses: a write torn in its middle while a later part of the same write
reached the disk is reported as corruption too, since from the bytes alone it
cannot be told apart from damage to acknowledged data.

The directory is locked (flock) while open, so two processes cannot append
to the same log.
*/
package wal
