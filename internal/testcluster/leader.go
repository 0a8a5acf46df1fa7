package testcluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Bounds of the waits below: far above an election (a second with the
// servers' defaults) or a catch-up, so that hitting one means a fault.
const (
	leaderTimeout   = 20 * time.Second
	convergeTimeout = 30 * time.Second
	// statusTimeout bounds one question to one member: a member that is
	// down or cut off should not hold up the look at the others.
	statusTimeout = time.Second
)

// Leader returns the index in c.Members of the member that leads now: one
// whose Status says it leads, and whom a majority of the voting members
// (by its own member list) name as leader. It fails the test if there is
// none at this moment; WaitLeader waits for one.
func (c *Cluster) Leader(t testing.TB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*statusTimeout)
	defer cancel()
	i, err := c.findLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// WaitLeader waits until a leader is agreed as Leader describes, and
// returns its index.
func (c *Cluster) WaitLeader(t testing.TB) int {
	t.Helper()
	return c.waitLeader(t, func(int) bool { return true })
}

// WaitNewLeader waits until a member other than old leads, as Leader
// describes, and returns its index: the end of an election that a
// crash or partition of member old began.
func (c *Cluster) WaitNewLeader(t testing.TB, old int) int {
	t.Helper()
	return c.waitLeader(t, func(i int) bool { return i != old })
}

func (c *Cluster) waitLeader(t testing.TB, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(leaderTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*statusTimeout)
		i, err := c.findLeader(ctx)
		cancel()
		if err == nil && ok(i) {
			return i
		}
		if err == nil {
			err = fmt.Errorf("member %s still leads", c.Members[i].Name)
		}
		if time.Now().After(deadline) {
			t.Fatalf("testcluster: no leader as wanted within %v: %v", leaderTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memberStatus is one member's answer to Status.
type memberStatus struct {
	m   *Member
	st  *clientv3.StatusResponse
	err error
}

// statuses asks every running member for its status, all at once.
func (c *Cluster) statuses(ctx context.Context) []memberStatus {
	var out []memberStatus
	for _, m := range c.Members {
		if m.Running() {
			out = append(out, memberStatus{m: m})
		}
	}
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, statusTimeout)
			defer cancel()
			out[i].st, out[i].err = out[i].m.Status(ctx)
		})
	}
	wg.Wait()
	return out
}

// findLeader is one look for the leader Leader describes.
func (c *Cluster) findLeader(ctx context.Context) (int, error) {
	sts := c.statuses(ctx)
	for _, s := range sts {
		if s.err != nil || s.st.Leader == 0 || s.st.Leader != s.st.Header.MemberId {
			continue
		}
		list, err := s.m.memberList(ctx)
		if err != nil {
			continue
		}
		c.recordIDs(list.Members)
		voters := make(map[uint64]bool)
		for _, pm := range list.Members {
			if !pm.IsLearner {
				voters[pm.ID] = true
			}
		}
		agree := 0
		for _, o := range sts {
			if o.err == nil && voters[o.st.Header.MemberId] && o.st.Leader == s.st.Leader {
				agree++
			}
		}
		if voters[s.st.Leader] && agree > len(voters)/2 {
			return s.m.index, nil
		}
	}
	return -1, fmt.Errorf("testcluster: no leader agreed by a majority: %s", describeStatuses(sts))
}

func describeStatuses(sts []memberStatus) string {
	if len(sts) == 0 {
		return "no member is running"
	}
	parts := make([]string, len(sts))
	for i, s := range sts {
		switch {
		case s.err != nil:
			parts[i] = fmt.Sprintf("%s: %v", s.m.Name, s.err)
		case s.st.Leader == 0:
			parts[i] = fmt.Sprintf("%s (%x): no leader", s.m.Name, s.st.Header.MemberId)
		default:
			parts[i] = fmt.Sprintf("%s (%x): leader %x, term %d", s.m.Name, s.st.Header.MemberId, s.st.Leader, s.st.RaftTerm)
		}
	}
	return strings.Join(parts, "; ")
}

