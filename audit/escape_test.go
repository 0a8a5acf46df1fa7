package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestEscapeKeyExamples(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"", ""},
		{"/registry/pods/default/web-0", "/registry/pods/default/web-0"},
		{"\x00", `\x00`},
		{"a\\b", `a\\b`},
		{`\x00`, `\\x00`}, // a literal backslash-x is not confused with a byte
		{`say "hi"`, `say "hi"`},
		{"tab\there\n", `tab\x09here\x0a`},
		{"\x7f\x80\xff", `\x7f\x80\xff`},
		{"ñ", `\xc3\xb1`},
		{"\u2028", `\xe2\x80\xa8`},
	} {
		got := EscapeKey([]byte(tc.in))
		if got != tc.want {
			t.Errorf("EscapeKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
		back, err := UnescapeKey(got)
		if err != nil || !bytes.Equal(back, []byte(tc.in)) {
			t.Errorf("UnescapeKey(%q) = %q, %v; want %q", got, back, err, tc.in)
		}
	}
}

func TestUnescapeKeyAcceptsUpperHex(t *testing.T) {
	got, err := UnescapeKey(`\xFF\xaB`)
	if err != nil || !bytes.Equal(got, []byte{0xff, 0xab}) {
		t.Fatalf("got %x, %v", got, err)
	}
}

func TestUnescapeKeyRejectsWhatEscapeNeverWrites(t *testing.T) {
	for _, in := range []string{`\`, `a\`, `\x`, `\x0`, `\xg0`, `\n`, `\u0000`, "\x00", "\n", "ñ"} {
		if got, err := UnescapeKey(in); err == nil {
			t.Errorf("UnescapeKey(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzEscape pins the two promises of EscapeKey: UnescapeKey reverses
// it exactly, and its output placed in a JSON line is valid UTF-8 JSON
// that decodes to the same string.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "/a/b", "\x00", "\\", `\x41`, "\xff\xfe", "ñ\u2028\"", "\r\n\t"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, k []byte) {
		s := EscapeKey(k)
		if !utf8.ValidString(s) {
			t.Fatalf("EscapeKey(%q) = %q is not valid UTF-8", k, s)
		}
		back, err := UnescapeKey(s)
		if err != nil {
			t.Fatalf("UnescapeKey(EscapeKey(%q)): %v", k, err)
		}
		if !bytes.Equal(back, k) {
			t.Fatalf("round trip of %q gave %q", k, back)
		}
		b := appendEntry(nil, Entry{Method: "/etcdserverpb.KV/Put", Key: k, RangeEnd: k}, "m")
		if !utf8.Valid(b) || !json.Valid(b) {
			t.Fatalf("line for key %q is not valid UTF-8 JSON: %q", k, b)
		}
		var l line
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		if l.Key != s || l.RangeEnd != s {
			t.Fatalf("key through JSON: got %q/%q, want %q", l.Key, l.RangeEnd, s)
		}
	})
}
