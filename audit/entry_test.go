package audit

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/status"
)

func TestLineHasTheDocumentedSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(Config{Path: path, Member: "m1", Reads: true})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.FixedZone("CET", 3600))
	l.Record(Entry{
		Time: at, User: "root", Remote: "10.0.0.9:51234",
		Method: "/etcdserverpb.KV/Range", Key: []byte("/a"), RangeEnd: []byte("/b"),
		Revision: 42, Code: "PermissionDenied", Error: "etcdserver: permission denied",
		Latency: 1500 * time.Microsecond, Read: true,
	})
	l.Record(Entry{Time: at, Member: "other", Method: "/etcdserverpb.KV/Put", Code: "OK"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %v", len(lines), lines)
	}
	full := map[string]any{
		"v": 1.0, "time": "2026-03-04T04:06:07.890123456Z", "member": "m1",
		"user": "root", "remote": "10.0.0.9:51234", "method": "/etcdserverpb.KV/Range",
		"key": "/a", "range_end": "/b", "revision": 42.0, "code": "PermissionDenied",
		"error": "etcdserver: permission denied", "latency_ms": 1.5, "read": true,
	}
	if !reflect.DeepEqual(lines[0], full) {
		t.Errorf("full line:\n got %v\nwant %v", lines[0], full)
	}
	// Empty optional fields are left out; the always-present ones stay.
	minimal := map[string]any{
		"v": 1.0, "time": "2026-03-04T04:06:07.890123456Z", "member": "other",
		"method": "/etcdserverpb.KV/Put", "code": "OK", "latency_ms": 0.0,
	}
	if !reflect.DeepEqual(lines[1], minimal) {
		t.Errorf("minimal line:\n got %v\nwant %v", lines[1], minimal)
	}
}

// The field order on disk is the documented one, so a line reads the
// same to a person every time.
func TestLineFieldOrder(t *testing.T) {
	b := appendEntry(nil, Entry{
		User: "u", Remote: "r", Method: "m", Key: []byte("k"), RangeEnd: []byte("e"),
		Revision: 1, Code: "OK", Error: "x", Read: true,
	}, "n")
	dec := json.NewDecoder(bytes.NewReader(b))
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip any
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"v", "time", "member", "user", "remote", "method", "key", "range_end", "revision", "code", "error", "latency_ms", "read"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("field order %v, want %v", keys, want)
	}
}

func TestLineDoesNotEscapeHTML(t *testing.T) {
	b := appendEntry(nil, Entry{Method: "/v3/kv/range", Error: "a < b && c > d", Key: []byte("<&>")}, "m")
	if got := string(b); !strings.Contains(got, `"error":"a < b && c > d"`) || !strings.Contains(got, `"key":"<&>"`) {
		t.Fatalf("line %s escapes HTML characters", got)
	}
}

func TestBinaryKeysRoundTripThroughTheFile(t *testing.T) {
	keys := [][]byte{
		{0}, {0xff, 0xfe, 0}, []byte("a\\b"), []byte(`a\x00`), []byte("quote\"d"),
		[]byte("new\nline"), []byte("ñ"), []byte("\u2028"), {0x7f},
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		l.Record(Entry{Method: "/etcdserverpb.KV/Put", Key: k, RangeEnd: append([]byte{}, k...), Code: "OK"})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != len(keys) {
		t.Fatalf("got %d lines, want %d", len(lines), len(keys))
	}
	for i, m := range lines {
		for _, f := range []string{"key", "range_end"} {
			got, err := UnescapeKey(m[f].(string))
			if err != nil || string(got) != string(keys[i]) {
				t.Errorf("%s %d: got %q (%v), want %q", f, i, got, err, keys[i])
			}
		}
	}
}

func TestAlwaysLogged(t *testing.T) {
	for _, tc := range []struct {
		method, code string
		want         bool
	}{
		{"/etcdserverpb.KV/Range", "OK", false},
		{"/etcdserverpb.KV/Range", "", false},
		{"/etcdserverpb.KV/Range", "PermissionDenied", true},
		{"/etcdserverpb.Watch/Watch", "Unauthenticated", true},
		{"/etcdserverpb.KV/Range", "InvalidArgument", false},
		{"/etcdserverpb.Auth/Authenticate", "InvalidArgument", true},
		{"/etcdserverpb.Auth/Authenticate", "OK", false},
		{"/etcdserverpb.Auth/UserGet", "NotFound", true},
		{"/v3/auth/authenticate", "InvalidArgument", true},
		{"/v3/kv/range", "PermissionDenied", true},
	} {
		e := Entry{Method: tc.method, Code: tc.code, Read: true}
		if got := alwaysLogged(&e); got != tc.want {
			t.Errorf("alwaysLogged(%s, %s) = %v, want %v", tc.method, tc.code, got, tc.want)
		}
	}
	// etcd's auth errors that arrive with other codes, on any method.
	for _, err := range []error{
		rpctypes.ErrGRPCUserEmpty, rpctypes.ErrGRPCAuthFailed, rpctypes.ErrGRPCPermissionDenied,
		rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrGRPCAuthOldRevision,
	} {
		st := status.Convert(err)
		e := Entry{Method: "/etcdserverpb.KV/Range", Code: st.Code().String(), Error: st.Message(), Read: true}
		if !alwaysLogged(&e) {
			t.Errorf("a read refused with %q (%s) is not always logged", st.Message(), st.Code())
		}
	}
	for _, err := range []error{rpctypes.ErrGRPCCompacted, rpctypes.ErrGRPCFutureRev} {
		st := status.Convert(err)
		e := Entry{Method: "/etcdserverpb.KV/Range", Code: st.Code().String(), Error: st.Message(), Read: true}
		if alwaysLogged(&e) {
			t.Errorf("a read failing with %q is logged with reads off", st.Message())
		}
	}
}
