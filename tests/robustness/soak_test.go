package robustness

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

var (
	soakFlag = flag.Duration("robustness.soak", 0,
		"run TestSoak for this long, cycling every fault kind (or $CAIRN_ROBUSTNESS_SOAK)")
	segmentFlag = flag.Duration("robustness.segment", 2*time.Minute,
		"the load of each fresh cluster of a soak; each segment's history is checked by itself")
)

const envSoak = "CAIRN_ROBUSTNESS_SOAK"

// TestSoak runs segments of load on fresh clusters, each cycling
// through every kind of fault from a different one, until the soak's
// duration has passed, and reports the totals. It runs only when asked:
//
//	go test -count=1 -timeout=0 -v -run TestSoak ./tests/robustness/ -robustness.soak=30m
func TestSoak(t *testing.T) {
	total := *soakFlag
	if v := os.Getenv(envSoak); total == 0 && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", envSoak, v, err)
		}
		total = d
	}
	if total == 0 {
		t.Skip("a soak runs only with -robustness.soak or $" + envSoak)
	}
	began := time.Now()
	sum := &report{name: "soak", faults: make(map[string]int), ops: make(map[opKind]int)}
	segments := 0
	for time.Since(began) < total {
		seg := min(*segmentFlag, total-time.Since(began))
		if seg < 20*time.Second {
			break
		}
		faults := append(append([]fault(nil), allFaults[segments%len(allFaults):]...), allFaults[:segments%len(allFaults)]...)
		var rep *report
		t.Run(fmt.Sprintf("segment-%d", segments), func(t *testing.T) {
			rep = runScenario(t, scenario{name: fmt.Sprintf("soak-%d", segments), faults: faults, duration: seg})
			check(t, rep)
		})
		segments++
		if rep == nil {
			continue // the segment failed before it could report
		}
		sum.duration += rep.duration
		for k, n := range rep.faults {
			sum.faults[k] += n
		}
		for k, n := range rep.ops {
			sum.ops[k] += n
		}
		sum.unknown += rep.unknown
		sum.leases += rep.leases
		sum.holds += rep.holds
		sum.rpcHolds += rep.rpcHolds
		sum.wins += rep.wins
		sum.proclaims += rep.proclaims
		sum.observed += rep.observed
		sum.streams += rep.streams
		sum.events += rep.events
		sum.compactions += rep.compactions
		sum.snapshots += rep.snapshots
		sum.snapshotErrs += rep.snapshotErrs
		sum.snapshotCatchUps += rep.snapshotCatchUps
		sum.snapshotTries += rep.snapshotTries
		sum.final += rep.final - rep.firstRev + 1
		sum.checkTime += rep.checkTime
		sum.violations = append(sum.violations, rep.violations...)
	}
	var fs []string
	faults := 0
	for k, n := range sum.faults {
		fs = append(fs, fmt.Sprintf("%s %d", k, n))
		faults += n
	}
	sort.Strings(fs)
	ops := 0
	for _, n := range sum.ops {
		ops += n
	}
	t.Logf("soak: %d segments, %v of load in %v\n  faults: %d (%s); followers caught up by snapshot %d of %d\n  operations: %d KV (%d unknown), %d revisions, %d leases, %d lock holds (%d by the Lock RPC), %d elections won, %d proclaims, %d changes observed\n  watches: %d streams, %d events; %d compactions, %d snapshots saved (%d failed)\n  linearizability checks took %v; violations: %d",
		segments, sum.duration, time.Since(began).Round(time.Second), faults, strings.Join(fs, ", "), sum.snapshotCatchUps, sum.snapshotTries,
		ops, sum.unknown, sum.final, sum.leases, sum.holds, sum.rpcHolds, sum.wins, sum.proclaims, sum.observed, sum.streams, sum.events, sum.compactions, sum.snapshots, sum.snapshotErrs,
		sum.checkTime.Round(time.Millisecond), len(sum.violations))
}
