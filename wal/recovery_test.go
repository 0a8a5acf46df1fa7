package wal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// files is a log directory held in memory, so that each damage case starts
// from the same bytes.
type files map[string][]byte

func loadFiles(t testing.TB, dir string) files {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fs := files{}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fs[de.Name()] = b
	}
	return fs
}

// write puts the files into a fresh directory, after letting damage edit a
// copy of the named file's bytes; damage may return a shorter slice to
// truncate the file.
func (fs files) write(t testing.TB, name string, damage func([]byte) []byte) string {
	t.Helper()
	dir := t.TempDir()
	for n, b := range fs {
		if n == name && damage != nil {
			b = damage(bytes.Clone(b))
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// frameSpan is where one frame lies in a segment: [off, end) is its header,
// type and payload, without padding.
type frameSpan struct{ off, end int64 }

// frameSpans lists the valid frames of a segment image, header included.
func frameSpans(t testing.TB, img []byte, seq uint64) []frameSpan {
	t.Helper()
	var spans []frameSpan
	for off := int64(0); ; {
		_, data, next, st, reason := readFrame(img, seq, off)
		if st == frameBad {
			t.Fatalf("golden segment %d bad at %d: %s", seq, off, reason)
		}
		if st != frameOK {
			return spans
		}
		spans = append(spans, frameSpan{off, off + frameHeaderSize + 1 + int64(len(data))})
		off = next
	}
}

// logBuffer is a slog handler target safe for the race detector.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTornLastWriteIsTruncated(t *testing.T) {
	opts := Options{SegmentSize: 4096}
	golden := t.TempDir()
	w := mustOpen(t, golden, opts)
	r := newRecorder(t, w)
	for i := uint64(1); i <= 8; i++ {
		r.save(hardState(1, 1, i-1), ent(i, 1, fmt.Sprintf("entry-%d", i)))
	}
	before := len(r.prefixes) - 1 // index of the state before the last write
	tail := w.segs[len(w.segs)-1]
	// The last write holds three records: two entries and a hard state.
	r.save(hardState(1, 1, 8), ent(9, 1, "the last write"), ent(10, 1, "x"))
	mustClose(t, w)
	fs := loadFiles(t, golden)
	name := filepath.Base(tail.path)
	spans := frameSpans(t, fs[name], tail.seq)
	last := spans[len(spans)-3:]
	start, end := last[0].off, last[2].end

	// intact is the number of the last write's records wholly before cut.
	intact := func(cut int64) int {
		n := 0
		for _, s := range last {
			if s.end <= cut {
				n++
			}
		}
		return n
	}
	check := func(t *testing.T, dir string, want string, appendAfter bool) {
		t.Helper()
		var logs logBuffer
		opts := opts
		opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		w, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		snap, hs, ents, err := w.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got := stateKey(snap, hs, ents); got != want {
			t.Fatalf("read back\n got %s\nwant %s", got, want)
		}
		if !appendAfter {
			mustClose(t, w)
			return
		}
		// The repaired log takes new writes and reads them back.
		next := uint64(len(ents)) + 1
		if err := w.Save(hardState(2, 1, next-1), []*raftpb.Entry{ent(next, 2, "after repair")}); err != nil {
			t.Fatalf("Save after repair: %v", err)
		}
		mustClose(t, w)
		got, err := readBack(t, dir, opts)
		if err != nil {
			t.Fatalf("reopen after repair: %v", err)
		}
		if !strings.Contains(got, fmt.Sprintf(`[%d/2 "after repair"]`, next)) {
			t.Fatalf("appended entry missing after repair: %s", got)
		}
	}

	t.Run("zeroed from every offset", func(t *testing.T) {
		for cut := start; cut < end; cut++ {
			dir := fs.write(t, name, func(b []byte) []byte {
				clear(b[cut:end])
				return b
			})
			check(t, dir, r.prefixes[before+intact(cut)], cut%5 == 0)
		}
	})
	t.Run("truncated at every offset", func(t *testing.T) {
		for cut := start; cut < end; cut++ {
			dir := fs.write(t, name, func(b []byte) []byte { return b[:cut] })
			check(t, dir, r.prefixes[before+intact(cut)], cut%5 == 1)
		}
	})
	t.Run("every byte of the last record flipped", func(t *testing.T) {
		rec := last[2]
		for off := rec.off; off < rec.end; off++ {
			dir := fs.write(t, name, func(b []byte) []byte {
				b[off] ^= 0xff
				return b
			})
			check(t, dir, r.prefixes[before+2], off%5 == 2)
		}
	})
	t.Run("garbage after the end of data", func(t *testing.T) {
		dir := fs.write(t, name, func(b []byte) []byte {
			copy(b[end+100:], "torn sector from a write that never finished")
			return b
		})
		check(t, dir, r.prefixes[len(r.prefixes)-1], true)
	})
	t.Run("repair is logged and zeroes the tail", func(t *testing.T) {
		cut := start + 3
		dir := fs.write(t, name, func(b []byte) []byte {
			clear(b[cut:end])
			b[end-1] = 0x5a // a stray byte beyond the damage
			return b
		})
		var logs logBuffer
		o := opts
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		mustClose(t, mustOpen(t, dir, o))
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), name) {
			t.Fatalf("no warning naming the segment: %q", logs.String())
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !allZero(b[start:]) {
			t.Fatalf("torn bytes left after offset %d", start)
		}
	})
}

func TestCorruptionIsAnError(t *testing.T) {
	opts := Options{SegmentSize: 1024}
	golden := t.TempDir()
	w := mustOpen(t, golden, opts)
	r := newRecorder(t, w)
	for i := uint64(1); i <= 20; i++ {
		r.save(hardState(1, 1, i-1), ent(i, 1, strings.Repeat("v", 90)))
	}
	segs := append([]segment(nil), w.segs...)
	mustClose(t, w)
	if len(segs) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(segs))
	}
	fs := loadFiles(t, golden)
	lastSeg, midSeg := segs[len(segs)-1], segs[1]
	lastName, midName := filepath.Base(lastSeg.path), filepath.Base(midSeg.path)
	lastSpans := frameSpans(t, fs[lastName], lastSeg.seq)
	midSpans := frameSpans(t, fs[midName], midSeg.seq)
	if len(lastSpans) < 3 {
		t.Fatalf("last segment holds %d frames, want at least 3", len(lastSpans))
	}
	lastEnd := lastSpans[len(lastSpans)-1].end

	// forge writes a frame with a valid checksum at off of segment seq.
	forge := func(seq uint64, off int64, typ byte, payload []byte) func([]byte) []byte {
		return func(b []byte) []byte {
			buf := beginFrame(nil, typ)
			buf = append(buf, payload...)
			buf, err := endFrame(buf, 0)
			if err != nil {
				t.Fatal(err)
			}
			sealFrames(buf, seq, off)
			copy(b[off:], buf)
			return b
		}
	}
	flip := func(off int64) func([]byte) []byte {
		return func(b []byte) []byte { b[off] ^= 0x01; return b }
	}
	entryPayload := func(e *raftpb.Entry) []byte {
		b, err := appendMessage(nil, recEntry, e)
		if err != nil {
			t.Fatal(err)
		}
		return payload(b)
	}

	mid := lastSpans[1] // followed by further valid records
	for _, tc := range []struct {
		name   string
		file   string
		damage func([]byte) []byte
		offset int64 // of the reported record; -1 if the error is not about one record
		reason string
	}{
		{"flipped payload byte followed by valid records", lastName, flip(mid.end - 1), mid.off, "checksum mismatch"},
		{"flipped checksum followed by valid records", lastName, flip(mid.off + 5), mid.off, "checksum mismatch"},
		{"zeroed record followed by valid records", lastName, func(b []byte) []byte {
			clear(b[mid.off:mid.end])
			return b
		}, mid.off, "non-zero bytes after the end of data"},
		{"impossible length followed by valid records", lastName, flip(mid.off + 3), mid.off, "impossible length"},
		{"flipped byte in the last record of an older segment", midName, flip(midSpans[len(midSpans)-1].end - 1),
			midSpans[len(midSpans)-1].off, "checksum mismatch"},
		{"older segment cut short", midName, func(b []byte) []byte {
			return b[:midSpans[len(midSpans)-1].end-1]
		}, midSpans[len(midSpans)-1].off, "impossible length"},
		{"garbage after the data of an older segment", midName, func(b []byte) []byte {
			b[len(b)-1] = 1
			return b
		}, (midSpans[len(midSpans)-1].end + 7) &^ 7, "non-zero bytes"},
		{"damaged header of the last segment", lastName, flip(10), 0, "checksum mismatch"},
		{"header moved to another segment", lastName, func(b []byte) []byte {
			copy(b, fs[midName][:lastSpans[0].end])
			return b
		}, 0, "checksum mismatch"},
		{"unparseable entry at the tail", lastName, forge(lastSeg.seq, (lastEnd+7)&^7, recEntry, []byte{0x08, 0x80}),
			(lastEnd + 7) &^ 7, "unparseable entry"},
		{"unknown record type at the tail", lastName, forge(lastSeg.seq, (lastEnd+7)&^7, 9, []byte("x")),
			(lastEnd + 7) &^ 7, "unknown record type 9"},
		{"entry leaving a gap at the tail", lastName, forge(lastSeg.seq, (lastEnd+7)&^7, recEntry, entryPayload(ent(50, 1, ""))),
			(lastEnd + 7) &^ 7, "gap"},
		{"missing middle segment", midName, nil, -1, "segment 2 is missing"},
		{"missing first segment", filepath.Base(segs[0].path), nil, -1, "are missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dir string
			if tc.damage == nil {
				dir = fs.write(t, "", nil)
				if err := os.Remove(filepath.Join(dir, tc.file)); err != nil {
					t.Fatal(err)
				}
			} else {
				dir = fs.write(t, tc.file, tc.damage)
			}
			before, err := os.ReadFile(filepath.Join(dir, lastName))
			if err != nil {
				t.Fatal(err)
			}
			_, err = readBack(t, dir, opts)
			if err == nil {
				t.Fatal("Open succeeded on a corrupt log")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %q does not say %q", err, tc.reason)
			}
			if tc.offset >= 0 {
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("error %v is not a *CorruptError", err)
				}
				path := filepath.Join(dir, tc.file)
				want := fmt.Sprintf("wal: corrupt record in %s at offset %d: ", path, tc.offset)
				if !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("error %q, want it to start %q", err, want)
				}
			}
			// Open must not have repaired anything.
			after, err := os.ReadFile(filepath.Join(dir, lastName))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("failed Open modified the last segment")
			}
		})
	}
}
