package mvcc

import (
	"context"
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// A view pinned below a later compaction must refuse to read, whatever
// revision the request names: its pinned revision may already be reclaimed.
// etcd treats every revision <= 0 as "the current one".
func TestReadViewBelowCompactionIsRefused(t *testing.T) {
	w := &writer{t: t, s: newStore(t)}
	w.put("a", "1") // rev 2
	view := w.s.ReadView()
	w.put("a", "2") // rev 3
	w.compact(3)    // "a"@2 is reclaimed
	for _, rev := range []int64{0, -1, 2} {
		rr, err := view.Range(context.Background(), &pb.RangeRequest{Key: []byte("a"), Revision: rev})
		if !errors.Is(err, ErrCompacted) {
			t.Errorf("view at 2, compacted at 3: Range(rev %d) = %v, %v; want ErrCompacted", rev, fmtResp(rr, err), err)
		}
	}
}

// Ranges with a limit report the total count and whether more keys exist;
// a sort on anything but the key ascending fetches everything first.
func TestRangeLimitCountAndSort(t *testing.T) {
	w := &writer{t: t, s: newStore(t)}
	w.put("a", "3") // rev 2
	w.put("b", "2") // rev 3
	w.put("c", "1") // rev 4
	w.put("a", "4") // rev 5: "a" has version 2
	for _, c := range []struct {
		name string
		req  *pb.RangeRequest
		want string
	}{
		{"limit", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Limit: 2},
			`hdr=5 count=3 more=true kvs=["a"(c2 m5 v2 l0 "4") "b"(c3 m3 v1 l0 "2")]`},
		{"limit equal to count", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Limit: 3},
			`hdr=5 count=3 more=false kvs=["a"(c2 m5 v2 l0 "4") "b"(c3 m3 v1 l0 "2") "c"(c4 m4 v1 l0 "1")]`},
		{"value descending with limit", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), Limit: 1,
			SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND},
			`hdr=5 count=3 more=true kvs=["a"(c2 m5 v2 l0 "4")]`},
		{"key descending", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), SortOrder: pb.RangeRequest_DESCEND, KeysOnly: true},
			`hdr=5 count=3 more=false kvs=["c"(c4 m4 v1 l0 "") "b"(c3 m3 v1 l0 "") "a"(c2 m5 v2 l0 "")]`},
		{"count only", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), CountOnly: true, Limit: 1},
			`hdr=5 count=3 more=false kvs=[]`},
		{"min mod revision", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), MinModRevision: 4},
			`hdr=5 count=3 more=false kvs=["a"(c2 m5 v2 l0 "4") "c"(c4 m4 v1 l0 "1")]`},
		{"max create revision", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), MaxCreateRevision: 2},
			`hdr=5 count=3 more=false kvs=["a"(c2 m5 v2 l0 "4")]`},
		{"past revision", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), Revision: 2},
			`hdr=5 count=1 more=false kvs=["a"(c2 m2 v1 l0 "3")]`},
		{"future revision", &pb.RangeRequest{Key: []byte("a"), Revision: 6}, "error: " + ErrFutureRev.Error()},
		{"empty range", &pb.RangeRequest{Key: []byte("c"), RangeEnd: []byte("a")}, `hdr=5 count=0 more=false kvs=[]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			rr, err := w.s.Range(context.Background(), c.req)
			if got := fmtResp(rr, err); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// Keys with 0x00 and 0xFF bytes, and keys that are prefixes of each other,
// keep byte order in every kind of range.
func TestRangeKeysWithSpecialBytes(t *testing.T) {
	w := &writer{t: t, s: newStore(t)}
	keys := []string{"\x00", "\x00\x00", "\x00\xff", "a", "a\x00", "a\x00\x00", "a\x00\x01", "a\x01", "a\xff", "a\xff\xff", "b", "\xff", "\xff\x00", "\xff\xff"}
	for i := len(keys) - 1; i >= 0; i-- {
		w.put(keys[i], "")
	}
	list := func(key, end string) string {
		var e []byte
		if end != "" {
			e = []byte(end)
		}
		rr, err := w.s.Range(context.Background(), &pb.RangeRequest{Key: []byte(key), RangeEnd: e, KeysOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, kv := range rr.Kvs {
			out += string(kv.Key) + "|"
		}
		return out
	}
	for _, c := range []struct{ key, end, want string }{
		{"\x00", "\x00", "\x00|\x00\x00|\x00\xff|a|a\x00|a\x00\x00|a\x00\x01|a\x01|a\xff|a\xff\xff|b|\xff|\xff\x00|\xff\xff|"},
		{"a", "b", "a|a\x00|a\x00\x00|a\x00\x01|a\x01|a\xff|a\xff\xff|"},
		{"a\x00", "a\x01", "a\x00|a\x00\x00|a\x00\x01|"},
		{"a\x00", "a\x00\x01", "a\x00|a\x00\x00|"},
		{"a\xff", "b", "a\xff|a\xff\xff|"},
		{"\xff", "\x00", "\xff|\xff\x00|\xff\xff|"},
		{"a\x00", "", "a\x00|"},
		{"a\x00\x02", "", ""},
		{"\x00", "\x00\x00", "\x00|"},
		{"\xff\x00", "\xff\xff", "\xff\x00|"},
	} {
		if got := list(c.key, c.end); got != c.want {
			t.Errorf("range [%q, %q) = %q, want %q", c.key, c.end, got, c.want)
		}
	}
}
