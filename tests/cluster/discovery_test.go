package cluster

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// registry is etcd's v3 discovery key prefix.
const registry = "/_etcd/registry"

// TestDiscoveryBootstrapsClusters: 3- and 5-member clusters bootstrap
// through v3 discovery (--discovery-endpoints, --discovery-token) against
// a one-member discovery service, with etcd's key layout: every member
// registered under the token, one cluster of the right size, the same
// member list on every member. Against etcd 3.7.3 (the service and the
// members are then etcd) the test passes too.
func TestDiscoveryBootstrapsClusters(t *testing.T) {
	svc := testcluster.New(t, testcluster.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scli := svc.Client(t)
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("size%d", size), func(t *testing.T) {
			token := fmt.Sprintf("tok-%d-%d", size, time.Now().UnixNano())
			if _, err := scli.Put(ctx, path.Join(registry, token, "_config/size"), fmt.Sprint(size)); err != nil {
				t.Fatal(err)
			}
			c := testcluster.New(t, testcluster.Config{Size: size, NoInitialCluster: true, Flags: []string{
				"--discovery-endpoints=" + svc.Members[0].ClientURL, "--discovery-token=" + token,
			}})
			c.WaitLeader(t)
			resp, err := scli.Get(ctx, path.Join(registry, token, "members")+"/", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Kvs) != size {
				t.Fatalf("%d registrations under the token, want %d", len(resp.Kvs), size)
			}
			var want string
			for i, m := range c.Members {
				ml, err := m.Client(t).MemberList(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, mm := range ml.Members {
					names = append(names, mm.Name+"="+strings.Join(mm.PeerURLs, ","))
				}
				got := strings.Join(sortedCopy(names), " ")
				if i == 0 {
					want = got
				} else if got != want {
					t.Fatalf("%s's member list %s differs from %s's %s", m.Name, got, c.Members[0].Name, want)
				}
				if len(ml.Members) != size {
					t.Fatalf("%s lists %d members, want %d", m.Name, len(ml.Members), size)
				}
			}
		})
	}
}

