package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestLearnerPromotedThenMembersRemoved walks a cluster through every
// membership change: a learner is added and catches up on the data
// (which it serves to serializable reads), is promoted once in sync, then
// a follower and finally the leader are removed. The cluster serves
// throughout, and the removed members stop.
func TestLearnerPromotedThenMembersRemoved(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx := testContext(t)
	cli := c.Client(t)
	putN(t, ctx, cli, "k/", 300, 8)
	want := getAll(t, ctx, cli, "k/")

	learner := c.NewJoiningMember()
	var added *clientv3.MemberAddResponse
	reconfigure(t, "add a learner", func() (err error) {
		added, err = cli.MemberAddAsLearner(ctx, []string{learner.AdvertisePeerURL()})
		return err
	})
	if !added.Member.IsLearner || len(added.Members) != 4 {
		t.Fatalf("MemberAddAsLearner: %v; want a learner in a list of 4", added)
	}
	learner.Join(testcluster.InitialCluster(added, learner.Name))
	if st, err := learner.Status(ctx); err != nil || !st.IsLearner {
		t.Errorf("Status of the learner: IsLearner false (or error %v); want true", err)
	}
	lcli := learner.Client(t)
	waitFor(t, 30*time.Second, "the learner has the data", func() error {
		resp, err := lcli.Get(ctx, "k/", clientv3.WithPrefix(), clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if got := kvMap(resp.Kvs); !maps.Equal(got, want) {
			return fmt.Errorf("%d of %d keys", len(got), len(want))
		}
		return nil
	})
	// A learner does not serve linearizable reads.
	if _, err := lcli.Get(ctx, "k/000000"); !errors.Is(err, errNotForLearner) {
		t.Errorf("linearizable read on a learner: %v; want %v", err, errNotForLearner)
	}

	promote(t, ctx, cli, added.Member.ID)
	putN(t, ctx, cli, "k/", 400, 8) // overwrites 300, adds 100
	want = getAll(t, ctx, cli, "k/")

	// Remove a follower other than the new member, then the leader.
	leader := c.WaitLeader(t)
	var follower int
	for i := range c.Members {
		if i != leader && c.Members[i] != learner {
			follower = i
			break
		}
	}
	remove(t, ctx, c, follower)
	leader = c.WaitLeader(t)
	remove(t, ctx, c, leader)
	newLeader := c.WaitNewLeader(t, leader)
	t.Logf("removed %s, then leader %s; %s leads %s", c.Members[follower].Name, c.Members[leader].Name, c.Members[newLeader].Name, memberNames(ctx, t, cli))

	rest := others(c, follower, leader)
	rcli := clientOf(t, rest...)
	putN(t, ctx, rcli, "after/", 100, 4)
	for _, m := range rest {
		got := getAll(t, ctx, m.Client(t), "k/")
		if !maps.Equal(got, want) {
			t.Errorf("%s reads %d keys under k/; want %d", m.Name, len(got), len(want))
		}
		if n := len(getAll(t, ctx, m.Client(t), "after/")); n != 100 {
			t.Errorf("%s reads %d keys under after/; want 100", m.Name, n)
		}
	}
	c.WaitConverged(t)
}

// reconfigure makes a membership change, retrying while the member
// asked refuses it as unsafe: etcd (with its default
// --strict-reconfig-check) refuses a change until its peers have been
// connected for five seconds, so a cluster just started or just changed
// refuses the next change for a while.
func reconfigure(t *testing.T, what string, change func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := change()
		if err == nil {
			return
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getAll(t *testing.T, ctx context.Context, cli *clientv3.Client, prefix string) map[string]string {
	t.Helper()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("read %q: %v", prefix, err)
	}
	return kvMap(resp.Kvs)
}

// promote promotes the learner, retrying while the leader says it is not
// yet in sync.
func promote(t *testing.T, ctx context.Context, cli *clientv3.Client, id uint64) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("promote %x", id), func() error {
		resp, err := cli.MemberPromote(ctx, id)
		if err != nil {
			if errors.Is(err, rpctypes.ErrMemberLearnerNotReady) {
				return err
			}
			t.Fatalf("promote %x: %v", id, err)
		}
		for _, m := range resp.Members {
			if m.ID == id && m.IsLearner {
				t.Fatalf("promote %x: still a learner in the answer %v", id, resp.Members)
			}
		}
		return nil
	})
}

// remove removes member i through a client of the others and waits for
// its process to stop, which a removed member does on its own.
func remove(t *testing.T, ctx context.Context, c *testcluster.Cluster, i int) {
	t.Helper()
	m := c.Members[i]
	ids := c.MemberIDs(t)
	var resp *clientv3.MemberRemoveResponse
	reconfigure(t, fmt.Sprintf("remove %s (%x)", m.Name, ids[i]), func() (err error) {
		resp, err = clientOf(t, others(c, i)...).MemberRemove(ctx, ids[i])
		return err
	})
	for _, pm := range resp.Members {
		if pm.ID == ids[i] {
			t.Fatalf("remove %s: still listed in the answer %v", m.Name, resp.Members)
		}
	}
	select {
	case <-m.Exited():
	case <-time.After(20 * time.Second):
		t.Fatalf("removed member %s still runs 20s later", m.Name)
	}
}

func memberNames(ctx context.Context, t *testing.T, cli *clientv3.Client) []string {
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	var names []string
	for _, m := range resp.Members {
		names = append(names, m.Name)
	}
	return names
}

// errNotForLearner is the error of a linearizable request to a learner,
// as the client hands it back.
var errNotForLearner = rpctypes.Error(rpctypes.ErrGRPCNotSupportedForLearner)
