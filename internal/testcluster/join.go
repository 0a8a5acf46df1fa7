package testcluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Adding a member to a running cluster takes two steps in etcd's model,
// and a test may want to do either itself (with etcdctl, say): tell the
// cluster (MemberAdd or MemberAddAsLearner with the new member's
// advertised peer URL), then start the new member with
// --initial-cluster-state existing and an --initial-cluster naming the
// members the cluster now has. NewJoiningMember and Join are the two
// halves; AddMember does both with the cluster's client.

// NewJoiningMember returns a new member that is not part of the cluster
// yet: a name, data directory and ports of its own (and a proxy, with
// Config.Proxy), appended to c.Members, not started. Tell the cluster
// about it with its AdvertisePeerURL, then Join.
func (c *Cluster) NewJoiningMember() *Member {
	c.t.Helper()
	bin, err := binary(c.cfg.BuildTags)
	if c.cfg.Binary != "" {
		bin, err = c.cfg.Binary, nil // the same server as the others
	}
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.addMember(fmt.Sprintf("m%d", len(c.Members)), bin); err != nil {
		c.t.Fatal(err)
	}
	m := c.Members[len(c.Members)-1]
	if err := c.pickPorts([]*Member{m}); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// Join starts a member the cluster has been told about, with
// --initial-cluster-state existing and the given --initial-cluster (see
// InitialCluster), and waits until it serves (a learner: serializable
// reads).
func (m *Member) Join(initialCluster string) {
	m.t.Helper()
	m.InitialCluster = initialCluster
	m.ClusterState = "existing"
	m.Start()
	if m.c.net != nil {
		if err := m.c.knowIDs(); err != nil {
			m.t.Fatal(err)
		}
	}
}

// AddMember adds a new member to the cluster through the cluster's
// client, as a learner if asked, then starts it with Join and returns it.
func (c *Cluster) AddMember(t testing.TB, learner bool) *Member {
	t.Helper()
	m := c.NewJoiningMember()
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	add := cli.MemberAdd
	if learner {
		add = cli.MemberAddAsLearner
	}
	var resp *clientv3.MemberAddResponse
	for {
		var err error
		resp, err = add(ctx, []string{m.AdvertisePeerURL()})
		if err == nil {
			break
		}
		// etcd refuses changes until its peers have been connected a
		// while (--strict-reconfig-check); that passes.
		if !errors.Is(err, rpctypes.ErrUnhealthy) || ctx.Err() != nil {
			t.Fatalf("testcluster: add member %s (%s): %v", m.Name, m.AdvertisePeerURL(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.setID(resp.Member.ID)
	m.Join(InitialCluster(resp, m.Name))
	return m
}

// InitialCluster is the --initial-cluster value for the member that a
// MemberAdd answered: every member of the answer's list by name and
// peer URL, with the new member (which has no name yet) called name.
// etcdctl member add prints the same as ETCD_INITIAL_CLUSTER.
func InitialCluster(resp *clientv3.MemberAddResponse, name string) string {
	var parts []string
	for _, pm := range resp.Members {
		n := pm.Name
		if pm.ID == resp.Member.ID {
			n = name
		}
		for _, u := range pm.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}
