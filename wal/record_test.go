package wal

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

func TestPositionCRCMatchesCRC32C(t *testing.T) {
	for _, tc := range []struct {
		seq uint64
		off int64
	}{{0, 0}, {1, 0}, {1, 8}, {0xdeadbeef, 1 << 40}, {^uint64(0), 1<<63 - 1}} {
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], tc.seq)
		binary.LittleEndian.PutUint64(b[8:], uint64(tc.off))
		if got, want := positionCRC(tc.seq, tc.off), crc32.Update(0, castagnoli, b[:]); got != want {
			t.Errorf("positionCRC(%d, %d) = %#x, want %#x", tc.seq, tc.off, got, want)
		}
	}
}

func TestFramesAreAlignedAndChecked(t *testing.T) {
	var buf []byte
	for _, payload := range []string{"", "a", "1234567", "12345678", "a longer payload of some bytes"} {
		start := len(buf)
		buf = append(beginFrame(buf, recEntry), payload...)
		var err error
		if buf, err = endFrame(buf, start); err != nil {
			t.Fatal(err)
		}
		if len(buf)%frameAlign != 0 {
			t.Fatalf("frame for %q leaves buffer at %d bytes, not aligned", payload, len(buf))
		}
	}
	sealFrames(buf, 3, 64)
	img := append(make([]byte, 64), buf...)
	img = append(img, make([]byte, 40)...)
	off := int64(64)
	for _, want := range []string{"", "a", "1234567", "12345678", "a longer payload of some bytes"} {
		typ, data, next, st, reason := readFrame(img, 3, off)
		if st != frameOK || typ != recEntry || string(data) != want {
			t.Fatalf("frame at %d: %v %q %q %s", off, st, typ, data, reason)
		}
		off = next
	}
	if _, _, _, st, _ := readFrame(img, 3, off); st != frameEnd {
		t.Fatalf("after the frames: status %v, want end of data", st)
	}
	// The same bytes are not valid in another segment or at another offset.
	if _, _, _, st, reason := readFrame(img, 4, 64); st != frameBad || reason != "checksum mismatch" {
		t.Fatalf("frame read as segment 4: %v %s", st, reason)
	}
	if _, _, _, st, _ := readFrame(append(make([]byte, 8), img...), 3, 72); st != frameBad {
		t.Fatalf("frame read at a shifted offset: %v", st)
	}
}

func TestLastNonZero(t *testing.T) {
	for _, tc := range []struct {
		n, set int
	}{{0, -1}, {1, -1}, {1, 0}, {7, 6}, {8, 0}, {9, 8}, {64, 3}, {64, 63}, {100, 50}, {100, -1}} {
		b := make([]byte, tc.n)
		if tc.set >= 0 {
			b[tc.set] = 1
		}
		if got := lastNonZero(b); got != tc.set {
			t.Errorf("lastNonZero(len %d, set %d) = %d", tc.n, tc.set, got)
		}
	}
}

func TestFindFrameGivesUpWithinBudget(t *testing.T) {
	// Garbage in which every aligned word looks like the start of a frame:
	// length 0x102, whose low byte, read as the type of the frame before,
	// is recEntry.
	img := make([]byte, 4096)
	for p := 0; p < len(img); p += frameAlign {
		binary.LittleEndian.PutUint32(img[p:], 0x100|uint32(recEntry))
	}
	if p, err := findFrame(img, 1, 0, 1<<20); p != -1 || err != nil {
		t.Fatalf("findFrame in garbage = %d, %v; want -1, nil", p, err)
	}
	if _, err := findFrame(img, 1, 0, 1000); err != errScanBudget {
		t.Fatalf("findFrame with a small budget: %v, want errScanBudget", err)
	}
}