// WaitConverged waits until every member of the leader's member list has
// applied the leader's latest revision, then checks that they agree on
// the key-value history at that revision, failing the test if one
// differs, is not running or does not catch up within convergeTimeout. Voters
// are compared by Maintenance.HashKV; learners, which etcd does not let
// hash, by a serializable read of every key at that revision. It
// returns the revision. Call it once writes have stopped.
func (c *Cluster) WaitConverged(t testing.TB) int64 {
	t.Helper()
	leader := c.Members[c.WaitLeader(t)]
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	cli, err := leader.adminClient()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "testcluster-converge-probe")
	if err != nil {
		t.Fatalf("testcluster: read the revision at leader %s: %v", leader.Name, err)
	}
	rev := resp.Header.Revision
	list, err := leader.memberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.recordIDs(list.Members)

	type hash struct {
		m    *Member
		resp *clientv3.HashKVResponse
	}
	var (
		hashes   []hash
		learners []*Member
	)
	for _, pm := range list.Members {
		m := c.byPeerURL(pm.PeerURLs)
		if m == nil {
			t.Fatalf("testcluster: member %x (%v) of the member list is none of the cluster's", pm.ID, pm.PeerURLs)
		}
		if !m.Running() {
			t.Fatalf("testcluster: WaitConverged: member %s is not running", m.Name)
		}
		if pm.IsLearner {
			learners = append(learners, m)
			continue
		}
		h, err := m.hashKVAt(ctx, rev)
		if err != nil {
			t.Fatalf("testcluster: member %s did not reach revision %d: %v", m.Name, rev, err)
		}
		hashes = append(hashes, hash{m, h})
	}
	for _, h := range hashes[1:] {
		if h.resp.Hash != hashes[0].resp.Hash || h.resp.CompactRevision != hashes[0].resp.CompactRevision {
			var b strings.Builder
			for _, h := range hashes {
				fmt.Fprintf(&b, "\n  %s: hash %d, compact revision %d, current revision %d", h.m.Name, h.resp.Hash, h.resp.CompactRevision, h.resp.Header.Revision)
			}
			t.Fatalf("testcluster: members disagree at revision %d:%s", rev, b.String())
		}
	}
	if len(learners) == 0 {
		return rev
	}
	want, err := leader.rangeAt(ctx, rev)
	if err != nil {
		t.Fatalf("testcluster: read every key at revision %d from leader %s: %v", rev, leader.Name, err)
	}
	for _, m := range learners {
		got, err := m.rangeAt(ctx, rev)
		if err != nil {
			t.Fatalf("testcluster: learner %s did not reach revision %d: %v", m.Name, rev, err)
		}
		if diff := diffKVs(got, want); diff != "" {
			t.Fatalf("testcluster: learner %s disagrees with leader %s at revision %d: %s", m.Name, leader.Name, rev, diff)
		}
	}
	return rev
}

// rangeAt polls a serializable read of every key at rev until the member
// has applied rev.
func (m *Member) rangeAt(ctx context.Context, rev int64) ([]*mvccpb.KeyValue, error) {
	cli, err := m.adminClient()
	if err != nil {
		return nil, err
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := cli.Get(rctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(rev), clientv3.WithSerializable())
		cancel()
		if err == nil {
			return resp.Kvs, nil
		}
		if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, errNotForLearner) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// diffKVs describes the first difference between two ranges, or is "".
func diffKVs(got, want []*mvccpb.KeyValue) string {
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if string(g.Key) != string(w.Key) || string(g.Value) != string(w.Value) ||
			g.CreateRevision != w.CreateRevision || g.ModRevision != w.ModRevision || g.Version != w.Version || g.Lease != w.Lease {
			return fmt.Sprintf("key %d is %q=%q (c%d m%d v%d); want %q=%q (c%d m%d v%d)", i,
				g.Key, g.Value, g.CreateRevision, g.ModRevision, g.Version, w.Key, w.Value, w.CreateRevision, w.ModRevision, w.Version)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d keys; want %d", len(got), len(want))
	}
	return ""
}

// hashKVAt polls the member's HashKV at rev until it has applied rev.
func (m *Member) hashKVAt(ctx context.Context, rev int64) (*clientv3.HashKVResponse, error) {
	cli, err := m.adminClient()
	if err != nil {
		return nil, err
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, err := cli.HashKV(rctx, m.ClientURL, rev)
		cancel()
		if err == nil {
			return h, nil
		}
		if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, errNotForLearner) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errNotForLearner is etcd's refusal of an RPC a learner does not serve.
var errNotForLearner = rpctypes.Error(rpctypes.ErrGRPCNotSupportedForLearner)
