package robustness

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// A fault disturbs the cluster once and puts it right again before it
// returns. It runs on the test's goroutine, as testcluster requires.
type fault struct {
	name   string
	inject func(r *run)
}

// The faults, by name; allFaults is every kind, as a soak cycles them.
var (
	faultKillLeader      = fault{"kill-leader", killLeader}
	faultKillFollower    = fault{"kill-follower", killFollower}
	faultIsolateLeader   = fault{"isolate-leader", isolateLeader}
	faultIsolateFollower = fault{"isolate-follower", isolateFollower}
	faultFreezeLeader    = fault{"freeze-leader", freezeLeader}
	faultFreezeFollower  = fault{"freeze-follower", freezeFollower}
	faultCutClient       = fault{"cut-client", cutClient}
	faultMembership      = fault{"membership", membershipChange}
	faultSnapshotCatchUp = fault{"snapshot-catch-up", snapshotCatchUp}

	allFaults = []fault{faultKillLeader, faultKillFollower, faultIsolateLeader, faultIsolateFollower,
		faultFreezeLeader, faultFreezeFollower, faultCutClient, faultMembership, faultSnapshotCatchUp}
)

func killLeader(r *run) {
	m := r.c.Members[r.c.WaitLeader(r.t)]
	m.Kill()
	time.Sleep(electionTimeout)
	m.Start()
}

func killFollower(r *run) {
	m := r.c.Members[r.follower()]
	m.Kill()
	time.Sleep(electionTimeout)
	m.Start()
}

func isolateLeader(r *run) {
	old := r.c.WaitLeader(r.t)
	r.c.Isolate(old)
	r.c.WaitNewLeader(r.t, old)
	time.Sleep(time.Second) // writes through the new leader while the old one is cut off
	r.c.Heal()
}

func isolateFollower(r *run) {
	r.c.Isolate(r.follower())
	time.Sleep(2 * electionTimeout)
	r.c.Heal()
}

func freezeLeader(r *run)   { freeze(r, r.c.WaitLeader(r.t)) }
func freezeFollower(r *run) { freeze(r, r.follower()) }

// freeze stops member i with SIGSTOP for longer than an election
// timeout, then lets it go on.
func freeze(r *run, i int) {
	m := r.c.Members[i]
	pid := m.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		r.t.Fatalf("SIGSTOP member %s (pid %d): %v", m.Name, pid, err)
	}
	// Registered before the sleep, so a test that fails meanwhile does
	// not leave a stopped process behind for testcluster to kill.
	cont := sync.OnceFunc(func() {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			r.t.Errorf("SIGCONT member %s (pid %d): %v", m.Name, pid, err)
		}
	})
	r.t.Cleanup(cont)
	time.Sleep(3 * electionTimeout)
	cont()
}

// cutClient black-holes the clients' connections to one member (the
// leader, half the time) for a few election timeouts: its clients time
// out and go elsewhere, while the member itself carries on.
func cutClient(r *run) {
	i := r.c.WaitLeader(r.t)
	if rand.IntN(2) == 0 {
		i = r.follower()
	}
	r.c.CutClient(i)
	time.Sleep(3 * electionTimeout)
	r.c.HealClient(i)
}

// membershipChange adds a learner, promotes it once it has caught up,
// and removes it again, all under the load.
func membershipChange(r *run) {
	m := r.c.AddMember(r.t, true)
	cli := r.admin
	ctx, cancel := context.WithTimeout(r.t.Context(), recoverTimeout)
	defer cancel()
	retry := func(what string, f func(context.Context) error) {
		for {
			rctx, rcancel := context.WithTimeout(ctx, opTimeout)
			err := f(rctx)
			rcancel()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				r.t.Fatalf("%s member %s: %v", what, m.Name, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	retry("promote", func(ctx context.Context) error {
		_, err := cli.MemberPromote(ctx, m.ID())
		if errors.Is(err, rpctypes.ErrMemberNotLearner) {
			return nil // an earlier attempt that timed out went through
		}
		return err
	})
	time.Sleep(electionTimeout) // a voter for a while
	retry("remove", func(ctx context.Context) error {
		_, err := cli.MemberRemove(ctx, m.ID())
		if errors.Is(err, rpctypes.ErrMemberNotFound) {
			return nil
		}
		return err
	})
	r.removed[m.Name] = true
	// A removed member stops by itself; one that does not is stopped.
	select {
	case <-m.Exited():
	case <-time.After(10 * time.Second):
		m.Kill()
	}
}

// snapshotCatchUp kills a follower, has the others commit more entries
// than the leader keeps for catching up (--snapshot-catchup-entries),
// and restarts it: it can only catch up from a snapshot.
func snapshotCatchUp(r *run) {
	leader := r.c.Members[r.c.WaitLeader(r.t)]
	f := r.c.Members[r.follower()]
	ctx, cancel := context.WithTimeout(r.t.Context(), 20*time.Second)
	defer cancel()
	st, err := leader.Status(ctx)
	if err != nil {
		return // the leader just changed: another time
	}
	f.Kill()
	behind := false
	for !behind && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		now, err := leader.Status(ctx)
		behind = err == nil && now.RaftIndex > st.RaftIndex+3*snapshotCount
	}
	before := len(f.Logs())
	f.Start()
	if !behind {
		return // too slow a machine to get far enough ahead: not a try
	}
	r.snapshotTries++
	wctx, wcancel := context.WithTimeout(r.t.Context(), 5*time.Second)
	defer wcancel()
	if err := waitFor(wctx, func() bool { return restoredAfterRestart(f.Logs()[before:]) }); err == nil {
		r.snapshotCatchUps++
	}
}

// restoredAfterRestart reports whether a member's output says it
// received a snapshot from the leader.
func restoredAfterRestart(logs string) bool {
	return strings.Contains(logs, "transport: received snapshot")
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
