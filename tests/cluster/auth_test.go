package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// userClient is a client of ms authenticating as user.
func userClient(t *testing.T, user, pw string, ms ...*testcluster.Member) *clientv3.Client {
	t.Helper()
	eps := make([]string, len(ms))
	for i, m := range ms {
		eps[i] = m.Endpoint()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, Username: user, Password: pw, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestAuthReplicatedThroughSnapshotsAndRestarts: auth state is part of the
// replicated state. A follower that missed users and roles made while it
// was down (catching up by snapshot) enforces them; a simple token issued
// by one member works on another; everything survives a kill of every
// member.
func TestAuthReplicatedThroughSnapshotsAndRestarts(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3, Flags: []string{
		"--snapshot-count=100", "--snapshot-catchup-entries=100",
	}})
	ctx := testContext(t)
	admin := c.Client(t)
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	c.SetCredentials("root", "rootpw")
	leader := c.WaitLeader(t)
	lagger := (leader + 1) % len(c.Members)
	c.Members[lagger].Stop()

	root := userClient(t, "root", "rootpw", others(c, lagger)...)
	if _, err := root.RoleAdd(ctx, "writer"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.RoleGrantPermission(ctx, "writer", "a/", "a0", clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserAdd(ctx, "alice", "alicepw"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx, "alice", "writer"); err != nil {
		t.Fatal(err)
	}
	putN(t, ctx, root, "a/", catchUpWrites, 32)
	c.Members[lagger].Start()
	c.WaitConverged(t)

	// The restarted member knows alice and her role.
	alice := userClient(t, "alice", "alicepw", c.Members[lagger])
	if resp, err := alice.Get(ctx, "a/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable()); err != nil || resp.Count != catchUpWrites {
		t.Fatalf("alice's read on the caught-up member: %v %v", resp, err)
	}
	if _, err := alice.Put(ctx, "b/x", "v"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("alice's write outside her role on the caught-up member: %v", err)
	}
	st, err := userClient(t, "root", "rootpw", c.Members[leader]).AuthStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lst, err := userClient(t, "root", "rootpw", c.Members[lagger]).AuthStatus(ctx)
	if err != nil || lst.AuthRevision != st.AuthRevision {
		t.Fatalf("auth revision on the caught-up member %v (%v), on the leader %d", lst, err, st.AuthRevision)
	}

	// A simple token from one member works on another.
	tok := authenticate(t, ctx, c.Members[leader], "alice", "alicepw")
	for i, m := range c.Members {
		conn, err := grpc.NewClient(strings.TrimPrefix(m.Endpoint(), "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		tctx := metadata.AppendToOutgoingContext(ctx, "token", tok)
		_, err = pb.NewKVClient(conn).Range(tctx, &pb.RangeRequest{Key: []byte("a/000001")})
		conn.Close()
		if err != nil {
			t.Fatalf("the leader's token on member %d: %v", i, err)
		}
	}

	// Every member killed and restarted: the auth state is on disk.
	for _, m := range c.Members {
		m.Kill()
	}
	for _, m := range c.Members {
		m.Launch()
	}
	for _, m := range c.Members {
		m.Wait()
	}
	c.WaitLeader(t)
	alice = userClient(t, "alice", "alicepw", c.Members...)
	if _, err := alice.Put(ctx, "a/after", "v"); err != nil {
		t.Fatalf("alice's write after a restart of every member: %v", err)
	}
	if _, err := clientOfAnon(t, c).Get(ctx, "a/after"); err == nil || !strings.Contains(err.Error(), "user name is empty") {
		t.Fatalf("an anonymous read after the restart: %v", err)
	}
}

func authenticate(t *testing.T, ctx context.Context, m *testcluster.Member, user, pw string) string {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(m.Endpoint(), "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := pb.NewAuthClient(conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: user, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Token
}

// clientOfAnon is a client of every member with no credentials.
func clientOfAnon(t *testing.T, c *testcluster.Cluster) *clientv3.Client {
	return clientOf(t, c.Members...)
}
