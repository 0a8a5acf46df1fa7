package auth

import (
	"bytes"
	"slices"

	"go.etcd.io/etcd/api/v3/authpb"
)

// A span is a half-open key interval [begin, end). An empty end is
// +infinity ("every key from begin on"), as in etcd's interval tree.
type span struct{ begin, end []byte }

// cmpEnd orders interval ends (and begins, with the same rule): an empty
// slice is greater than every key.
func cmpEnd(a, b []byte) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return 1
	case len(b) == 0:
		return -1
	}
	return bytes.Compare(a, b)
}

// spanSet is the union of a user's granted intervals of one kind (read or
// write), merged into disjoint spans sorted by begin: a check is a binary
// search, not a walk of every permission. The grants as given are kept
// too, for the one query merging cannot answer as etcd does (an inverted
// range).
type spanSet struct {
	merged []span
	raw    []span
}

// newSpanSet merges ss (touching spans merge, as etcd's interval tree
// treats them as contiguous).
func newSpanSet(ss []span) spanSet {
	slices.SortFunc(ss, func(a, b span) int { return bytes.Compare(a.begin, b.begin) })
	var out []span
	for _, s := range ss {
		if n := len(out); n > 0 && cmpEnd(out[n-1].end, s.begin) >= 0 {
			if cmpEnd(s.end, out[n-1].end) > 0 {
				out[n-1].end = s.end
			}
			continue
		}
		out = append(out, s)
	}
	return spanSet{merged: out, raw: ss}
}

// containing returns the span holding key, if any.
func (set spanSet) containing(key []byte) (span, bool) {
	// The last span whose begin is <= key.
	i, _ := slices.BinarySearchFunc(set.merged, key, func(s span, k []byte) int {
		if bytes.Compare(s.begin, k) <= 0 {
			return -1
		}
		return 1
	})
	if i == 0 {
		return span{}, false
	}
	s := set.merged[i-1]
	if cmpEnd(s.end, key) <= 0 {
		return span{}, false
	}
	return s, true
}

// allowsKey reports whether key is inside a granted span.
func (set spanSet) allowsKey(key []byte) bool {
	_, ok := set.containing(key)
	return ok
}

// allowsRange reports whether every key of [key, end) is granted; an end
// of "\x00" means every key from key on. As etcd's interval tree decides
// it for an inverted or empty range (end <= key), such a range is allowed
// when one grant begins before end and ends after key.
func (set spanSet) allowsRange(key, end []byte) bool {
	if isFromKey(end) {
		end = nil
	}
	if len(end) > 0 && bytes.Compare(end, key) <= 0 {
		return slices.ContainsFunc(set.raw, func(s span) bool {
			return bytes.Compare(s.begin, end) < 0 && cmpEnd(s.end, key) > 0
		})
	}
	s, ok := set.containing(key)
	return ok && cmpEnd(s.end, end) >= 0
}

func isFromKey(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// userPerms is what one user may read and write: the union of its roles'
// permissions.
type userPerms struct {
	read, write spanSet
}

// mergePerms unites the permissions of roles.
func mergePerms(roles []*authpb.Role) *userPerms {
	var read, write []span
	for _, r := range roles {
		for _, p := range r.KeyPermission {
			s := permSpan(p)
			switch p.PermType {
			case authpb.READWRITE:
				read, write = append(read, s), append(write, s)
			case authpb.READ:
				read = append(read, s)
			case authpb.WRITE:
				write = append(write, s)
			}
		}
	}
	return &userPerms{read: newSpanSet(read), write: newSpanSet(write)}
}

// permSpan is the interval a permission grants: one key when it has no
// range end, every key from Key on for "\x00".
func permSpan(p *authpb.Permission) span {
	switch {
	case len(p.RangeEnd) == 0:
		return span{begin: p.Key, end: append(slices.Clone(p.Key), 0)}
	case isFromKey(p.RangeEnd):
		return span{begin: p.Key}
	}
	return span{begin: p.Key, end: p.RangeEnd}
}

// validPermRange is etcd's rule for a granted range: a key, and no end,
// an end after it, or "\x00".
func validPermRange(key, end []byte) bool {
	if len(key) == 0 {
		return false
	}
	return len(end) == 0 || isFromKey(end) || bytes.Compare(key, end) < 0
}

// allows reports whether p permits typ on [key, end) (a single key when
// end is empty).
func (p *userPerms) allows(typ authpb.Permission_Type, key, end []byte) bool {
	set := p.read
	if typ == authpb.WRITE {
		set = p.write
	}
	if len(end) == 0 {
		return set.allowsKey(key)
	}
	return set.allowsRange(key, end)
}
