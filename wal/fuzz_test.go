package wal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
)

// fuzzGolden is a log with several segments, overwrites, snapshot markers and
// a released prefix, held in memory, together with every state a prefix of
// its records reads back as.
var fuzzGolden struct {
	once     sync.Once
	err      error
	opts     Options
	files    files
	names    []string // segment file names, in log order
	prefixes map[string]bool
	final    string
}

func loadFuzzGolden(t testing.TB) {
	g := &fuzzGolden
	g.once.Do(func() {
		g.opts = Options{SegmentSize: 1024}
		dir, err := os.MkdirTemp("", "wal-fuzz-golden")
		if err != nil {
			g.err = err
			return
		}
		defer os.RemoveAll(dir)
		w, err := Open(dir, g.opts)
		if err != nil {
			g.err = err
			return
		}
		r := newRecorder(t, w)
		rng := rand.New(rand.NewPCG(7, 7))
		r.workload(rng, 30)
		if err := w.ReleaseTo(r.snap); err != nil {
			g.err = err
			return
		}
		r.workload(rng, 15)
		if err := w.Close(); err != nil {
			g.err = err
			return
		}
		g.files = loadFiles(t, dir)
		for name := range g.files {
			g.names = append(g.names, name)
		}
		slices.Sort(g.names)
		g.prefixes = map[string]bool{}
		for _, p := range r.prefixes {
			g.prefixes[p] = true
		}
		g.final = r.m.key()
	})
	if g.err != nil {
		t.Fatalf("building golden log: %v", g.err)
	}
}

// FuzzWALRecovery damages one segment of a known log (overwriting bytes at an
// offset and optionally cutting the file short) and checks that Open never
// panics, and either reports corruption or reads back a state that some
// prefix of the written records produced. Whatever Open accepted, a second
// Open must read back identically: repair is idempotent.
func FuzzWALRecovery(f *testing.F) {
	f.Add(uint8(0), uint16(0), []byte{}, uint16(0))
	f.Add(uint8(255), uint16(300), []byte{0xff}, uint16(0))
	f.Add(uint8(255), uint16(200), []byte{0, 0, 0, 0, 0, 0, 0, 0}, uint16(0))
	f.Add(uint8(255), uint16(0), []byte{}, uint16(333))
	f.Add(uint8(1), uint16(120), []byte{0x01}, uint16(0))
	f.Add(uint8(2), uint16(900), []byte("garbage"), uint16(0))
	f.Add(uint8(0), uint16(4), []byte{0x13, 0x37}, uint16(0))
	f.Fuzz(func(t *testing.T, file uint8, off uint16, patch []byte, cut uint16) {
		loadFuzzGolden(t)
		g := &fuzzGolden
		name := g.names[int(file)%len(g.names)]
		orig := g.files[name]
		changed := false
		dir := g.files.write(t, name, func(b []byte) []byte {
			if len(b) > 0 {
				copy(b[int(off)%len(b):], patch)
			}
			if cut != 0 {
				b = b[:int(cut)%(len(b)+1)]
			}
			changed = !bytes.Equal(b, orig)
			return b
		})

		got, err := readBack(t, dir, g.opts)
		if err != nil {
			if !changed {
				t.Fatalf("Open failed on an undamaged log: %v", err)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("damage reported as %v, which does not match ErrCorrupt", err)
			}
			return
		}
		if !changed && got != g.final {
			t.Fatalf("undamaged log read back\n got %s\nwant %s", got, g.final)
		}
		if !g.prefixes[got] {
			t.Fatalf("read back a state no prefix of the log produced:\n%s", got)
		}
		again, err := readBack(t, dir, g.opts)
		if err != nil {
			t.Fatalf("second Open after a successful one: %v", err)
		}
		if again != got {
			t.Fatalf("second Open read back\n%s\nfirst read back\n%s", again, got)
		}
	})
}
