package auth

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"

	"github.com/cairnkv/cairn/storage"
)

// etcdContains is etcd's interval-tree rule, written out over unmerged
// intervals: visit, in begin order, every granted interval overlapping
// [key, end); they must chain without a gap and cover it. It is the model
// the merged spanSet must agree with.
func etcdContains(spans []span, key, end []byte) bool {
	ivl := span{key, end}
	var vis []span
	for _, s := range spans {
		// etcd's Interval.Compare: s is left of ivl, right of it, or
		// overlapping.
		left := cmpEnd(s.begin, ivl.begin) < 0 && cmpEnd(s.end, ivl.begin) <= 0
		right := cmpEnd(s.begin, ivl.end) >= 0
		if !left && !right {
			vis = append(vis, s)
		}
	}
	slices.SortStableFunc(vis, func(a, b span) int { return cmpEnd(a.begin, b.begin) })
	if len(vis) == 0 {
		return false
	}
	minBegin, maxEnd := vis[0].begin, vis[0].end
	for _, s := range vis[1:] {
		if cmpEnd(maxEnd, s.begin) < 0 {
			return false
		}
		if cmpEnd(s.end, maxEnd) > 0 {
			maxEnd = s.end
		}
	}
	return cmpEnd(maxEnd, ivl.end) >= 0 && cmpEnd(minBegin, ivl.begin) <= 0
}

// etcdIntersects is etcd's point check: some interval overlaps
// [key, key+"\x00").
func etcdIntersects(spans []span, key []byte) bool {
	pt := span{key, append(slices.Clone(key), 0)}
	return slices.ContainsFunc(spans, func(s span) bool {
		left := cmpEnd(s.begin, pt.begin) < 0 && cmpEnd(s.end, pt.begin) <= 0
		right := cmpEnd(s.begin, pt.end) >= 0
		return !left && !right
	})
}

func TestSpanSetCases(t *testing.T) {
	roles := []*authpb.Role{{Name: []byte("r"), KeyPermission: []*authpb.Permission{
		{PermType: authpb.READ, Key: []byte("k1")},
		{PermType: authpb.READ, Key: []byte("a"), RangeEnd: []byte("c")},
		{PermType: authpb.READWRITE, Key: []byte("c"), RangeEnd: []byte("e")},
		{PermType: authpb.WRITE, Key: []byte("z"), RangeEnd: []byte{0}},
	}}}
	p := mergePerms(roles)
	for _, c := range []struct {
		typ      authpb.Permission_Type
		key, end string
		want     bool
	}{
		{authpb.READ, "k1", "", true},
		{authpb.READ, "k10", "", false},
		{authpb.READ, "k1", "k1\x00", true},
		{authpb.READ, "k1", "k2", false},
		{authpb.READ, "a", "e", true}, // touching grants
		{authpb.READ, "b", "d", true},
		{authpb.READ, "a", "f", false},
		{authpb.WRITE, "a", "e", false},
		{authpb.WRITE, "c", "e", true},
		{authpb.WRITE, "z", "\x00", true},
		{authpb.WRITE, "zzz", "", true},
		{authpb.WRITE, "y", "\x00", false},
		{authpb.READ, "z", "\x00", false},
		{authpb.READ, "d", "b", false}, // inverted: no one grant both begins before b and ends after d
		{authpb.READ, "d", "d", true},  // empty: [c, e) begins before d and ends after it
		{authpb.READ, "d", "c", false},
	} {
		if got := p.allows(c.typ, []byte(c.key), []byte(c.end)); got != c.want {
			t.Errorf("%v [%q, %q): got %v, want %v", c.typ, c.key, c.end, got, c.want)
		}
	}
}

// FuzzSpanSet: the merged spans answer every query as etcd's interval
// tree would.
func FuzzSpanSet(f *testing.F) {
	f.Add([]byte("a\x00c\x01c\x00e\x01"), []byte("a"), []byte("e"))
	f.Add([]byte("k1\x01"), []byte("k1"), []byte(""))
	f.Add([]byte("z\x00\x00\x01"), []byte("zz"), []byte("\x00"))
	f.Fuzz(func(t *testing.T, grants, key, end []byte) {
		// grants: "begin\x00end\x01" records; an empty end is one key,
		// "\x00" as end is from-key.
		var perms []*authpb.Permission
		for _, rec := range bytes.Split(grants, []byte{1}) {
			b, e, _ := bytes.Cut(rec, []byte{0})
			if len(rec) > len(b) && len(e) == 0 {
				e = []byte{0}
			}
			if !validPermRange(b, e) || len(perms) > 16 {
				continue
			}
			perms = append(perms, &authpb.Permission{PermType: authpb.READ, Key: b, RangeEnd: e})
		}
		if len(key) == 0 {
			return // requests always have a key
		}
		var spans []span
		for _, p := range perms {
			spans = append(spans, permSpan(p))
		}
		set := mergePerms([]*authpb.Role{{KeyPermission: perms}})
		var want bool
		if len(end) == 0 {
			want = etcdIntersects(spans, key)
		} else {
			qe := end
			if isFromKey(qe) {
				qe = nil
			}
			want = etcdContains(spans, key, qe)
		}
		if got := set.allows(authpb.READ, key, end); got != want {
			t.Fatalf("grants %q, query [%q, %q): got %v, etcd %v", grants, key, end, got, want)
		}
	})
}

// FuzzTokens: no token string makes a provider panic or resolve a user
// it did not issue.
func FuzzTokens(f *testing.F) {
	f.Add("AbCdEfGhIjKlMnOp.7")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.x")
	f.Add(".1")
	st := NewSimpleTokens(0, nil).(*simpleTokens)
	st.enable()
	issued, err := st.assign("alice", 1, "AbCdEfGhIjKlMnOp", 7)
	if err != nil {
		f.Fatal(err)
	}
	jt, err := NewJWTTokens("sign-method=HS256,priv-key=/dev/null")
	if err == nil {
		f.Fatal("an empty HMAC key was accepted")
	}
	_ = jt
	f.Fuzz(func(t *testing.T, tok string) {
		user, _, ok := st.info(context.Background(), tok)
		if ok && (tok != issued || user != "alice") {
			t.Fatalf("token %q resolved to %q", tok, user)
		}
	})
}

// TestPasswordChecksQueue: with every hash slot taken, a password check
// waits for one (and gives up with its context) rather than running.
func TestPasswordChecksQueue(t *testing.T) {
	eng := newTestEngine(t)
	s, err := Load(eng, Options{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.enabled = true
	s.users = map[string]*authpb.User{"u": {Name: []byte("u"), Password: []byte("x")}}
	s.mu.Unlock()
	for range cap(hashSlots) {
		hashSlots <- struct{}{}
	}
	defer func() {
		for range cap(hashSlots) {
			<-hashSlots
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.CheckPassword(ctx, "u", "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("check with no free slot: %v, want to wait until its deadline", err)
	}
}

func newTestEngine(t testing.TB) storage.Engine {
	t.Helper()
	eng, err := storage.OpenPebble(t.TempDir(), storage.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}
