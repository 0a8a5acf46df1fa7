package transport

import (
	"io"
	"time"
)

// stallWriter breaks a transfer whose peer has stopped taking bytes.
//
// TCP alone notices a dead peer only after minutes of retransmissions,
// and meanwhile a stream looks healthy: ActiveSince stays set and the
// writer sits in Write. So every Write to w must finish within timeout,
// or onStall is called (it aborts the request, which fails the Write).
// Writes are cut into pieces of at most stallChunk bytes so the timeout
// measures progress, not the size of one large message.
type stallWriter struct {
	w       io.Writer
	timeout time.Duration
	timer   *time.Timer
}

const stallChunk = 64 << 10

func newStallWriter(w io.Writer, timeout time.Duration, onStall func()) *stallWriter {
	t := time.AfterFunc(timeout, onStall)
	t.Stop()
	return &stallWriter{w: w, timeout: timeout, timer: t}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		piece := p[:min(len(p), stallChunk)]
		s.timer.Reset(s.timeout)
		k, err := s.w.Write(piece)
		s.timer.Stop()
		n += k
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// stop disarms the timer for good.
func (s *stallWriter) stop() { s.timer.Stop() }
