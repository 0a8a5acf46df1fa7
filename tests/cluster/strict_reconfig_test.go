package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// healthInterval is how long etcd (and Cairn) want a peer connected
// before it counts for a membership change.
const healthInterval = 5 * time.Second

// TestStrictReconfigTable: --strict-reconfig-check on every cluster size
// from 1 to 5 with 0 to size-1 members down, adding a learner and adding
// a voter, as etcd 3.7 answers (the table passes against etcd 3.7.3).
// The rule: the new member counts as down, and the members the one asked
// has been connected to for 5 s must still be a quorum of the larger
// cluster; a one-member cluster may always grow (the restore path).
func TestStrictReconfigTable(t *testing.T) {
	ok, unhealthy := "ok", rpctypes.ErrorDesc(rpctypes.ErrGRPCUnhealthy)
	// want[size][down] for both kinds of add.
	want := map[int][]string{
		1: {ok},
		2: {ok, unhealthy},
		3: {ok, unhealthy, unhealthy},
		4: {ok, ok, unhealthy, unhealthy},
		5: {ok, ok, unhealthy, unhealthy, unhealthy},
	}
	for size := 1; size <= 5; size++ {
		t.Run(fmt.Sprintf("size%d", size), func(t *testing.T) {
			c := testcluster.New(t, testcluster.Config{Size: size})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			leader := c.WaitLeader(t)
			time.Sleep(healthInterval + time.Second)
			cli := clientOf(t, c.Members[leader])
			rest := others(c, leader)
			for down := 0; down < size; down++ {
				if down > 0 {
					rest[down-1].Stop()
				}
				for _, learner := range []bool{true, false} {
					got := tryAdd(ctx, cli, learner, size, down)
					if got != want[size][down] {
						t.Errorf("%d members, %d down, add learner=%v: %s, want %s", size, down, learner, got, want[size][down])
					}
				}
			}
		})
	}
}

// tryAdd adds a member at an address no one listens on and, if that is
// allowed, removes it again (but for the second voter of a one-member
// cluster, which leaves no quorum to remove it with); it returns "ok" or
// the error's message.
func tryAdd(ctx context.Context, cli *clientv3.Client, learner bool, size, down int) string {
	// A URL of its own for every attempt: a member ID is computed from
	// the URLs and the time in seconds, and a removed ID cannot return.
	port := 100 + size*20 + down*2
	if learner {
		port++
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	add := cli.MemberAdd
	if learner {
		add = cli.MemberAddAsLearner
	}
	resp, err := add(ctx, []string{url})
	if err != nil {
		return err.Error()
	}
	if size == 1 && !learner {
		// Two voters, one of them never started: no quorum to remove it
		// with. This is the last attempt on this cluster.
		return "ok"
	}
	if _, err := cli.MemberRemove(ctx, resp.Member.ID); err != nil {
		return "added, but the removal failed: " + err.Error()
	}
	return "ok"
}

// TestStrictReconfigRemove: with one of three members down, removing a
// running member would leave one connected voter of two and is refused
// with etcd's "unhealthy cluster"; removing the down member is allowed.
// Passes against etcd 3.7.3.
func TestStrictReconfigRemove(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := c.WaitLeader(t)
	time.Sleep(healthInterval + time.Second)
	rest := others(c, leader)
	down, up := rest[0], rest[1]
	downID := down.ID()
	down.Stop()
	cli := clientOf(t, c.Members[leader])
	if _, err := cli.MemberRemove(ctx, up.ID()); err == nil || err.Error() != rpctypes.ErrorDesc(rpctypes.ErrGRPCUnhealthy) {
		t.Fatalf("removing a running member with 1 of 3 down: %v; want %s", err, rpctypes.ErrorDesc(rpctypes.ErrGRPCUnhealthy))
	}
	if _, err := cli.MemberRemove(ctx, downID); err != nil {
		t.Fatalf("removing the member that is down: %v", err)
	}
}
