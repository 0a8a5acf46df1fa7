package transport

import (
	"context"
	"net/http"
	"time"
)

// DefaultProbeInterval is how often a member measures the round trip to each
// peer (etcd probes every 4 s and exports the smoothed figure every 30 s;
// Cairn exports every probe).
const DefaultProbeInterval = 5 * time.Second

// serveProbe answers a peer's round-trip probe.
func (t *Transport) serveProbe(w http.ResponseWriter, r *http.Request) {
	if _, ok := t.checkHeaders(w, r); !ok {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// probeLoop measures the round trip to the peer every Config.ProbeInterval
// and reports it to the Observer (etcd_network_peer_round_trip_time_seconds).
// A probe that fails is not counted: stream failures are, by run.
func (p *peer) probeLoop() {
	t := time.NewTicker(p.t.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		if d, ok := p.probe(); ok {
			p.t.cfg.Observer.RoundTrip(p.id, d)
		}
	}
}

// probe makes one round trip on the URL the stream uses.
func (p *peer) probe() (time.Duration, bool) {
	u, _ := p.currentURL()
	if u == nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.t.cfg.DialTimeout)
	defer cancel()
	req, err := p.t.newRequest(ctx, u, ProbePath, p.id, http.NoBody)
	if err != nil {
		return 0, false
	}
	// A probe reuses a kept-alive connection where the RoundTripper
	// keeps one, so it measures the network, not a handshake.
	req.Close = false
	start := time.Now()
	resp, err := p.t.rt.RoundTrip(req)
	if err != nil {
		return 0, false
	}
	resp.Body.Close()
	return time.Since(start), resp.StatusCode == http.StatusNoContent
}
