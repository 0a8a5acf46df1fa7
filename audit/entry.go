package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
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

// line is the JSON form of an Entry: schema version 1, documented in
// docs/SECURITY.md ("Audit log") and in the package doc. The fields
// that are always present have no omitempty.
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

// eventLine is a line about the log itself rather than a request; the
// "event" field, absent from request lines, tells them apart.
type eventLine struct {
	V      int    `json:"v"`
	Time   string `json:"time"`
	Member string `json:"member"`
	Event  string `json:"event"`
	Count  uint64 `json:"count"`
}

// eventDropped is the event of a line written when the writer has caught
// up after the queue overflowed; its count is the number of request lines
// lost since the previous such line.
const eventDropped = "dropped"

// timeFormat is RFC 3339 with nanoseconds, always in UTC.
func timeFormat(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// encoder turns entries into lines. It is owned by the writer goroutine
// and reuses its buffer; HTML escaping is off so that "<", ">" and "&"
// in a method or error read as themselves.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newEncoder() *encoder {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

// appendEntry appends e as one line, newline included. member is used
// when e.Member is empty.
func (c *encoder) appendEntry(dst []byte, e Entry, member string) []byte {
	if e.Member != "" {
		member = e.Member
	}
	l := line{
		V:         Version,
		Time:      timeFormat(e.Time),
		Member:    member,
		User:      e.User,
		Remote:    e.Remote,
		Method:    e.Method,
		Key:       EscapeKey(e.Key),
		RangeEnd:  EscapeKey(e.RangeEnd),
		Revision:  e.Revision,
		Code:      e.Code,
		Error:     e.Error,
		LatencyMS: float64(e.Latency) / float64(time.Millisecond),
		Read:      e.Read,
	}
	return c.append(dst, &l)
}

func (c *encoder) appendEvent(dst []byte, now time.Time, member, event string, count uint64) []byte {
	return c.append(dst, &eventLine{V: Version, Time: timeFormat(now), Member: member, Event: event, Count: count})
}

func (c *encoder) append(dst []byte, v any) []byte {
	c.buf.Reset()
	// Encode fails only on unsupported types and values (a NaN float);
	// neither can occur in line or eventLine.
	_ = c.enc.Encode(v)
	return append(dst, c.buf.Bytes()...)
}

// appendLine is appendEntry with a fresh encoder, for tests.
func appendLine(dst []byte, e Entry, member string) []byte {
	return newEncoder().appendEntry(dst, e, member)
}

// alwaysLogged reports whether e is written even when reads are off: a
// refusal for lack of permission or of a valid identity, or any failed
// call to the Auth service (a wrong password is InvalidArgument there).
func alwaysLogged(e *Entry) bool {
	switch e.Code {
	case "PermissionDenied", "Unauthenticated":
		return true
	case "OK", "":
		return false
	}
	return strings.HasPrefix(e.Method, "/etcdserverpb.Auth/") || strings.HasPrefix(e.Method, "/v3/auth/")
}
