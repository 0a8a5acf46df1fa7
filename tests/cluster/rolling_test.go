package cluster

import (
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestRollingRestartUnderLoad restarts every member in turn, gracefully,
// while clients write through all of them: no acknowledged write is lost
// and the members end with the same data.
func TestRollingRestartUnderLoad(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx := testContext(t)
	l := startLoad(t, c.Client(t), "load/", 8)
	l.waitMore(t, 50, 20*time.Second)
	for _, m := range c.Members {
		m.Stop()
		l.waitMore(t, 50, 20*time.Second) // the other two carry on
		m.Start()
		c.WaitLeader(t)
		l.waitMore(t, 50, 20*time.Second)
	}
	l.stop()
	acked, failed := l.snapshot()
	t.Logf("%d writes acknowledged, %d failed", len(acked), failed)
	checkAcked(t, ctx, c.Client(t), "load/", acked)
	c.WaitConverged(t)
}
