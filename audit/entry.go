package audit

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Entry is one audited request. The caller fills it after the request
// has been answered; Record copies what it keeps, so the caller may
// reuse Key and RangeEnd afterwards.
type Entry struct {
	Time     time.Time     // when the request arrived; Record uses time.Now() if zero
	Member   string        // member name; Config.Member if empty
	User     string        // token user or certificate CN, "" if none
	Remote   string        // remote address
	Method   string        // gRPC full method ("/etcdserverpb.KV/Put") or HTTP path
	Key      []byte        // first key of the request, if any
	RangeEnd []byte        // its range end, if any
	Revision int64         // revision in the response header (0 if none)
	Code     string        // gRPC code name ("OK", "PermissionDenied", ...)
	Error    string        // error message, if any; the caller guarantees it holds no secret
	Latency  time.Duration // time from arrival to answer
	Read     bool          // a read or a watch creation (logged only with Config.Reads, unless denied)
}

// Version is the value of the "v" field of every line. It changes only
// when a field changes meaning or disappears; new fields may be added
// within a version, so readers should ignore fields they do not know.
const Version = 1

// eventDropped is the event of a line written when the writer has caught
// up after the queue overflowed; its count is the number of request lines
// lost since the previous such line.
const eventDropped = "dropped"

// The encoder below writes the version-1 line by hand rather than
// through encoding/json: it is the writer's whole cost, and by hand it
// is several times faster and allocates nothing. Its output is pinned
// byte for byte to encoding/json's (with HTML escaping off) by
// FuzzLineMatchesEncodingJSON, which keeps the struct form of the
// schema as its model.

// appendEntry appends e as one line, newline included. member is used
// when e.Member is empty.
func appendEntry(b []byte, e Entry, member string) []byte {
	if e.Member != "" {
		member = e.Member
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, Version, 10)
	b = append(b, `,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","member":`...)
	b = appendString(b, member)
	if e.User != "" {
		b = append(b, `,"user":`...)
		b = appendString(b, e.User)
	}
	if e.Remote != "" {
		b = append(b, `,"remote":`...)
		b = appendString(b, e.Remote)
	}
	b = append(b, `,"method":`...)
	b = appendString(b, e.Method)
	if len(e.Key) > 0 {
		b = append(b, `,"key":`...)
		b = appendKey(b, e.Key)
	}
	if len(e.RangeEnd) > 0 {
		b = append(b, `,"range_end":`...)
		b = appendKey(b, e.RangeEnd)
	}
	if e.Revision != 0 {
		b = append(b, `,"revision":`...)
		b = strconv.AppendInt(b, e.Revision, 10)
	}
	b = append(b, `,"code":`...)
	b = appendString(b, e.Code)
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, e.Error)
	}
	b = append(b, `,"latency_ms":`...)
	b = appendFloat(b, float64(e.Latency)/float64(time.Millisecond))
	if e.Read {
		b = append(b, `,"read":true`...)
	}
	return append(b, "}\n"...)
}

// appendEvent appends a line about the log itself.
func appendEvent(b []byte, now time.Time, member, event string, count uint64) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, Version, 10)
	b = append(b, `,"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","member":`...)
	b = appendString(b, member)
	b = append(b, `,"event":`...)
	b = appendString(b, event)
	b = append(b, `,"count":`...)
	b = strconv.AppendUint(b, count, 10)
	return append(b, "}\n"...)
}

// appendKey appends k escaped by EscapeKey as a JSON string. The escaped
// form is printable ASCII, so only '"' and '\\' need JSON's escaping.
func appendKey(b, k []byte) []byte {
	b = append(b, '"')
	for _, c := range k {
		switch {
		case c == '\\':
			b = append(b, `\\\\`...) // EscapeKey's \\, then JSON's escaping of each
		case c == '"':
			b = append(b, '\\', '"')
		case c >= 0x20 && c <= 0x7e:
			b = append(b, c)
		default:
			b = append(b, '\\', '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return append(b, '"')
}

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping off: '"', '\\' and control characters escaped, invalid
// UTF-8 replaced by U+FFFD, and U+2028 and U+2029 escaped (JavaScript
// reads them as line ends).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat appends f as encoding/json writes a float64: the shortest
// decimal that reads back as f, in exponent form only for very small or
// very large magnitudes.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as in encoding/json.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// alwaysLogged reports whether e is written even when reads are off: a
// request refused for who sent it. That is code PermissionDenied or
// Unauthenticated; or one of etcd's auth errors, which etcd sends with
// other codes (a stale token is InvalidArgument "revision of auth store
// is old"); or any failed call to the Auth service, where a wrong
// password is InvalidArgument.
func alwaysLogged(e *Entry) bool {
	switch e.Code {
	case "PermissionDenied", "Unauthenticated":
		return true
	case "OK", "":
		return false
	}
	if authRefusals[e.Error] {
		return true
	}
	return strings.HasPrefix(e.Method, "/etcdserverpb.Auth/") || strings.HasPrefix(e.Method, "/v3/auth/")
}

// authRefusals are etcd's messages (rpctypes) for a request refused
// because of its credentials, whatever the method. The test checks them
// against go.etcd.io/etcd/api/v3/v3rpc/rpctypes.
var authRefusals = map[string]bool{
	"etcdserver: user name is empty":                                 true,
	"etcdserver: authentication failed, invalid user ID or password": true,
	"etcdserver: permission denied":                                  true,
	"etcdserver: invalid auth token":                                 true,
	"etcdserver: revision of auth store is old":                      true,
}
