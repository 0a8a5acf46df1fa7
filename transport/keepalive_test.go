package transport

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestSilentStreamIsRedialled: a path that takes the sender's bytes but
// no longer reaches the peer (a proxy in front of a dead member) sends no
// keep-alives; the sender must notice and redial instead of writing into
// the void for ever.
func TestSilentStreamIsRedialled(t *testing.T) {
	var streams atomic.Int32
	blackHole := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streams.Add(1)
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		_, _ = io.Copy(io.Discard, r.Body) // swallow everything, answer nothing
	}))
	defer blackHole.Close()

	tr := New(Config{
		ID: 1, ClusterID: 9, Raft: newFakeRaft(),
		KeepAliveInterval: 50 * time.Millisecond, KeepAliveTimeout: 300 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	defer tr.Stop()
	tr.AddPeer(2, []string{blackHole.URL})
	deadline := time.Now().Add(5 * time.Second)
	for streams.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the sender kept one silent stream for 5s (streams opened: %d); want a redial after the keep-alive timeout", streams.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
