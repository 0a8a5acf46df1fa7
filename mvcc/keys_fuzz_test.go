package mvcc

import (
	"bytes"
	"math"
	"testing"
)

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

// inBounds reports whether engine key k falls in [lower, upper).
func inBounds(k, lower, upper []byte) bool {
	return bytes.Compare(k, lower) >= 0 && bytes.Compare(k, upper) < 0
}

// FuzzKeyEncoding checks the invariants keys.go states: encodeKey and
// decodeKey are inverse; engine order is user-key order, then newest
// revision first; bounds(key, end) holds every version of exactly the user
// keys etcd's range rule selects; decodeKey never panics and accepts only
// canonical encodings.
func FuzzKeyEncoding(f *testing.F) {
	f.Add([]byte("a"), []byte("b"), int64(2), int64(0), int64(3), int64(1), uint8(0))
	f.Add([]byte("a"), []byte("a\x00"), int64(5), int64(0), int64(5), int64(1), uint8(1))
	f.Add([]byte("a\x00"), []byte("a\x00\x00"), int64(1), int64(0), int64(1), int64(0), uint8(2))
	f.Add([]byte("a\xff"), []byte("a\xff\x00"), int64(7), int64(2), int64(1), int64(0), uint8(3))
	f.Add([]byte("\x00"), []byte("\xff"), int64(math.MaxInt64), int64(math.MaxInt64), int64(0), int64(0), uint8(4))
	f.Add([]byte{}, []byte("\x00\x01"), int64(1), int64(1), int64(2), int64(2), uint8(5))
	f.Add([]byte("\x00\xff"), []byte("\x00\x00\x01"), int64(3), int64(0), int64(3), int64(0), uint8(6))
	f.Add([]byte("k\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), []byte("\xff\xff"), int64(9), int64(9), int64(9), int64(8), uint8(7))
	f.Fuzz(func(t *testing.T, a, b []byte, m1, s1, m2, s2 int64, mode uint8) {
		// Revisions are never negative.
		r1 := revision{main: m1 & math.MaxInt64, sub: s1 & math.MaxInt64}
		r2 := revision{main: m2 & math.MaxInt64, sub: s2 & math.MaxInt64}
		ka, kb := encodeKey(a, r1), encodeKey(b, r2)

		// Round trip.
		user, rev, err := decodeKey(nil, ka)
		if err != nil || !bytes.Equal(user, a) || rev != r1 {
			t.Fatalf("decodeKey(encodeKey(%q, %v)) = %q, %v, %v", a, r1, user, rev, err)
		}
		if pl := prefixLen(ka); !bytes.Equal(ka[:pl], keyPrefix(a)) {
			t.Fatalf("prefixLen(encodeKey(%q)) = %d, keyPrefix has %d bytes", a, pl, len(keyPrefix(a)))
		}

		// Order.
		got := sign(bytes.Compare(ka, kb))
		if c := bytes.Compare(a, b); c != 0 {
			if got != sign(c) {
				t.Fatalf("user keys %q vs %q compare %d but engine keys compare %d", a, b, c, got)
			}
		} else {
			want := 0 // newer revision first
			switch {
			case r1.main != r2.main:
				want = -sign(cmpI64(r1.main, r2.main))
			case r1.sub != r2.sub:
				want = -sign(cmpI64(r1.sub, r2.sub))
			}
			if got != want {
				t.Fatalf("%q at %v vs %v: engine keys compare %d, want %d", a, r1, r2, got, want)
			}
		}

		// Every version of a user key lies in [keyPrefix, keyNext), and no
		// version of another key does.
		for _, u := range [][]byte{a, b} {
			k := encodeKey(u, r1)
			if !inBounds(k, keyPrefix(u), keyNext(u)) {
				t.Fatalf("encodeKey(%q) outside [keyPrefix, keyNext)", u)
			}
		}
		if !bytes.Equal(a, b) && inBounds(kb, keyPrefix(a), keyNext(a)) {
			t.Fatalf("version of %q inside the bounds of %q", b, a)
		}

		// bounds follows etcd's (key, range_end) rule for every user key
		// near the inputs.
		key := a
		var end []byte
		switch mode % 4 {
		case 1:
			end = []byte{0}
		case 2:
			end = b
		case 3:
			end = prefixEnd(a)
		}
		lower, upper := bounds(key, end)
		candidates := [][]byte{a, b, append(bytes.Clone(a), 0), append(bytes.Clone(b), 0), append(bytes.Clone(a), 0xff), {}}
		if len(a) > 0 {
			candidates = append(candidates, a[:len(a)-1])
		}
		if len(b) > 0 {
			candidates = append(candidates, b[:len(b)-1])
		}
		for _, u := range candidates {
			for _, r := range []revision{r1, r2, {}, {math.MaxInt64, math.MaxInt64}} {
				in := bytes.Compare(lower, upper) < 0 && inBounds(encodeKey(u, r), lower, upper)
				if want := inRange(u, key, end); in != want {
					t.Fatalf("bounds(%q, %q) holds %q@%v = %v, etcd's rule says %v", key, end, u, r, in, want)
				}
			}
		}

		// Arbitrary bytes as an engine key: no panic, and whatever decodes
		// re-encodes to the same bytes.
		for _, raw := range [][]byte{a, b, append([]byte{prefixKey}, a...)} {
			if user, rev, err := decodeKey(nil, raw); err == nil {
				if re := encodeKey(user, rev); !bytes.Equal(re, raw) {
					t.Fatalf("decodeKey(%x) = %q, %v, which encodes as %x", raw, user, rev, re)
				}
			}
			if rev, err := decodeRevKey(raw); err == nil && !bytes.Equal(revKey(rev), raw) {
				t.Fatalf("decodeRevKey(%x) = %v, which encodes as %x", raw, rev, revKey(rev))
			}
		}
		if rev, err := decodeRevKey(revKey(r1)); err != nil || rev != r1 {
			t.Fatalf("decodeRevKey(revKey(%v)) = %v, %v", r1, rev, err)
		}
		if sign(bytes.Compare(revKey(r1), revKey(r2))) != compareRev(r1, r2) {
			t.Fatalf("revKey order of %v, %v is not revision order", r1, r2)
		}
	})
}

func compareRev(a, b revision) int {
	if c := cmpI64(a.main, b.main); c != 0 {
		return c
	}
	return cmpI64(a.sub, b.sub)
}

// FuzzDecodeValue feeds arbitrary bytes to decodeValue, which reads engine
// values: it must never panic, and every record must survive encoding.
func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte{}, false, int64(0), int64(0), int64(0))
	f.Add([]byte{0, 2, 1, 0, 'v'}, false, int64(2), int64(1), int64(0))
	f.Add([]byte{1, 0, 0, 0}, true, int64(0), int64(0), int64(-1))
	f.Add([]byte{2}, false, int64(math.MaxInt64), int64(1), int64(math.MinInt64))
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, false, int64(-1), int64(-1), int64(7))
	f.Add([]byte{0, 0x80}, false, int64(1), int64(1), int64(1))
	f.Fuzz(func(t *testing.T, v []byte, tomb bool, create, version, lease int64) {
		if rec, err := decodeValue(v); err == nil {
			// A decoded record re-encodes to something that decodes the same.
			again, err := decodeValue(encodeValue(rec))
			if err != nil || again.tombstone != rec.tombstone || again.create != rec.create ||
				again.version != rec.version || again.lease != rec.lease || !bytes.Equal(again.value, rec.value) {
				t.Fatalf("decodeValue(%x) = %+v; re-encoded it decodes as %+v, %v", v, rec, again, err)
			}
		}
		rec := record{tombstone: tomb, create: create, version: version, lease: lease, value: v}
		got, err := decodeValue(encodeValue(rec))
		if err != nil || got.tombstone != tomb || got.create != create || got.version != version ||
			got.lease != lease || !bytes.Equal(got.value, v) {
			t.Fatalf("decodeValue(encodeValue(%+v)) = %+v, %v", rec, got, err)
		}
	})
}
