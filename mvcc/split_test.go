package mvcc

import (
	"bytes"
	"testing"
)

// SplitKey must satisfy the properties Pebble's Comparer.Split documents,
// under bytewise order, for every key the store writes or seeks to, or
// the engine could misorder keys. Checked over all pairs of a key set
// from every key space, with user keys containing the escape and
// terminator bytes themselves. (pebble.CheckComparer also demands that
// any tail of a prefix be a prefix, which holds for schemes that split
// on trailing bytes alone; SplitKey splits only 'k' keys, whose prefix
// starts with 'k', on purpose: other spaces hold raw user bytes.)
func TestSplitKeyFollowsPebblesRules(t *testing.T) {
	var keys [][]byte
	for _, user := range []string{"", "a", "a\x00", "a\x00\x01", "a\x01", "\x00\x01\x00", "\x00", "\xff", "b", "k", "zzzzzzzzzzzzzzzzzzzzzzzz"} {
		u := []byte(user)
		keys = append(keys, keyPrefix(u), keyBound(u), append(bytes.Clone(keyPrefix(u)[:len(keyPrefix(u))-1]), 2))
		for _, r := range []revision{{1, 0}, {1, 1}, {2, 0}, {1 << 40, 3}} {
			keys = append(keys, encodeKey(u, r))
		}
	}
	keys = append(keys, revKey(revision{main: 5}), revKey(revision{main: 1 << 50, sub: 2}), []byte("mrev"), []byte("mapplied"), []byte("l\x00\x00\x00\x00\x00\x00\x00\x07"))
	prefix := func(k []byte) []byte { return k[:SplitKey(k)] }
	for _, a := range keys {
		if len(prefix(a)) < len(a) && bytes.Compare(prefix(a), a) >= 0 {
			t.Errorf("rule 1: prefix of %q does not sort before it", a)
		}
		for _, b := range keys {
			c, pc := bytes.Compare(a, b), bytes.Compare(prefix(a), prefix(b))
			if c <= 0 && pc > 0 {
				t.Errorf("rule 2: %q <= %q but their prefixes are the other way", a, b)
			}
			if pc < 0 && c >= 0 {
				t.Errorf("rule 2: prefix(%q) < prefix(%q) but the keys are not", a, b)
			}
			if pc == 0 && c != bytes.Compare(a[len(prefix(a)):], b[len(prefix(b)):]) {
				t.Errorf("rule 3: %q and %q share a prefix but their suffixes order differently", a, b)
			}
		}
	}
	if k := encodeKey([]byte("abc"), revision{main: 7}); SplitKey(k) != len(keyPrefix([]byte("abc"))) {
		t.Errorf("SplitKey(%q) = %d, want the length of its prefix", k, SplitKey(k))
	}
}
