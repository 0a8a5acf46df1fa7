package testcluster_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestClientProxyCutsAndHeals: a client of a member through its client
// proxy is served, hears nothing while the proxy is cut (while the
// member still serves direct clients), and is served again once healed.
func TestClientProxyCutsAndHeals(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{ClientProxy: true})
	m := c.Members[0]
	if eps := c.ProxiedEndpoints(); len(eps) != 1 || eps[0] != m.ClientProxyURL || m.ClientProxyURL == m.ClientURL {
		t.Fatalf("ProxiedEndpoints = %v; want [%s], not the client URL %s", eps, m.ClientProxyURL, m.ClientURL)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            c.ProxiedEndpoints(),
		DialTimeout:          2 * time.Second,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := cli.Put(ctx, "k", "v")
		return err
	}
	if err := put(10 * time.Second); err != nil {
		t.Fatalf("put through the proxy: %v", err)
	}

	c.CutClient(0)
	if err := put(time.Second); err == nil {
		t.Fatal("put through a cut proxy succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.Client(t).Put(ctx, "k", "direct"); err != nil {
		t.Fatalf("put straight to the member while its proxy is cut: %v", err)
	}

	c.HealClient(0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := put(2 * time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("put through the healed proxy: %v", err)
		}
	}
}
