package storage

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

// testSplit models mvcc's layout: 'k' name 0x00 0x01 then an 8-byte
// version is a versioned key; everything else is all prefix.
func testSplit(k []byte) int {
	if n := len(k) - 8; n >= 3 && k[0] == 'k' && k[n-2] == 0 && k[n-1] == 1 {
		return n
	}
	return len(k)
}

// byPrefixThenSuffix is the order Pebble checks a comparer against.
func byPrefixThenSuffix(split func([]byte) int, a, b []byte) int {
	an, bn := split(a), split(b)
	if c := bytes.Compare(a[:an], b[:bn]); c != 0 {
		return c
	}
	return bytes.Compare(a[an:], b[bn:])
}

// Every separator and successor the comparer makes between real keys
// keeps its bytewise order equal to the order by (prefix, suffix) against
// every real key, and lies where Pebble needs it: a <= sep < b. With
// Pebble's default Separator this fails on two versions of one key (the
// separator is cut inside the version), which is what Pebble's invariant
// check caught under -race.
func TestSplitComparerSeparatorsKeepTheSplitOrder(t *testing.T) {
	cmp := splitComparer(testSplit)
	r := rand.New(rand.NewPCG(1, 2))
	var keys [][]byte
	names := []string{"a", "ab", "abc", "key/043", "key/044", "key/1", "z"}
	for _, name := range names {
		keys = append(keys, append([]byte{'k'}, name...))               // an upper bound
		keys = append(keys, append(append([]byte{'k'}, name...), 0, 1)) // a prefix seek
		keys = append(keys, append(append([]byte{'k'}, name...), 0, 2)) // keyNext
		for range 6 {
			k := append(append([]byte{'k'}, name...), 0, 1)
			keys = append(keys, binary.BigEndian.AppendUint64(k, ^r.Uint64N(1<<12)))
		}
	}
	keys = append(keys, []byte("l1"), []byte("m/applied"), []byte("r\x00\x00\x01"))
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal)
	for i, k := range keys[1:] {
		if c := byPrefixThenSuffix(testSplit, keys[i], k); c >= 0 {
			t.Fatalf("the test's own keys break the split order: %q then %q", keys[i], k)
		}
	}
	var made [][]byte
	for i := range len(keys) - 1 {
		a, b := keys[i], keys[i+1]
		sep := cmp.Separator(nil, a, b)
		if cmp.Compare(a, sep) > 0 || cmp.Compare(sep, b) >= 0 {
			t.Fatalf("Separator(%q, %q) = %q, not in [a, b)", a, b, sep)
		}
		made = append(made, sep, cmp.Successor(nil, a))
	}
	for _, m := range made {
		for _, k := range keys {
			if got, want := cmp.Compare(m, k), byPrefixThenSuffix(testSplit, m, k); got != want {
				t.Fatalf("Compare(%q, %q) = %d, but by prefix and suffix %d", m, k, got, want)
			}
		}
	}
}
