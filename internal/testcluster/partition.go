package testcluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Partition splits the peer network: members in different groups can no
// longer reach each other, and members named in no group form one more
// group together. It replaces any partition before it, and cuts the
// peer connections it forbids at once. Client ports are untouched, so a
// test can still ask a cut-off member what it thinks.
//
// It needs Config.Proxy, and the IDs of the members named, which it
// learns from the member list if need be.
func (c *Cluster) Partition(groups ...[]int) {
	c.t.Helper()
	if c.net == nil {
		c.t.Fatal(errNoProxy)
	}
	groupOf := make([]int, len(c.Members))
	for i := range groupOf {
		groupOf[i] = len(groups) // the group of the members named nowhere
	}
	seen := make(map[int]bool)
	for g, members := range groups {
		for _, i := range members {
			if i < 0 || i >= len(c.Members) {
				c.t.Fatalf("testcluster: Partition: no member %d (the cluster has %d)", i, len(c.Members))
			}
			if seen[i] {
				c.t.Fatalf("testcluster: Partition: member %d is in two groups", i)
			}
			seen[i] = true
			groupOf[i] = g
		}
	}
	if err := c.knowIDs(); err != nil {
		c.t.Fatal(err)
	}
	c.net.partition(groupOf)
}

// Isolate cuts member i off from every other member.
func (c *Cluster) Isolate(i int) {
	c.t.Helper()
	c.Partition([]int{i})
}

// Heal ends any partition: every member can reach every other again.
func (c *Cluster) Heal() {
	c.t.Helper()
	if c.net == nil {
		c.t.Fatal(errNoProxy)
	}
	c.net.heal()
}

// PartitionStats says how many peer requests the proxies refused and how
// many in-flight ones partitions cut, so a test can show a partition
// was real.
func (c *Cluster) PartitionStats() (refused, cut int) {
	if c.net == nil {
		return 0, 0
	}
	return c.net.stats()
}

// knowIDs learns member IDs unless every member that has run has one.
func (c *Cluster) knowIDs() error {
	missing := false
	for _, m := range c.Members {
		if m.ID() == 0 && m.everStarted() {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.learnIDs(ctx)
}

// MemberIDs returns the ID of every member, in the order of c.Members
// (0 for one the cluster has not heard of), asking a running member for
// the member list.
func (c *Cluster) MemberIDs(t testing.TB) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.learnIDs(ctx); err != nil {
		t.Fatal(err)
	}
	ids := make([]uint64, len(c.Members))
	for i, m := range c.Members {
		ids[i] = m.ID()
	}
	return ids
}

// learnIDs asks running members for the member list (a serializable
// one, which a cut-off member also answers) until one answers, and
// records each member's ID, matching members by advertised peer URL.
func (c *Cluster) learnIDs(ctx context.Context) error {
	var lastErr error
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		list, err := m.memberList(ctx)
		if err != nil {
			lastErr = err
			continue
		}
		c.recordIDs(list.Members)
		return nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no member is running")
	}
	return fmt.Errorf("testcluster: learn member IDs: %w", lastErr)
}

func (c *Cluster) recordIDs(list []*etcdserverpb.Member) {
	for _, pm := range list {
		if m := c.byPeerURL(pm.PeerURLs); m != nil {
			m.setID(pm.ID)
		}
	}
}

// byPeerURL is the member advertising one of urls, or nil.
func (c *Cluster) byPeerURL(urls []string) *Member {
	for _, m := range c.Members {
		for _, u := range urls {
			if u == m.AdvertisePeerURL() {
				return m
			}
		}
	}
	return nil
}

func (m *Member) memberList(ctx context.Context) (*clientv3.MemberListResponse, error) {
	cli, err := m.adminClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx, clientv3.WithSerializable())
	if err != nil {
		return nil, fmt.Errorf("member list from %s: %w", m.Name, err)
	}
	return list, nil
}
