package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segmentExt = ".wal"
	tmpExt     = ".tmp" // appended to a segment name while it is being created

	// headerVersion is the format version written in every segment header.
	headerVersion = 1
	// headerFixedSize is version + seq + firstIndex + snapshot length.
	headerFixedSize = 4 + 8 + 8 + 4
)

// segment describes one segment file of the log.
type segment struct {
	seq   uint64 // position in the log, from 1, without gaps
	first uint64 // the entry index the log expected next when the segment was cut
	path  string

	bodyStart int64  // offset just past the header record
	maxIndex  uint64 // largest entry index written in the segment, 0 if none
}

// segmentName is the file name of segment seq: both numbers in fixed-width
// hex, so that lexical order is log order.
func segmentName(seq, first uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, first, segmentExt)
}

// parseSegmentName is the inverse of segmentName.
func parseSegmentName(name string) (seq, first uint64, ok bool) {
	base, found := strings.CutSuffix(name, segmentExt)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(base[:16], 16, 64)
	first, err2 := strconv.ParseUint(base[17:], 16, 64)
	if err1 != nil || err2 != nil || seq == 0 {
		return 0, 0, false
	}
	return seq, first, true
}

// listSegments returns the segments in dir in log order. It removes leftover
// temporary files from a segment creation that a crash interrupted: they were
// never renamed into the log, so nothing in them was acknowledged.
func listSegments(dir string) ([]segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: read %s: %w", dir, err)
	}
	var segs []segment
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, segmentExt+tmpExt) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("wal: remove leftover %w", err)
			}
			continue
		}
		seq, first, ok := parseSegmentName(name)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		segs = append(segs, segment{seq: seq, first: first, path: filepath.Join(dir, name)})
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, fmt.Errorf("%w: %s: segment %d is missing (found %s after %s)",
				ErrCorrupt, dir, segs[i-1].seq+1, filepath.Base(segs[i].path), filepath.Base(segs[i-1].path))
		}
	}
	return segs, nil
}

// Exists reports whether dir holds a log: at least one segment file.
func Exists(dir string) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, de := range des {
		if _, _, ok := parseSegmentName(de.Name()); ok && de.Type().IsRegular() {
			return true
		}
	}
	return false
}

// headerRecord is the payload of a segment's first record. It repeats the
// state that records in older segments established, so that the segment can
// be read without them once they are released.
type headerRecord struct {
	version uint32
	seq     uint64
	first   uint64
	snap    []byte // encoded raftpb.SnapshotMetadata of the newest marker; empty if none
	hs      []byte // encoded raftpb.HardState last saved; empty if none
}

// appendHeader appends the encoded header to buf.
func appendHeader(buf []byte, h headerRecord) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, h.version)
	buf = binary.LittleEndian.AppendUint64(buf, h.seq)
	buf = binary.LittleEndian.AppendUint64(buf, h.first)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(h.snap)))
	buf = append(buf, h.snap...)
	return append(buf, h.hs...)
}

// parseHeader decodes a header payload. The returned slices alias data.
func parseHeader(data []byte) (headerRecord, error) {
	if len(data) < headerFixedSize {
		return headerRecord{}, fmt.Errorf("segment header of %d bytes is too short", len(data))
	}
	h := headerRecord{
		version: binary.LittleEndian.Uint32(data),
		seq:     binary.LittleEndian.Uint64(data[4:]),
		first:   binary.LittleEndian.Uint64(data[12:]),
	}
	if h.version != headerVersion {
		return headerRecord{}, fmt.Errorf("unsupported segment format version %d", h.version)
	}
	n := binary.LittleEndian.Uint32(data[20:])
	rest := data[headerFixedSize:]
	if uint64(n) > uint64(len(rest)) {
		return headerRecord{}, fmt.Errorf("segment header snapshot length %d exceeds record", n)
	}
	h.snap, h.hs = rest[:n], rest[n:]
	return h, nil
}

// createSegment makes segment seq durable with h as its header and returns it
// open for appending. The file is built under a temporary name and renamed
// into place only once its header is on disk, so a segment that carries its
// final name always has a readable header. The file is preallocated to size
// bytes so that later fdatasyncs need not update its length.
func createSegment(dir string, dirf *os.File, h headerRecord, size int64) (*os.File, segment, error) {
	seg := segment{seq: h.seq, first: h.first, path: filepath.Join(dir, segmentName(h.seq, h.first))}
	tmp := seg.path + tmpExt

	buf := beginFrame(nil, recHeader)
	buf = appendHeader(buf, h)
	buf, err := endFrame(buf, 0)
	if err != nil {
		return nil, segment{}, fmt.Errorf("wal: create %s: header: %w", seg.path, err)
	}
	sealFrames(buf, h.seq, 0)
	seg.bodyStart = int64(len(buf))

	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, segment{}, fmt.Errorf("wal: create segment: %w", err)
	}
	fail := func(err error) (*os.File, segment, error) {
		f.Close()
		os.Remove(tmp)
		return nil, segment{}, fmt.Errorf("wal: create %s: %w", seg.path, err)
	}
	if err := preallocate(f, max(size, int64(len(buf)))); err != nil {
		return fail(err)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return fail(err)
	}
	// A full fsync, not fdatasync: the file's size and extents are new.
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, seg.path); err != nil {
		return fail(err)
	}
	if err := dirf.Sync(); err != nil {
		// The rename may or may not survive a crash; either is a valid log,
		// but this process can no longer tell which, so it must stop.
		f.Close()
		return nil, segment{}, fmt.Errorf("wal: sync dir %s: %w", dir, err)
	}
	return f, seg, nil
}
