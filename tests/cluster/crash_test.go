package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// electionBound is how soon after the leader dies the others must have
// elected a new one: a few election timeouts (a second each by default).
const electionBound = 8 * time.Second

// TestLeaderKilledUnderLoad: kill -9 of the leader while clients write
// through every member. The others elect a new leader within a few
// seconds and writes carry on; once the dead member is back no
// acknowledged write is missing and every member holds the same data.
func TestLeaderKilledUnderLoad(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d members", size), func(t *testing.T) {
			c := testcluster.New(t, testcluster.Config{Size: size})
			ctx := testContext(t)
			l := startLoad(t, c.Client(t), "load/", 8)
			l.waitMore(t, 100, 20*time.Second)

			old := c.WaitLeader(t)
			killed := time.Now()
			c.Members[old].Kill()
			leader := c.WaitNewLeader(t, old)
			elected := time.Since(killed)
			if elected > electionBound {
				t.Errorf("new leader %s took %v after the leader died; want under %v", c.Members[leader].Name, elected, electionBound)
			}
			l.waitMore(t, 100, 15*time.Second)
			t.Logf("%s killed; %s elected in %v; writes resumed %v after the kill", c.Members[old].Name, c.Members[leader].Name, elected.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))

			c.Members[old].Start()
			l.waitMore(t, 100, 15*time.Second)
			l.stop()
			acked, failed := l.snapshot()
			t.Logf("%d writes acknowledged, %d failed", len(acked), failed)
			checkAcked(t, ctx, c.Client(t), "load/", acked)
			c.WaitConverged(t)
		})
	}
}
