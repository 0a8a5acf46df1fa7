package mvcc

import (
	"bytes"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// keyFilter is an in-memory Bloom filter of every user key the engine may
// hold a version of, so that a put of a new key (the common case of a
// bulk load, and of every create) skips the engine lookup of its newest
// version: without it, that lookup read every level's filter and index
// blocks, 60 % of a member's CPU while loading a million keys.
//
// It never forgets a key: the writer adds each key it puts, before the
// transaction commits, and a scan of the engine adds what was there
// before. The scan starts with the first put that has to look a key up
// (so a member that only serves reads after a restart never pays for
// it); until it has finished the filter is not ready and answers "maybe"
// for everything. A key that was
// deleted and compacted away stays in it, costing only a needless lookup;
// when the filter has grown through several doublings a new one is built
// by a fresh scan. About 10 bits a key: 1.2 MiB for a million keys.
type keyFilter struct {
	mu    sync.Mutex
	parts []*bloom // the newest takes additions; a key may be in any
	added int      // keys added since this filter was made
	ready atomic.Bool
	// scanning is set once its scan has been started (by the writer,
	// under Store.writeMu); stop ends the scan when the filter is
	// replaced.
	scanning bool
	stop     chan struct{}
}

// bloom is one fixed-size part of a keyFilter.
type bloom struct {
	bits []uint64
	cap  int // keys it is sized for
	n    int // keys added
}

const (
	bloomBitsPerKey = 10
	bloomProbes     = 7 // the best count for 10 bits a key: ~0.8% false positives
	// maxBloomParts makes the writer rebuild the filter from a scan once
	// it has doubled this many times (the false-positive rates of the
	// parts add up, and deleted keys accumulate).
	maxBloomParts = 6
)

// firstBloomKeys sizes a new filter's first part; each next one doubles.
// (A variable so that tests can make filters grow quickly.)
var firstBloomKeys = 1 << 16

var filterSeed = maphash.MakeSeed()

func hashPrefix(p []byte) uint64 { return maphash.Bytes(filterSeed, p) }

func newBloom(keys int) *bloom {
	return &bloom{bits: make([]uint64, (keys*bloomBitsPerKey+63)/64), cap: keys}
}

func (b *bloom) add(h uint64) {
	h1, h2 := h&0xffffffff, h>>32|1
	m := uint64(len(b.bits) * 64)
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) % m
		b.bits[bit/64] |= 1 << (bit % 64)
	}
	b.n++
}

func (b *bloom) has(h uint64) bool {
	h1, h2 := h&0xffffffff, h>>32|1
	m := uint64(len(b.bits) * 64)
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) % m
		if b.bits[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// newKeyFilter makes an empty filter, not ready, sized for about keys.
func newKeyFilter(keys int) *keyFilter {
	return &keyFilter{parts: []*bloom{newBloom(max(keys, firstBloomKeys))}, stop: make(chan struct{})}
}

// add records the key whose engine prefix hashes to h. It reports whether
// the filter has grown enough to be rebuilt.
func (f *keyFilter) add(h uint64) (rebuild bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// A key already in (or a false positive of) some part costs nothing
	// more: parts then fill with distinct keys, not with every put.
	for _, b := range f.parts {
		if b.has(h) {
			return false
		}
	}
	last := f.parts[len(f.parts)-1]
	if last.n >= last.cap {
		last = newBloom(2 * last.cap)
		f.parts = append(f.parts, last)
	}
	last.add(h)
	f.added++
	return len(f.parts) > maxBloomParts
}

// count is how many keys were added since the filter was made.
func (f *keyFilter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.added
}

// mayHold reports whether the engine may hold a version of the key whose
// prefix hashes to h.
func (f *keyFilter) mayHold(h uint64) bool {
	if !f.ready.Load() {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.parts {
		if b.has(h) {
			return true
		}
	}
	return false
}

// scanKeys adds every user key the engine holds a version of to f and
// then makes it ready. It stops early, leaving f not ready, when quit is
// closed or the engine fails (the filter then keeps answering "maybe").
func (s *Store) scanKeys(f *keyFilter, quit <-chan struct{}) {
	it, err := s.eng.NewIter([]byte{prefixKey}, []byte{prefixKey + 1})
	if err != nil {
		s.lg.Warn("mvcc: key filter scan failed; puts look every key up", "err", err)
		return
	}
	defer it.Close()
	var last []byte
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		p := k[:SplitKey(k)]
		if bytes.Equal(p, last) {
			continue
		}
		last = append(last[:0], p...)
		f.add(hashPrefix(p))
		if n++; n%4096 == 0 {
			select {
			case <-quit:
				return
			case <-f.stop:
				return
			default:
			}
		}
	}
	if err := it.Error(); err != nil {
		s.lg.Warn("mvcc: key filter scan failed; puts look every key up", "err", err)
		return
	}
	f.ready.Store(true)
}

// newKeys installs a new, not yet ready, filter sized for about keys; its
// scan starts with the next lookup (scanKeysOnce). The caller holds
// writeMu (or is Open).
func (s *Store) newKeys(keys int) {
	if s.keys != nil {
		close(s.keys.stop)
	}
	s.keys = newKeyFilter(keys)
}

// scanKeysOnce starts the current filter's scan in the background unless
// it has started. The caller holds writeMu.
func (s *Store) scanKeysOnce() {
	f := s.keys
	if f.scanning {
		return
	}
	f.scanning = true
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.scanKeys(f, s.quit)
	}()
}
