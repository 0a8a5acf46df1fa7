package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

// records is a slog.Handler that keeps what it is given, for checking
// what the log reports about itself.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, r.Clone())
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

// find returns the attributes of the records with message msg.
func (h *records) find(msg string) []map[string]slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]slog.Value
	for _, r := range h.got {
		if r.Message != msg {
			continue
		}
		m := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
		out = append(out, m)
	}
	return out
}

func newRecords() (*records, *slog.Logger) {
	h := &records{}
	return h, slog.New(h)
}

// stallSink blocks every write until release is closed, and tells
// entered when the first write has started.
type stallSink struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once

	mu  sync.Mutex
	buf bytes.Buffer
}

func newStallSink() *stallSink {
	return &stallSink{entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *stallSink) write(p []byte) error {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	return nil
}

func (s *stallSink) close() error { return nil }

func (s *stallSink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// discardSink throws lines away, for benchmarks.
type discardSink struct{}

func (discardSink) write([]byte) error { return nil }
func (discardSink) close() error       { return nil }

// failSink fails every write.
type failSink struct{}

func (failSink) write([]byte) error { return errors.New("disk on fire") }
func (failSink) close() error       { return nil }

// splitLines decodes JSON lines into maps, failing on anything that is
// not one JSON object per line.
func splitLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Bytes(), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("output does not end in a newline: %q", b)
	}
	return out
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return splitLines(t, b)
}

// requests and events split decoded lines by the presence of "event".
func requests(lines []map[string]any) (req, ev []map[string]any) {
	for _, l := range lines {
		if _, ok := l["event"]; ok {
			ev = append(ev, l)
		} else {
			req = append(req, l)
		}
	}
	return req, ev
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
