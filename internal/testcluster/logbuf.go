package testcluster

import (
	"bytes"
	"sync"
)

// logBuffer collects a member's output across all its runs. It keeps the
// first maxLogBytes/2 bytes and at least the last maxLogBytes/2, so a chatty member cannot exhaust
// memory and both its start and its end stay readable.
type logBuffer struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped int64
}

const maxLogBytes = 4 << 20

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := maxLogBytes/2 - len(b.head); room > 0 {
		take := min(room, len(p))
		b.head = append(b.head, p[:take]...)
		p = p[take:]
	}
	b.tail = append(b.tail, p...)
	// Trim only once the tail has doubled, so trimming costs O(1) a byte.
	if len(b.tail) > maxLogBytes {
		over := len(b.tail) - maxLogBytes/2
		b.dropped += int64(over)
		b.tail = append(b.tail[:0], b.tail[over:]...)
	}
	return n, nil
}

// String returns the output kept, with a marker where bytes were dropped.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out bytes.Buffer
	out.Write(b.head)
	if b.dropped > 0 {
		out.WriteString("\n... [testcluster: output truncated] ...\n")
	}
	out.Write(b.tail)
	return out.String()
}

// mark appends a line of the harness's own, so the log shows where one run
// of the member ends and the next begins.
func (b *logBuffer) mark(s string) {
	_, _ = b.Write([]byte("=== testcluster: " + s + "\n"))
}
