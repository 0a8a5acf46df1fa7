package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Key layout. Every engine key starts with a one-byte prefix naming its space:
//
//	'k' esc(userKey) 0x00 0x01 ^main(8) ^sub(8)  -> kv record (see encodeValue)
//	'r' main(8) sub(8)                           -> userKey (the revision log)
//	'm' name                                      -> metadata (applied index, compaction state)
//	'l' ...                                       -> owned by package lease
//
// The 'k' space keeps every version of a user key next to each other, the
// newest first (revisions are stored inverted), so a range at revision R
// is one forward scan that, per user key, seeks to the first version <= R
// and then seeks past the key. Nothing about the key space has to be held
// in memory, and a range reads only the keys it returns (plus old versions
// skipped by a seek).
//
// esc doubles as an order-preserving terminator: each 0x00 byte of the user
// key becomes 0x00 0xFF and the key ends with 0x00 0x01. For user keys a < b
// (bytewise), 'k'esc(a)... < 'k'esc(b)... for any suffixes, so byte order of
// engine keys is byte order of user keys, and 'k'esc(end) (without the
// terminator) is an exclusive upper bound for the range [key, end).
//
// The 'r' space lists revisions in order, pointing at the user key that
// changed; watch replay and compaction walk it.
const (
	prefixKey  = 'k'
	prefixRev  = 'r'
	prefixMeta = 'm'

	suffixLen = 16
)

// SplitKey is the storage.PebbleOptions.Split for the store's engine: a
// 'k' key's prefix is 'k' esc(userKey) 0x00 0x01, and its revision the
// suffix, so that the lookup of a key's newest version (a prefix seek)
// skips, by bloom filter, the engine tables that never held the key.
// Every other key is all prefix. The terminator 0x00 0x01 never occurs
// inside esc(userKey) (a 0x00 there is always followed by 0xFF), so a 'k'
// key has a suffix exactly when the two bytes before its last suffixLen
// are the terminator; keyPrefix(user) itself (no revision) is all prefix.
func SplitKey(k []byte) int {
	if n := len(k) - suffixLen; n >= 3 && k[0] == prefixKey && k[n-2] == 0 && k[n-1] == 1 {
		return n
	}
	return len(k)
}

// revision is a (main, sub) pair: main counts write transactions, sub the
// changes within one.
type revision struct {
	main int64
	sub  int64
}

// appendEscaped appends esc(user) without the terminator.
func appendEscaped(dst, user []byte) []byte {
	for _, c := range user {
		if c == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// keyPrefix is 'k' esc(user) 0x00 0x01: the common prefix of all versions of user.
func keyPrefix(user []byte) []byte {
	b := make([]byte, 0, len(user)+3+suffixLen)
	b = append(b, prefixKey)
	b = appendEscaped(b, user)
	return append(b, 0, 1)
}

// keyBound is 'k' esc(user): the exclusive upper bound for user keys < user.
func keyBound(user []byte) []byte {
	b := make([]byte, 0, len(user)+1)
	b = append(b, prefixKey)
	return appendEscaped(b, user)
}

// keyNext is the smallest engine key past every version of user.
func keyNext(user []byte) []byte {
	b := make([]byte, 0, len(user)+3)
	b = append(b, prefixKey)
	b = appendEscaped(b, user)
	return append(b, 0, 2)
}

// appendRevInverted appends ^main ^sub so that newer revisions sort first.
func appendRevInverted(dst []byte, rev revision) []byte {
	dst = binary.BigEndian.AppendUint64(dst, ^uint64(rev.main))
	return binary.BigEndian.AppendUint64(dst, ^uint64(rev.sub))
}

// encodeKey is the engine key of user at rev.
func encodeKey(user []byte, rev revision) []byte {
	return appendRevInverted(keyPrefix(user), rev)
}

var errBadKey = errors.New("mvcc: malformed engine key")

// decodeKey splits an engine key of the 'k' space into the user key
// (appended to dst) and its revision.
func decodeKey(dst, k []byte) ([]byte, revision, error) {
	if len(k) < 1+2+suffixLen || k[0] != prefixKey {
		return dst, revision{}, errBadKey
	}
	body := k[1 : len(k)-suffixLen]
	if body[len(body)-2] != 0 || body[len(body)-1] != 1 {
		return dst, revision{}, errBadKey
	}
	body = body[:len(body)-2]
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == 0 {
			if i+1 >= len(body) || body[i+1] != 0xFF {
				return dst, revision{}, errBadKey
			}
			i++
		}
		dst = append(dst, c)
	}
	s := k[len(k)-suffixLen:]
	rev := revision{
		main: int64(^binary.BigEndian.Uint64(s[:8])),
		sub:  int64(^binary.BigEndian.Uint64(s[8:])),
	}
	return dst, rev, nil
}

// prefixLen returns the length of the 'k'esc(user)0x00 0x01 part of an
// engine key, so two versions of one user key can be compared cheaply.
func prefixLen(k []byte) int { return len(k) - suffixLen }

// revKey is the engine key of rev in the 'r' space.
func revKey(rev revision) []byte {
	b := make([]byte, 0, 1+suffixLen)
	b = append(b, prefixRev)
	b = binary.BigEndian.AppendUint64(b, uint64(rev.main))
	return binary.BigEndian.AppendUint64(b, uint64(rev.sub))
}

func decodeRevKey(k []byte) (revision, error) {
	if len(k) != 1+suffixLen || k[0] != prefixRev {
		return revision{}, fmt.Errorf("mvcc: malformed revision key %x", k)
	}
	return revision{
		main: int64(binary.BigEndian.Uint64(k[1:9])),
		sub:  int64(binary.BigEndian.Uint64(k[9:])),
	}, nil
}

// record is what the 'k' space stores for one version of a key.
type record struct {
	tombstone bool
	create    int64
	version   int64
	lease     int64
	value     []byte
}

// encodeValue: flags(1) uvarint(create) uvarint(version) varint(lease) value.
func encodeValue(r record) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(r.value))
	var flags byte
	if r.tombstone {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(r.create))
	b = binary.AppendUvarint(b, uint64(r.version))
	b = binary.AppendVarint(b, r.lease)
	return append(b, r.value...)
}

var errBadValue = errors.New("mvcc: malformed value record")

// decodeValue parses v; the value slice aliases v.
func decodeValue(v []byte) (record, error) {
	var r record
	if len(v) < 1 || v[0] > 1 {
		return r, errBadValue
	}
	r.tombstone = v[0] == 1
	v = v[1:]
	c, n := binary.Uvarint(v)
	if n <= 0 {
		return r, errBadValue
	}
	v = v[n:]
	ver, n := binary.Uvarint(v)
	if n <= 0 {
		return r, errBadValue
	}
	v = v[n:]
	l, n := binary.Varint(v)
	if n <= 0 {
		return r, errBadValue
	}
	r.create, r.version, r.lease, r.value = int64(c), int64(ver), l, v[n:]
	return r, nil
}
