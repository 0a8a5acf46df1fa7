package cluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/testcluster"
	"github.com/cairnkv/cairn/internal/testpki"
	"github.com/cairnkv/cairn/tlsconfig"
)

// tlsPKI is one CA, a member certificate every member serves on both
// ports (SANs 127.0.0.1 and localhost, so etcd's peer SAN check passes)
// and a client certificate.
func tlsPKI(t *testing.T) (*testpki.CA, *testcluster.TLS) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "ca1")
	testpki.WriteBundle(t, filepath.Join(dir, "ca.crt"), ca)
	member := ca.Issue("member", "member", testpki.Opts{})
	client := ca.Issue("client", "client", testpki.Opts{NoSANs: true})
	return ca, &testcluster.TLS{CAFile: filepath.Join(dir, "ca.crt"), CertFile: member.CertFile, KeyFile: member.KeyFile,
		ClientCertFile: client.CertFile, ClientKeyFile: client.KeyFile}
}

// reloadingClient is a client whose certificate and CA bundle are re-read
// at each handshake (tlsconfig), as an operator's rotating client would.
func reloadingClient(t *testing.T, c *testcluster.Cluster, tf *testcluster.TLS) *clientv3.Client {
	m, err := tlsconfig.Load(tlsconfig.Info{CertFile: tf.ClientCertFile, KeyFile: tf.ClientKeyFile, TrustedCAFile: tf.CAFile,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: m.ClientConfig(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestTLSClusterLeaderKilledUnderLoad: a 3-member cluster with mutual TLS
// on client and peer URLs loses its leader under load, elects another,
// takes the member back, and keeps every acknowledged write.
func TestTLSClusterLeaderKilledUnderLoad(t *testing.T) {
	_, tf := tlsPKI(t)
	c := testcluster.New(t, testcluster.Config{Size: 3, TLS: tf})
	ctx := testContext(t)
	l := startLoad(t, c.Client(t), "tls/", 8)
	l.waitMore(t, 100, 20*time.Second)
	old := c.WaitLeader(t)
	c.Members[old].Kill()
	c.WaitNewLeader(t, old)
	l.waitMore(t, 100, 15*time.Second)
	c.Members[old].Start()
	l.waitMore(t, 100, 15*time.Second)
	l.stop()
	acked, failed := l.snapshot()
	t.Logf("%d writes acknowledged, %d failed", len(acked), failed)
	checkAcked(t, ctx, c.Client(t), "tls/", acked)
	c.WaitConverged(t)
}

// TestTLSCARotationUnderLoad rotates the CA of a running 3-member cluster
// with no restart: the bundle gains the new CA, the member and client
// certificates move to it, the old CA leaves the bundle. Not one request of
// the load fails, and at the end the old CA's certificates are refused.
func TestTLSCARotationUnderLoad(t *testing.T) {
	ca1, tf := tlsPKI(t)
	c := testcluster.New(t, testcluster.Config{Size: 3, TLS: tf})
	ctx := testContext(t)
	l := startLoad(t, reloadingClient(t, c, tf), "rot/", 4)
	l.waitMore(t, 50, 20*time.Second)

	dir := filepath.Dir(tf.CAFile)
	ca2 := testpki.NewCA(t, dir, "ca2")
	// Keep the old client certificate aside, to check its refusal later.
	oldClient := filepath.Join(dir, "old-client.crt")
	b, err := os.ReadFile(tf.ClientCertFile)
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteAtomic(t, oldClient, b)
	oldKey := filepath.Join(dir, "old-client.key")
	b, _ = os.ReadFile(tf.ClientKeyFile)
	testpki.WriteAtomic(t, oldKey, b)

	steps := []func(){
		func() { testpki.WriteBundle(t, tf.CAFile, ca1, ca2) },
		func() { ca2.Issue("member", "member", testpki.Opts{}) },
		func() { ca2.Issue("client", "client", testpki.Opts{NoSANs: true}) },
		func() { testpki.WriteBundle(t, tf.CAFile, ca2) },
	}
	for _, step := range steps {
		step()
		// A fresh connection now sees the new material on every member.
		for _, m := range c.Members {
			cli := m.Client(t)
			if _, err := cli.Put(ctx, "probe", m.Name); err != nil {
				t.Fatalf("fresh connection to %s during rotation: %v", m.Name, err)
			}
		}
		l.waitMore(t, 30, 15*time.Second)
	}
	l.stop()
	acked, failed := l.snapshot()
	if failed != 0 {
		t.Fatalf("%d requests failed during the rotation (last: %v)", failed, l.last)
	}
	checkAcked(t, ctx, c.Client(t), "rot/", acked)

	// Peer handshakes under the new-only bundle: the Raft streams opened
	// before the rotation are still up, so a follower is killed and
	// restarted, and its peers (whose listeners and dialers reloaded the
	// bundle) must take it back over fresh connections both ways.
	f := (c.WaitLeader(t) + 1) % len(c.Members)
	c.Members[f].Kill()
	after, err := c.Client(t).Put(ctx, "rot/after-restart", "1")
	if err != nil {
		t.Fatal(err)
	}
	c.Members[f].Start()
	fcli := c.Members[f].Client(t)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		g, err := fcli.Get(ctx, "rot/after-restart", clientv3.WithSerializable())
		if err == nil && len(g.Kvs) == 1 && g.Kvs[0].ModRevision == after.Header.Revision {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member %s did not rejoin over the rotated peer certificates: %v %v", c.Members[f].Name, g, err)
		}
	}

	// The old CA's client certificate is refused now.
	old := &testcluster.TLS{CAFile: tf.CAFile, ClientCertFile: oldClient, ClientKeyFile: oldKey}
	tc, err := old.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: tc, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err == nil {
		defer cli.Close()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := cli.Get(cctx, "probe"); err == nil {
			t.Fatal("the old CA's client certificate is still accepted")
		}
	}
}
