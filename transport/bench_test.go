package transport

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkStream measures messages per second from one member to
// another over a local stream, with the sender keeping at most window
// messages in flight so that none are dropped.
func BenchmarkStream(b *testing.B) {
	for _, size := range []int{0, 128, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("entry=%dB", size), func(b *testing.B) {
			quiet := func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }
			a, r := startMember(b, 1, 7, quiet), startMember(b, 2, 7, quiet)
			connect(a, r)
			a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})
			waitFor(b, 5*time.Second, "the stream", func() bool { return len(r.raft.received(1, nil)) == 1 })
			received := func() int {
				r.raft.mu.Lock()
				defer r.raft.mu.Unlock()
				n := len(r.raft.got[1])
				r.raft.got[1] = r.raft.got[1][:0] // keep memory flat
				return n
			}
			received()

			data := make([]byte, size)
			const batch, window = 64, 2048
			msgs := make([]*raftpb.Message, 0, batch)
			b.SetBytes(int64(size))
			b.ResetTimer()
			sent, got := 0, 0
			for sent < b.N {
				msgs = msgs[:0]
				for i := 0; i < batch && sent < b.N; i++ {
					sent++
					msgs = append(msgs, appMsg(1, 2, uint64(sent), data))
				}
				a.tr.Send(msgs)
				for sent-got > window {
					got += received()
					if sent-got > window {
						time.Sleep(50 * time.Microsecond)
					}
				}
			}
			for got < b.N {
				got += received()
				time.Sleep(50 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if n := a.raft.unreachableCount(2); n != 0 {
				b.Fatalf("%d drops reported: the window is too large for the queue", n)
			}
		})
	}
}
