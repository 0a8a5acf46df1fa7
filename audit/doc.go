// Package audit owns Cairn's audit log: one JSON line per client request
// saying who did what to which key, with what result. etcd has none.
//
// The package knows nothing of gRPC or HTTP. The API layer builds an
// Entry after answering a request and hands it to Record; the package
// decides whether to keep it, queues it and writes it from its own
// goroutine. It never touches the member's storage and never sees a
// value: Entry has no field for one, on purpose.
//
// # Driving it
//
//	al, err := audit.Open(audit.Config{Path: "/var/log/cairn/audit.log", MaxSizeMB: 100, MaxBackups: 5, Member: "m1"})
//	if err != nil { ... }
//	defer al.Close() // flushes what is queued
//	...
//	// in a gRPC interceptor, after the handler returned:
//	al.Record(audit.Entry{
//		User: user, Remote: peerAddr, Method: info.FullMethod,
//		Key: req.Key, RangeEnd: req.RangeEnd, Revision: hdr.Revision,
//		Code: status.Code(err).String(), Error: msg,
//		Latency: time.Since(start), Read: isRead,
//	})
//
// Open with an empty Path returns a nil *Log, and every method of a nil
// *Log does nothing, so the call sites need no "if auditing" checks.
//
// # Guarantees
//
//   - Record never blocks on the disk. The queue is bounded
//     (Config.BufferSize); when it is full the line is dropped, counted
//     (Dropped), reported as one slog warning per 10 s while drops go on,
//     and, when the writer has caught up, marked in the file itself by a
//     line {"v":1,...,"event":"dropped","count":N}.
//   - Reads and watch creations (Entry.Read) are written only with
//     Config.Reads; skipping them is not a drop. A refused request is
//     always written, read or not: code PermissionDenied or
//     Unauthenticated; an error that is one of etcd's auth refusals sent
//     with another code (invalid user or password, empty user name, auth
//     store revision old); or any failed call to the Auth service
//     ("/etcdserverpb.Auth/..." or "/v3/auth/...").
//   - Close writes everything queued before it returns, then syncs.
//     Between batches the lines are in the OS's page cache, not synced:
//     a machine crash can lose the last ones.
//
// # Line format, version 1
//
// Each line is one JSON object ending in "\n", in this field order.
// Fields marked "always" are present on every request line; the others
// are left out when empty, zero or false. Readers must ignore fields
// they do not know: a version adds fields, and only a change of meaning
// or a removal bumps "v".
//
//	v           number  always  schema version, 1
//	time        string  always  arrival, RFC 3339 with nanoseconds, UTC
//	member      string  always  member name
//	user        string          token user or certificate CN
//	remote      string          client address
//	method      string  always  gRPC full method or HTTP path
//	key         string          first key, escaped (below)
//	range_end   string          range end, escaped
//	revision    number          revision in the response header
//	code        string  always  gRPC code name: "OK", "PermissionDenied", ...
//	error       string          error message
//	latency_ms  number  always  arrival to answer, milliseconds (fractional)
//	read        bool            true for a read or watch creation
//
// A line with an "event" field is about the log, not a request: today
// only "dropped", with "v", "time", "member" and "count".
//
// Keys are bytes, so "key" and "range_end" are escaped by EscapeKey:
// printable ASCII stands for itself except "\" written "\\", and every
// other byte is "\xNN". Inside the JSON string the backslash is itself
// escaped, so the key "a\x00" reads "a\\x00" in the file and decodes to
// `a\x00` before UnescapeKey. Other string fields are UTF-8 text as the
// caller gave it; invalid UTF-8 in them becomes U+FFFD.
package audit