// TestDiscoveryRefusesAFullCluster: a member that comes to a token whose
// cluster is already complete fails with etcd's "discovery: cluster is
// full" and, unlike etcd, leaves no registration behind; one whose size
// key is missing fails with "size key not found", one whose size is not a
// number with "size key is bad".
func TestDiscoveryRefusesAFullCluster(t *testing.T) {
	svc := testcluster.New(t, testcluster.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	scli := svc.Client(t)
	token := fmt.Sprintf("full-%d", time.Now().UnixNano())
	if _, err := scli.Put(ctx, path.Join(registry, token, "_config/size"), "1"); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--discovery-endpoints=" + svc.Members[0].ClientURL, "--discovery-token=" + token}
	testcluster.New(t, testcluster.Config{NoInitialCluster: true, Flags: flags}).WaitLeader(t)

	late := startFailing(t, flags)
	if !strings.Contains(late, "discovery: cluster is full") {
		t.Fatalf("a member of a full cluster said:\n%s", late)
	}
	resp, err := scli.Get(ctx, path.Join(registry, token, "members")+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 1 && !testcluster.Reference() {
		t.Fatalf("%d registrations under a token of size 1 after a refused member, want 1", resp.Count)
	}
	missing := startFailing(t, []string{"--discovery-endpoints=" + svc.Members[0].ClientURL, "--discovery-token=no-such-token"})
	if !strings.Contains(missing, "discovery: size key not found") {
		t.Fatalf("a member of an unknown token said:\n%s", missing)
	}
	bad := fmt.Sprintf("bad-%d", time.Now().UnixNano())
	if _, err := scli.Put(ctx, path.Join(registry, bad, "_config/size"), "three"); err != nil {
		t.Fatal(err)
	}
	if out := startFailing(t, []string{"--discovery-endpoints=" + svc.Members[0].ClientURL, "--discovery-token=" + bad}); !strings.Contains(out, "discovery: size key is bad") {
		t.Fatalf("a member of a token whose size is not a number said:\n%s", out)
	}
}

// startFailing runs a new member (its own data dir and loopback ports)
// with flags and returns its output, failing the test unless it exits
// with an error within 30 s.
func startFailing(t *testing.T, flags []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer, client := loopback(t), loopback(t)
	args := append([]string{"--name", "late", "--data-dir", filepath.Join(t.TempDir(), "late"),
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--listen-client-urls", client, "--advertise-client-urls", client}, flags...)
	out, err := exec.CommandContext(ctx, testcluster.Binary(t), args...).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("member did not fail (%v):\n%s", err, out)
	}
	return string(out)
}

// loopback is an http URL on a free loopback port.
func loopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestDiscoveryAcrossCairnAndEtcd: a Cairn cluster bootstraps through an
// etcd 3.7.3 discovery service, and an etcd cluster through a Cairn one:
// the key layout is the same.
func TestDiscoveryAcrossCairnAndEtcd(t *testing.T) {
	if testcluster.Reference() {
		t.Skip("runs Cairn and etcd side by side")
	}
	etcd := testcluster.EtcdBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct{ name, service, members string }{
		{"cairn through etcd", etcd, ""},
		{"etcd through cairn", "", etcd},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			svc := testcluster.New(t, testcluster.Config{Binary: c.service})
			token := fmt.Sprintf("x-%d", time.Now().UnixNano())
			if _, err := svc.Client(t).Put(ctx, path.Join(registry, token, "_config/size"), "3"); err != nil {
				t.Fatal(err)
			}
			cl := testcluster.New(t, testcluster.Config{Size: 3, Binary: c.members, NoInitialCluster: true, Flags: []string{
				"--discovery-endpoints=" + svc.Members[0].ClientURL, "--discovery-token=" + token,
			}})
			cl.WaitLeader(t)
			ml, err := cl.Client(t).MemberList(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ml.Members) != 3 {
				t.Fatalf("%d members, want 3", len(ml.Members))
			}
		})
	}
}

// TestDiscoveryOverTLSWithAuth: the discovery service serves mutual TLS
// with auth on, and a 3-member cluster bootstraps through it with
// --discovery-cacert/-cert/-key and --discovery-user/-password as a user
// whose role grants only the registry prefix. A wrong password fails
// the member with etcd's authentication error and registers nothing.
// Against etcd 3.7.3 the test passes too.
func TestDiscoveryOverTLSWithAuth(t *testing.T) {
	_, tf := tlsPKI(t)
	svc := testcluster.New(t, testcluster.Config{TLS: tf})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scli := svc.Client(t)
	token := fmt.Sprintf("tls-%d", time.Now().UnixNano())
	if _, err := scli.Put(ctx, path.Join(registry, token, "_config/size"), "3"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := scli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := scli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := scli.RoleAdd(ctx, "disc"); return err },
		func() error {
			_, err := scli.RoleGrantPermission(ctx, "disc", registry+"/", clientv3.GetPrefixRangeEnd(registry+"/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := scli.UserAdd(ctx, "disco", "discopw"); return err },
		func() error { _, err := scli.UserGrantRole(ctx, "disco", "disc"); return err },
		func() error { _, err := scli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	svc.SetCredentials("root", "rootpw")
	flags := []string{"--discovery-endpoints=" + svc.Members[0].ClientURL, "--discovery-token=" + token,
		"--discovery-cacert=" + tf.CAFile, "--discovery-cert=" + tf.ClientCertFile, "--discovery-key=" + tf.ClientKeyFile}

	// A wrong password: the member stops with the service's refusal.
	if out := startFailing(t, append(slices.Clone(flags), "--discovery-user=disco", "--discovery-password=wrong")); !strings.Contains(out, "authentication failed, invalid user ID or password") {
		t.Fatalf("a member with a wrong discovery password said:\n%s", out)
	}

	c := testcluster.New(t, testcluster.Config{Size: 3, NoInitialCluster: true,
		Flags: append(slices.Clone(flags), "--discovery-user=disco", "--discovery-password=discopw")})
	c.WaitLeader(t)
	resp, err := svc.Client(t).Get(ctx, path.Join(registry, token, "members")+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 3 {
		t.Fatalf("%d registrations under the token, want 3", len(resp.Kvs))
	}
	ml, err := c.Client(t).MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list: %v %v", ml, err)
	}
}
