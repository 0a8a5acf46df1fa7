package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
	"unicode/utf8"
)

// line is the version-1 schema as a Go struct: the model the hand-written
// encoder is checked against. Field order and omitempty are the schema.
type line struct {
	V         int     `json:"v"`
	Time      string  `json:"time"`
	Member    string  `json:"member"`
	User      string  `json:"user,omitempty"`
	Remote    string  `json:"remote,omitempty"`
	Method    string  `json:"method"`
	Key       string  `json:"key,omitempty"`
	RangeEnd  string  `json:"range_end,omitempty"`
	Revision  int64   `json:"revision,omitempty"`
	Code      string  `json:"code"`
	Error     string  `json:"error,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	Read      bool    `json:"read,omitempty"`
}

type eventLine struct {
	V      int    `json:"v"`
	Time   string `json:"time"`
	Member string `json:"member"`
	Event  string `json:"event"`
	Count  uint64 `json:"count"`
}

// modelEncode is what encoding/json writes for e.
func modelEncode(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func modelLine(e Entry, member string) line {
	if e.Member != "" {
		member = e.Member
	}
	return line{
		V: Version, Time: e.Time.UTC().Format(time.RFC3339Nano), Member: member,
		User: e.User, Remote: e.Remote, Method: e.Method,
		Key: EscapeKey(e.Key), RangeEnd: EscapeKey(e.RangeEnd), Revision: e.Revision,
		Code: e.Code, Error: e.Error,
		LatencyMS: float64(e.Latency) / float64(time.Millisecond), Read: e.Read,
	}
}

func TestLineMatchesEncodingJSON(t *testing.T) {
	for _, e := range []Entry{
		{},
		{Member: "m", User: "u", Remote: "r", Method: "/m", Key: []byte{0, '\\', '"', 0xff}, RangeEnd: []byte{0},
			Revision: -3, Code: "OK", Error: "e\x00\x1f\x7f\b\f\n\r\t\"\\<>&\xff\u2028\u2029ñ", Latency: 1, Read: true},
		{Latency: time.Duration(math.MaxInt64)},
		{Latency: -time.Second},
		{Time: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		got := appendEntry(nil, e, "member")
		want := modelEncode(t, modelLine(e, "member"))
		if !bytes.Equal(got, want) {
			t.Errorf("entry %+v:\n got %s\nwant %s", e, got, want)
		}
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.Local)
	got := appendEvent(nil, at, "m\"1", eventDropped, 17)
	want := modelEncode(t, eventLine{V: Version, Time: at.UTC().Format(time.RFC3339Nano), Member: "m\"1", Event: eventDropped, Count: 17})
	if !bytes.Equal(got, want) {
		t.Errorf("event:\n got %s\nwant %s", got, want)
	}
}

// FuzzLineMatchesEncodingJSON pins the hand-written encoder to
// encoding/json byte for byte, over arbitrary (also invalid UTF-8)
// strings, keys, numbers and times.
func FuzzLineMatchesEncodingJSON(f *testing.F) {
	f.Add("m1", "root", "10.0.0.1:2379", "/etcdserverpb.KV/Put", []byte("/k"), []byte{0}, int64(42), "OK", "", int64(1500000), true, int64(1700000000123456789))
	f.Add("\xff", "\u2028", "\x00", "<&>", []byte{'\\', '"'}, []byte{}, int64(-1), "\t", "\"\\", int64(-1), false, int64(0))
	f.Fuzz(func(t *testing.T, member, user, remote, method string, key, end []byte, rev int64, code, errMsg string, latency int64, read bool, unixNano int64) {
		e := Entry{
			Time: time.Unix(0, unixNano), User: user, Remote: remote, Method: method,
			Key: key, RangeEnd: end, Revision: rev, Code: code, Error: errMsg,
			Latency: time.Duration(latency), Read: read,
		}
		got := appendEntry(nil, e, member)
		want := modelEncode(t, modelLine(e, member))
		if !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
		if !utf8.Valid(got) {
			t.Fatalf("line is not valid UTF-8: %q", got)
		}
	})
}
