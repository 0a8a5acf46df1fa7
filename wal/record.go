package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record types. The zero value is never written, so a zeroed type byte
// inside a frame whose checksum happens to match is still rejected.
const (
	recHeader    byte = 1 // first record of every segment; see headerRecord
	recEntry     byte = 2 // one raftpb.Entry
	recHardState byte = 3 // one raftpb.HardState
	recSnapshot  byte = 4 // one raftpb.SnapshotMetadata: the snapshot marker
)

const (
	frameHeaderSize = 8 // uint32 length + uint32 checksum
	frameAlign      = 8

	// maxFrameLen bounds the length field (type byte + payload). Save refuses
	// larger records, so a bigger value on disk is corruption, not data.
	maxFrameLen = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errRecordTooLarge is returned by Save for an entry that cannot be framed.
var errRecordTooLarge = errors.New("record larger than 1 GiB")

// frameSize is the number of bytes a frame with length field n occupies,
// padding included.
func frameSize(n uint32) int64 {
	return (frameHeaderSize + int64(n) + frameAlign - 1) &^ (frameAlign - 1)
}

// beginFrame appends the header placeholder and type byte of a new frame to
// buf. The payload is appended by the caller, then endFrame closes the frame.
// buf must hold only whole frames, so that len(buf) is frame-aligned.
func beginFrame(buf []byte, typ byte) []byte {
	return append(buf, 0, 0, 0, 0, 0, 0, 0, 0, typ)
}

// endFrame fills in the length of the frame that starts at start and pads it
// to the frame alignment. The checksum is filled in later by sealFrames, once
// the frame's position in the file is known. On error buf is cut back to start.
func endFrame(buf []byte, start int) ([]byte, error) {
	n := len(buf) - start - frameHeaderSize
	if n > maxFrameLen {
		return buf[:start], errRecordTooLarge
	}
	binary.LittleEndian.PutUint32(buf[start:], uint32(n))
	for len(buf)%frameAlign != 0 {
		buf = append(buf, 0)
	}
	return buf, nil
}

// sealFrames fills in the checksum of every frame in buf, which is about to be
// written at offset base of segment seq.
func sealFrames(buf []byte, seq uint64, base int64) {
	for p := 0; p < len(buf); {
		n := binary.LittleEndian.Uint32(buf[p:])
		body := buf[p+frameHeaderSize : p+frameHeaderSize+int(n)]
		binary.LittleEndian.PutUint32(buf[p+4:], frameCRC(seq, base+int64(p), body))
		p += int(frameSize(n))
	}
}

// frameCRC is the CRC32C of the frame body (type byte and payload), seeded
// with the segment sequence number and the frame's file offset. The seed ties
// a frame to the one place it was written: a frame copied to another offset or
// another segment (a misdirected write, a stale block) fails its check.
func frameCRC(seq uint64, off int64, body []byte) uint32 {
	return crc32.Update(positionCRC(seq, off), castagnoli, body)
}

// positionCRC is crc32.Update(0, castagnoli, b) for b the little-endian
// bytes of seq then off, computed a byte at a time: handing crc32 a slice of
// a local array would make the array escape, one allocation per frame.
func positionCRC(seq uint64, off int64) uint32 {
	crc := ^uint32(0)
	for _, v := range [2]uint64{seq, uint64(off)} {
		for range 8 {
			crc = castagnoli[byte(crc)^byte(v)] ^ crc>>8
			v >>= 8
		}
	}
	return ^crc
}

// frameStatus says what readFrame found at an offset.
type frameStatus int

const (
	frameOK  frameStatus = iota // a valid frame
	frameEnd                    // a zero length field: the end of written data
	frameBad                    // anything else; reason says what
)

// readFrame decodes the frame at off in img, the in-memory image of segment
// seq. On frameOK it returns the record type, the payload (aliasing img) and
// the offset of the next frame.
func readFrame(img []byte, seq uint64, off int64) (typ byte, data []byte, next int64, st frameStatus, reason string) {
	rest := int64(len(img)) - off
	if rest < frameHeaderSize {
		if rest <= 0 || allZero(img[off:]) {
			return 0, nil, off, frameEnd, ""
		}
		return 0, nil, off, frameBad, "truncated frame header"
	}
	n := binary.LittleEndian.Uint32(img[off:])
	if n == 0 {
		return 0, nil, off, frameEnd, ""
	}
	if n > maxFrameLen || int64(n) > rest-frameHeaderSize {
		return 0, nil, off, frameBad, fmt.Sprintf("impossible length %d", n)
	}
	body := img[off+frameHeaderSize : off+frameHeaderSize+int64(n)]
	if binary.LittleEndian.Uint32(img[off+4:]) != frameCRC(seq, off, body) {
		return 0, nil, off, frameBad, "checksum mismatch"
	}
	// next may lie past the end of img when only padding is missing (a
	// file cut short); it stays aligned all the same.
	return body[0], body[1:], off + frameSize(n), frameOK, ""
}

// findFrame returns the offset of the first valid frame at or after from, or
// -1 if there is none. It is how recovery tells a torn tail (nothing valid
// after the damage) from corruption (valid records after the damage). budget
// bounds the bytes checksummed, so that a segment full of garbage cannot stall
// Open; when it runs out findFrame returns errScanBudget, and recovery treats
// the tail as corrupt rather than truncate what it could not check.
func findFrame(img []byte, seq uint64, from int64, budget int64) (int64, error) {
	from = (from + frameAlign - 1) &^ (frameAlign - 1)
	for p := from; p+frameHeaderSize <= int64(len(img)); p += frameAlign {
		n := binary.LittleEndian.Uint32(img[p:])
		if n == 0 || n > maxFrameLen || int64(n) > int64(len(img))-p-frameHeaderSize {
			continue
		}
		if t := img[p+frameHeaderSize]; t < recHeader || t > recSnapshot {
			continue
		}
		if budget -= int64(n); budget < 0 {
			return -1, errScanBudget
		}
		if binary.LittleEndian.Uint32(img[p+4:]) == frameCRC(seq, p, img[p+frameHeaderSize:p+frameHeaderSize+int64(n)]) {
			return p, nil
		}
	}
	return -1, nil
}

var errScanBudget = errors.New("too much damaged data after it to check")

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	return lastNonZero(b) < 0
}

// lastNonZero returns the index of the last non-zero byte in b, or -1.
func lastNonZero(b []byte) int {
	// Compare eight bytes at a time; segments are mostly preallocated zeros.
	i := len(b)
	for i%8 != 0 {
		i--
		if b[i] != 0 {
			return i
		}
	}
	for ; i >= 8; i -= 8 {
		if binary.LittleEndian.Uint64(b[i-8:]) != 0 {
			for j := i - 1; ; j-- {
				if b[j] != 0 {
					return j
				}
			}
		}
	}
	return -1
}

// ErrCorrupt is matched (with errors.Is) by every error Open returns because
// the log's bytes are damaged.
var ErrCorrupt = errors.New("wal: corrupt log")

// CorruptError reports damage that recovery must not repair: it names the
// segment file and the byte offset of the first bad record.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt record in %s at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
