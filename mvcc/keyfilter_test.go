package mvcc

import (
	"fmt"
	"testing"
	"time"
)

func TestBloomHasEveryKeyAndFewOthers(t *testing.T) {
	f := newKeyFilter(0)
	f.ready.Store(true)
	const n = 300_000 // past the first part: the filter grows
	for i := range n {
		f.add(hashPrefix(keyPrefix(fmt.Appendf(nil, "key/%d", i))))
	}
	if len(f.parts) < 2 {
		t.Fatalf("%d keys in %d part(s); want the filter to have grown", n, len(f.parts))
	}
	for i := range n {
		if !f.mayHold(hashPrefix(keyPrefix(fmt.Appendf(nil, "key/%d", i)))) {
			t.Fatalf("key/%d added but not held", i)
		}
	}
	fp := 0
	for i := range n {
		if f.mayHold(hashPrefix(keyPrefix(fmt.Appendf(nil, "other/%d", i)))) {
			fp++
		}
	}
	// Each part is sized for ~0.8%; the rates of the parts add up.
	if rate := float64(fp) / n; rate > 0.04 {
		t.Fatalf("false-positive rate %.3f", rate)
	}
	g := newKeyFilter(0)
	if !g.mayHold(hashPrefix(keyPrefix([]byte("anything")))) {
		t.Fatal("a filter that is not ready must answer maybe")
	}
}

// waitKeyFilter starts the store's key filter scan, if no put has, and
// waits until it has finished.
func waitKeyFilter(t *testing.T, s *Store) {
	t.Helper()
	s.writeMu.Lock()
	s.scanKeysOnce()
	s.writeMu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.writeMu.Lock()
		ready := s.keys.ready.Load()
		s.writeMu.Unlock()
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("key filter scan did not finish")
		}
		time.Sleep(time.Millisecond)
	}
}

// A store opened on an engine that already holds keys learns them by its
// scan: once the filter is ready, a put to one of them still builds on
// its newest version.
func TestKeyFilterScanFindsExistingKeys(t *testing.T) {
	eng := newEngine(t)
	first, err := Open(eng, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	putN(t, first, 100, 1) // key/000..049, versions 1 and 2
	first.Close()

	s := openStore(t, eng)
	waitKeyFilter(t, s)
	for i := range 50 {
		tw := s.Write()
		prev, err := tw.Put(fmt.Appendf(nil, "key/%03d", i), []byte("x"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.End(uint64(1000 + i)); err != nil {
			t.Fatal(err)
		}
		if prev == nil || prev.Version != 2 {
			t.Fatalf("key/%03d after reopening: prev %v, want version 2", i, prev)
		}
	}
}

// When the filter has doubled maxBloomParts times, the writer replaces it
// by a freshly scanned one; puts stay right throughout.
func TestKeyFilterRebuild(t *testing.T) {
	defer func(n int) { firstBloomKeys = n }(firstBloomKeys)
	firstBloomKeys = 4
	s := newStore(t)
	waitKeyFilter(t, s)
	old := s.keys
	const keys = 600 // 4, 8, ..., 256: a seventh part past 508 keys
	for round := range 2 {
		for i := range keys {
			tw := s.Write()
			prev, err := tw.Put(fmt.Appendf(nil, "k%04d", i), []byte("v"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := tw.End(uint64(1 + round*keys + i)); err != nil {
				t.Fatal(err)
			}
			if (round == 0) != (prev == nil) {
				t.Fatalf("round %d, k%04d: prev %v", round, i, prev)
			}
		}
		if round == 0 {
			waitKeyFilter(t, s)
		}
	}
	s.writeMu.Lock()
	rebuilt := s.keys != old
	s.writeMu.Unlock()
	if !rebuilt {
		t.Fatal("the filter was never rebuilt")
	}
}

// Putting the same keys over and over does not grow the filter: it grows
// with distinct keys only.
func TestKeyFilterCountsDistinctKeys(t *testing.T) {
	f := newKeyFilter(0)
	for range 50 {
		for i := range 1000 {
			if f.add(hashPrefix(keyPrefix(fmt.Appendf(nil, "k%d", i)))) {
				t.Fatal("asked for a rebuild")
			}
		}
	}
	if n := f.count(); n > 1000 || len(f.parts) != 1 {
		t.Fatalf("50 puts each of 1,000 keys: %d keys counted, %d parts", n, len(f.parts))
	}
}
