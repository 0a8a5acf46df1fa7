package testcluster_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestIsolatedLeaderIsReplacedAndRejoins: with the leader of three cut
// off, the other two elect a new leader; once healed, the old leader
// follows it.
func TestIsolatedLeaderIsReplacedAndRejoins(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3, Proxy: true})
	for i, id := range c.MemberIDs(t) {
		if id == 0 {
			t.Fatalf("member %d: no ID learnt", i)
		}
	}
	old := c.WaitLeader(t)
	c.Isolate(old)
	leader := c.WaitNewLeader(t, old)
	if refused, cut := c.PartitionStats(); refused+cut == 0 {
		t.Errorf("the partition neither refused nor cut a peer request")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Members[leader].Client(t).Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put on the majority's leader: %v", err)
	}

	c.Heal()
	oldID, leaderID := c.Members[old].ID(), c.Members[leader].ID()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.Members[old].Status(ctx)
		if err == nil && st.Leader != 0 && st.Leader != oldID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old leader %x not following after heal (status %v, %v); new leader was %x", oldID, st, err, leaderID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l := c.WaitLeader(t); l == old {
		t.Fatalf("the old leader %s leads again after heal", c.Members[old].Name)
	}
	c.WaitConverged(t)
}

// TestAddLearnerJoinsRunningCluster: a learner added through AddMember
// starts with --initial-cluster-state existing and gets the data; being
// no voter, cutting it off leaves the cluster writable and Leader
// unmoved.
func TestAddLearnerJoinsRunningCluster(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 1, Proxy: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Client(t).Put(ctx, "before", "v"); err != nil {
		t.Fatal(err)
	}
	m := c.AddMember(t, true)
	if m.ID() == 0 || len(c.Members) != 2 || c.Members[1] != m {
		t.Fatalf("added member: ID %x, cluster of %d", m.ID(), len(c.Members))
	}
	resp, err := m.Client(t).Get(ctx, "before", clientv3.WithSerializable())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("serializable read on the learner: %v, %v", resp, err)
	}
	c.Isolate(1)
	if _, err := c.Members[0].Client(t).Put(ctx, "during", "v"); err != nil {
		t.Fatalf("put with the learner cut off: %v", err)
	}
	if l := c.Leader(t); l != 0 {
		t.Fatalf("leader %d; want 0", l)
	}
	c.Heal()
	c.WaitConverged(t)
}
