package robustness

import (
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The tests in this file switch on the deliberate bugs of
// internal/failpoint in a server built for them, and pass only if the
// suite reports the violation each bug causes: proof that a clean run
// of the suite means something.

// failpointDuration is the load of a failpoint run: enough for a few
// faults and a few hundred revisions.
const failpointDuration = 8 * time.Second

func failpointScenario(name, failpoint string, faults ...fault) scenario {
	return scenario{
		name: name, faults: faults, duration: failpointDuration, expectViolations: true,
		buildTags: []string{"cairn_failpoints"}, env: []string{"CAIRN_FAILPOINTS=" + failpoint},
	}
}

// TestFailpointStaleReadsAreCaught: with skipReadIndex, a leader cut
// off from the others keeps answering linearizable reads from its own,
// stale, state; the clients pinned to it read values the majority has
// overwritten, which porcupine must reject.
func TestFailpointStaleReadsAreCaught(t *testing.T) {
	rep := runScenario(t, failpointScenario("failpoint-skip-read-index", "skipReadIndex", faultIsolateLeader))
	if rep.lin != porcupine.Illegal {
		t.Fatalf("with skipReadIndex and %d isolations of the leader, porcupine says %s; want %s", rep.faults[faultIsolateLeader.name], rep.lin, porcupine.Illegal)
	}
	t.Logf("caught: the KV history is not linearizable (%d violations in all); the first: %s", len(rep.violations), firstViolations(rep, 3))
}

// firstViolations lists up to n of rep's violations, for the log.
func firstViolations(rep *report, n int) string {
	return strings.Join(rep.violations[:min(n, len(rep.violations))], "; ")
}

// TestFailpointDroppedWatchEventsAreCaught: with dropWatchEvent, synced
// watchers never see revisions divisible by 100; the watch checker
// must report the gap.
func TestFailpointDroppedWatchEventsAreCaught(t *testing.T) {
	rep := runScenario(t, failpointScenario("failpoint-drop-watch-event", "dropWatchEvent", faultKillFollower))
	if rep.final < 100 {
		t.Fatalf("the run reached revision %d only; the failpoint needs 100", rep.final)
	}
	found := ""
	for _, v := range rep.violations {
		if strings.Contains(v, "never delivered revision") || strings.Contains(v, "missing") {
			found = v
			break
		}
	}
	if found == "" {
		t.Fatalf("with dropWatchEvent, no gap reported; violations: %q", rep.violations)
	}
	t.Logf("caught: %s (%d violations in all)", found, len(rep.violations))
}
