package transport

import (
	"sync"
	"testing"
	"time"
)

// rttObserver records round-trip probes.
type rttObserver struct {
	nopObserver
	mu   sync.Mutex
	rtts map[uint64]int
}

func (o *rttObserver) RoundTrip(to uint64, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rtts[to]++
}

func (o *rttObserver) count(to uint64) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rtts[to]
}

// Each member probes its peer's round trip every ProbeInterval, and
// stops when the peer is removed.
func TestProbesMeasureRoundTrips(t *testing.T) {
	checkNoLeaks(t)
	obs := &rttObserver{rtts: map[uint64]int{}}
	a := startMember(t, 1, 7, func(c *Config) { c.Observer = obs; c.ProbeInterval = 20 * time.Millisecond })
	b := startMember(t, 2, 7, nil)
	connect(a, b)
	waitFor(t, 5*time.Second, "three probes of B", func() bool { return obs.count(2) >= 3 })
	a.tr.RemovePeer(2)
	n := obs.count(2)
	time.Sleep(100 * time.Millisecond)
	if got := obs.count(2); got != n {
		t.Fatalf("%d probes after the peer was removed", got-n)
	}
}
