package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// An operator who lost two members of three recovers as with etcd: the
// survivor restarts with --force-new-cluster as a one-member cluster that
// keeps every key, value, revision, lease, user and role, takes writes,
// and grows back to three with member add and fresh members started with
// --initial-cluster-state existing. The same body runs against etcd 3.7.3
// and Cairn, with the default --snapshot-count (the log holds everything)
// and with a small one, so that a raft snapshot exists before the force
// and the members added back catch up from a snapshot.
func TestForceNewCluster(t *testing.T) {
	for _, server := range []string{"cairn", "etcd"} {
		for _, v := range []struct {
			name  string
			flags []string
		}{
			{"log", nil},
			{"snapshots", []string{"--snapshot-count=10", "--snapshot-catchup-entries=5"}},
		} {
			t.Run(server+"/"+v.name, func(t *testing.T) {
				var bin string // Cairn (or the reference server the suite runs)
				if server == "etcd" {
					if testcluster.Reference() {
						t.Skip("the suite already runs against the reference server")
					}
					bin = testcluster.EtcdBinary(t)
				}
				forceNewCluster(t, bin, v.flags)
			})
		}
	}
}

func forceNewCluster(t *testing.T, binary string, flags []string) {
	ctx := testContext(t)
	c := testcluster.New(t, testcluster.Config{Size: 3, Binary: binary, Flags: flags})
	cli := clientOf(t, c.Members...)

	// Puts, overwrites, deletes, a transaction and a lease with keys.
	for i := range 40 {
		if _, err := cli.Put(ctx, fmt.Sprintf("k/%02d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 40; i += 3 {
		if _, err := cli.Put(ctx, fmt.Sprintf("k/%02d", i), fmt.Sprintf("w%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "k/1", clientv3.WithPrefix()); err != nil { // k/10..k/19
		t.Fatal(err)
	}
	if _, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("k/00"), ">", 0)).
		Then(clientv3.OpPut("txn/a", "1"), clientv3.OpDelete("k/21")).Commit(); err != nil {
		t.Fatal(err)
	}
	lease, err := cli.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"leased/a", "leased/b"} {
		if _, err := cli.Put(ctx, k, "x", clientv3.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
	}
	// Users and roles (auth left off, so the harness needs no password).
	if _, err := cli.RoleAdd(ctx, "reader"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.RoleGrantPermission(ctx, "reader", "k/", "k0", clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserAdd(ctx, "alice", "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "alice", "reader"); err != nil {
		t.Fatal(err)
	}
	rev := c.WaitConverged(t)
	survivor := c.Members[0]
	before := dumpKVs(t, ctx, survivor, rev)
	t.Logf("%d keys at revision %d", len(before), rev)

	// Quorum lost: two members crash; the survivor is stopped.
	c.Members[1].Kill()
	c.Members[2].Kill()
	survivor.Stop()

	survivor.Flags = append(survivor.Flags, "--force-new-cluster")
	survivor.Start()
	survivor.Flags = slices.DeleteFunc(survivor.Flags, func(f string) bool { return f == "--force-new-cluster" })
	scli := clientOf(t, survivor)
	st, err := survivor.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	self := st.Header.MemberId
	checkMembers(t, ctx, scli, self)
	if got := dumpKVs(t, ctx, survivor, rev); !slices.EqualFunc(got, before, sameKV) {
		t.Fatalf("after --force-new-cluster the keys differ:\n got %v\nwant %v", got, before)
	}
	checkLease(t, ctx, scli, lease.ID, "leased/a", "leased/b")
	checkAuth(t, ctx, scli)

	// It takes writes, at the next revision.
	put, err := scli.Put(ctx, "after/force", "1")
	if err != nil {
		t.Fatalf("write after --force-new-cluster: %v", err)
	}
	if put.Header.Revision != rev+1 {
		t.Fatalf("first write after --force-new-cluster at revision %d, want %d", put.Header.Revision, rev+1)
	}

	// Grow back to three with fresh members, writing in between.
	live := []*testcluster.Member{survivor}
	for i := range 2 {
		m := addBack(t, ctx, c, live)
		live = append(live, m)
		if _, err := clientOf(t, live...).Put(ctx, fmt.Sprintf("after/add%d", i), "1"); err != nil {
			t.Fatalf("write after adding %s: %v", m.Name, err)
		}
	}
	final := c.WaitConverged(t)
	want := dumpKVs(t, ctx, survivor, final)
	for _, m := range live {
		got := dumpKVs(t, ctx, m, final)
		if !slices.EqualFunc(got, want, sameKV) {
			t.Fatalf("member %s differs from %s at revision %d:\n got %v\nwant %v", m.Name, survivor.Name, final, got, want)
		}
		// The keys from before the force are there, unchanged.
		var old []*mvccpb.KeyValue
		for _, kv := range got {
			if !strings.HasPrefix(string(kv.Key), "after/") {
				old = append(old, kv)
			}
		}
		if !slices.EqualFunc(old, before, sameKV) {
			t.Fatalf("member %s: keys from before --force-new-cluster differ:\n got %v\nwant %v", m.Name, old, before)
		}
		checkLease(t, ctx, clientOf(t, m), lease.ID, "leased/a", "leased/b")
		checkAuth(t, ctx, clientOf(t, m))
	}
	ml, err := clientOf(t, live...).MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 3 {
		t.Fatalf("member list has %d members after adding two back, want 3: %v", len(ml.Members), ml.Members)
	}
	if binary == "" && !testcluster.Reference() && len(flags) > 0 {
		// The case this variant is for: the members added back caught
		// up from a raft snapshot, not from the log.
		for _, m := range live[1:] {
			if !strings.Contains(m.Logs(), "restored the store from a snapshot") {
				t.Errorf("member %s did not catch up from a snapshot", m.Name)
			}
		}
	}
	if !strings.Contains(survivor.Logs(), "forcing restart member") {
		t.Errorf("the survivor did not log etcd's %q", "forcing restart member")
	}
}

// addBack adds a fresh member through the live members, starts it with
// --initial-cluster-state existing and returns it.
func addBack(t *testing.T, ctx context.Context, c *testcluster.Cluster, live []*testcluster.Member) *testcluster.Member {
	t.Helper()
	m := c.NewJoiningMember()
	cli := clientOf(t, live...)
	var resp *clientv3.MemberAddResponse
	waitFor(t, 30*time.Second, "member add "+m.Name, func() error {
		var err error
		resp, err = cli.MemberAdd(ctx, []string{m.AdvertisePeerURL()})
		if errors.Is(err, rpctypes.ErrUnhealthy) {
			return err // etcd's --strict-reconfig-check: peers not connected long enough yet
		}
		if err != nil {
			t.Fatalf("member add %s: %v", m.Name, err)
		}
		return nil
	})
	m.Join(testcluster.InitialCluster(resp, m.Name))
	return m
}

// checkMembers fails unless the member list is exactly the member self.
func checkMembers(t *testing.T, ctx context.Context, cli *clientv3.Client, self uint64) {
	t.Helper()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 1 || ml.Members[0].ID != self {
		t.Fatalf("member list after --force-new-cluster: %v, want only %x", ml.Members, self)
	}
}

// checkLease fails unless lease id is still granted with the given keys.
func checkLease(t *testing.T, ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID, keys ...string) {
	t.Helper()
	ttl, err := cli.TimeToLive(ctx, id, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range ttl.Keys {
		got = append(got, string(k))
	}
	slices.Sort(got)
	if ttl.TTL <= 0 || ttl.GrantedTTL != 3600 || !slices.Equal(got, keys) {
		t.Fatalf("lease %x: TTL %d, granted %d, keys %v; want it alive with keys %v", id, ttl.TTL, ttl.GrantedTTL, got, keys)
	}
}

// checkAuth fails unless user alice has role reader, which may read k/.
func checkAuth(t *testing.T, ctx context.Context, cli *clientv3.Client) {
	t.Helper()
	u, err := cli.UserGet(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Roles, []string{"reader"}) {
		t.Fatalf("user alice has roles %v, want [reader]", u.Roles)
	}
	r, err := cli.RoleGet(ctx, "reader")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Perm) != 1 || string(r.Perm[0].Key) != "k/" || string(r.Perm[0].RangeEnd) != "k0" {
		t.Fatalf("role reader has permissions %v, want read on [k/, k0)", r.Perm)
	}
}

// dumpKVs is every key at rev as member m alone serves it (serializable),
// waiting until m has applied rev.
func dumpKVs(t *testing.T, ctx context.Context, m *testcluster.Member, rev int64) []*mvccpb.KeyValue {
	t.Helper()
	cli := clientOf(t, m)
	var kvs []*mvccpb.KeyValue
	waitFor(t, 30*time.Second, "read every key from "+m.Name, func() error {
		resp, err := cli.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithSerializable())
		if err != nil {
			return err
		}
		kvs = resp.Kvs
		return nil
	})
	return kvs
}

func sameKV(a, b *mvccpb.KeyValue) bool {
	return string(a.Key) == string(b.Key) && string(a.Value) == string(b.Value) && a.CreateRevision == b.CreateRevision &&
		a.ModRevision == b.ModRevision && a.Version == b.Version && a.Lease == b.Lease
}

// A member that was removed from its cluster cannot be forced (raft
// would refuse to add it back and the removals would leave no voter):
// it stops at once with a clear error, and its data directory is left
// as it was. Cairn's own refusal (the reference run skips it).
func TestForceNewClusterRefusesARemovedMember(t *testing.T) {
	if testcluster.Reference() {
		t.Skip("Cairn's own refusal")
	}
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx := testContext(t)
	c.WaitLeader(t)
	gone := c.Members[2]
	untilHealthy(t, func() error { _, err := c.Client(t).MemberRemove(ctx, gone.ID()); return err })
	select {
	case <-gone.Exited():
	case <-time.After(30 * time.Second):
		gone.Kill()
	}
	gone.Flags = append(gone.Flags, "--force-new-cluster")
	gone.Launch()
	select {
	case <-gone.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("a removed member forced with --force-new-cluster did not stop")
	}
	if !strings.Contains(gone.Logs(), "was removed from its cluster") {
		t.Fatalf("the removed member's logs:\n%s", gone.Logs())
	}
}
