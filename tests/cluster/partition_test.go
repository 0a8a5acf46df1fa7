package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestIsolatedLeader: with the leader cut off from its peers, it can
// neither serve a linearizable read nor commit a write, while the
// majority elects a leader of its own and goes on writing. Once healed,
// every member converges and the old leader holds every write.
func TestIsolatedLeader(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d members", size), func(t *testing.T) {
			c := testcluster.New(t, testcluster.Config{Size: size, Proxy: true})
			ctx := testContext(t)
			putN(t, ctx, c.Client(t), "before/", 50, 4)

			old := c.WaitLeader(t)
			isolated := c.Members[old]
			icli := isolated.Client(t)
			c.Isolate(old)

			// The isolated member fails both, at least by timing out.
			var wg sync.WaitGroup
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if resp, err := icli.Get(rctx, "before/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err == nil {
					t.Errorf("linearizable read on the isolated former leader succeeded (count %d, revision %d)", resp.Count, resp.Header.Revision)
				} else {
					t.Logf("linearizable read on the isolated member: %v", err)
				}
			})
			wg.Go(func() {
				wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if resp, err := icli.Put(wctx, "isolated/k", "v"); err == nil {
					t.Errorf("put on the isolated former leader succeeded at revision %d", resp.Header.Revision)
				} else {
					t.Logf("put on the isolated member: %v", err)
				}
			})

			leader := c.WaitNewLeader(t, old)
			majority := others(c, old)
			l := startLoad(t, clientOf(t, majority...), "during/", 4)
			l.waitMore(t, 100, 20*time.Second)
			wg.Wait()
			l.stop()
			acked, _ := l.snapshot()
			if refused, cut := c.PartitionStats(); refused+cut == 0 {
				t.Error("the proxies neither refused nor cut a peer request")
			}
			t.Logf("%s isolated; %s leads the majority; %d writes acknowledged meanwhile", isolated.Name, c.Members[leader].Name, len(acked))

			c.Heal()
			c.WaitConverged(t)
			// Converged, the old leader serves every write locally.
			resp, err := icli.Get(ctx, "during/", clientv3.WithPrefix(), clientv3.WithSerializable())
			if err != nil {
				t.Fatal(err)
			}
			got := kvMap(resp.Kvs)
			for k, v := range acked {
				if got[k] != v {
					t.Fatalf("the old leader lacks %s=%s after heal (has %q)", k, v, got[k])
				}
			}
			checkAcked(t, ctx, icli, "during/", acked)
		})
	}
}
