package kube

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The users and roles of kubeadmTLSAuth. kube-apiserver has no etcd
// username or password flags: over mutual TLS with --client-cert-auth,
// a request without a token is made by the user named by its client
// certificate's CN, so each kubeadm client certificate gets a user of
// that name with no password.
const (
	// apiserverEtcdUser is the CN of kubeadm's apiserver-etcd-client.
	apiserverEtcdUser = "kube-apiserver-etcd-client"
	// apiserverEtcdRole is kube-apiserver's role: readwrite on every key
	// and nothing else. That is all kube-apiserver needs (its Status,
	// lease and watch-progress calls need only a user) except for its
	// compactor: etcd 3.7 lets only root call Compact (kvServer.Compact
	// checks IsAdminPermitted; 3.6 checked nothing). So kube-apiserver
	// runs with --etcd-compaction-interval=0 and the members compact
	// their own history (--auto-compaction-mode=periodic); the other
	// way is to give kube-apiserver's user the root role.
	apiserverEtcdRole = "kube-apiserver"
	// healthcheckUser is the CN of kubeadm's healthcheck-client, which
	// the test's own client presents. It holds no role: Status, which is
	// all that client asks for, needs only a user.
	healthcheckUser = "kube-etcd-healthcheck-client"
	// rootPassword is root's; the test's rootClient authenticates with it.
	rootPassword = "cairn-kube-root-pw"
)

// enableAuth sets up the users and roles above, and root (password
// rootPassword, role root), with the healthcheck client's certificate
// while auth is still off, then turns auth on.
func (c *cluster) enableAuth(t *testing.T) {
	t.Helper()
	cli, err := c.members[0].client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	noPassword := &clientv3.UserAddOptions{NoPassword: true}
	steps := []struct {
		what string
		do   func() error
	}{
		{"user add root", func() error { _, err := cli.UserAdd(ctx, "root", rootPassword); return err }},
		{"role add root", func() error { _, err := cli.RoleAdd(ctx, "root"); return err }},
		{"user grant-role root root", func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err }},
		{"user add " + apiserverEtcdUser + " --no-password", func() error {
			_, err := cli.UserAddWithOptions(ctx, apiserverEtcdUser, "", noPassword)
			return err
		}},
		{"role add " + apiserverEtcdRole, func() error { _, err := cli.RoleAdd(ctx, apiserverEtcdRole); return err }},
		// etcdctl role grant-permission kube-apiserver readwrite --from-key $'\x00'
		{"role grant-permission " + apiserverEtcdRole + " readwrite --from-key \\x00", func() error {
			_, err := cli.RoleGrantPermission(ctx, apiserverEtcdRole, "\x00", "\x00", clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		}},
		{"user grant-role " + apiserverEtcdUser + " " + apiserverEtcdRole, func() error {
			_, err := cli.UserGrantRole(ctx, apiserverEtcdUser, apiserverEtcdRole)
			return err
		}},
		{"user add " + healthcheckUser + " --no-password", func() error {
			_, err := cli.UserAddWithOptions(ctx, healthcheckUser, "", noPassword)
			return err
		}},
		{"auth enable", func() error { _, err := cli.AuthEnable(ctx); return err }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
	}
	t.Logf("auth enabled: %s (role %s: readwrite on every key), %s (no role), root", apiserverEtcdUser, apiserverEtcdRole, healthcheckUser)
}

// rootClient is a client of the member that authenticates as root with
// its password (over the healthcheck client's TLS configuration: a token
// wins over the certificate's CN).
func (m *member) rootClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{m.clientURL},
		DialTimeout: 2 * time.Second,
		TLS:         m.tls,
		Username:    "root",
		Password:    rootPassword,
		Logger:      zap.NewNop(),
	})
}

// checkAuth checks on every running member, after kube-apiserver has
// run the workflow through its certificate user, that auth is on, that
// kube-apiserver's user holds only its non-root role, that what it wrote
// is there for root to read, that the healthcheck user, with no role,
// may not read it, and that kube-apiserver's user may not compact. With
// compaction (the members started with a
// short --auto-compaction-retention) it also waits until they have
// compacted away the first revisions while kube-apiserver was running.
func (c *cluster) checkAuth(t *testing.T, compaction bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for _, m := range c.members {
		if m.proc.running() {
			m.checkAuth(t, ctx)
		}
	}
	if !compaction {
		return
	}
	root, err := c.members[0].rootClient()
	if err != nil {
		t.Fatalf("root client: %v", err)
	}
	defer root.Close()
	start := time.Now()
	rev := waitCompacted(t, root, 2, opTimeout)
	t.Logf("the members auto-compacted past revision 2 (waited %v)", time.Since(start).Round(time.Millisecond))
	if rev != 0 {
		t.Errorf("compact_rev_key is %d: kube-apiserver's compactor ran, with --etcd-compaction-interval=0", rev)
	}
}

// checkAuth makes cluster.checkAuth's checks on m alone.
func (m *member) checkAuth(t *testing.T, ctx context.Context) {
	t.Helper()
	root, err := m.rootClient()
	if err != nil {
		t.Fatalf("%s: root client: %v", m.name, err)
	}
	defer root.Close()
	st, err := root.AuthStatus(ctx)
	if err != nil || !st.Enabled {
		t.Fatalf("%s: auth status as root: %+v, %v; want enabled", m.name, st, err)
	}
	u, err := root.UserGet(ctx, apiserverEtcdUser)
	if err != nil {
		t.Fatalf("%s: user get %s as root: %v", m.name, apiserverEtcdUser, err)
	}
	if !slices.Equal(u.Roles, []string{apiserverEtcdRole}) {
		t.Errorf("%s: user %s has roles %v, want only %s", m.name, apiserverEtcdUser, u.Roles, apiserverEtcdRole)
	}
	resp, err := root.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("%s: get /registry/ --prefix as root: %v", m.name, err)
	}
	if resp.Count == 0 {
		t.Errorf("%s: get /registry/ --prefix as root: no keys; kube-apiserver wrote nothing", m.name)
	}

	hc, err := m.client()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	_, err = hc.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("%s: get /registry/ --prefix as %s (no role): %v, want %v", m.name, healthcheckUser, err, rpctypes.ErrPermissionDenied)
	}
	t.Logf("%s: root reads %d keys under /registry/ written by %s; %s is denied them", m.name, resp.Count, apiserverEtcdUser, healthcheckUser)

	// Why kube-apiserver's compactor is off: its user may not compact.
	api, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.clientURL},
		DialTimeout: 2 * time.Second,
		TLS:         clientTLS(t, m.pki, apiserverEtcdCert, apiserverEtcdKey),
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	if _, err := api.Compact(ctx, 1); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("%s: compact as %s: %v, want %v (etcd 3.7 lets only root compact)", m.name, apiserverEtcdUser, err, rpctypes.ErrPermissionDenied)
	}
}
