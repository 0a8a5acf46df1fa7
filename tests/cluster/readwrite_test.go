package cluster

import (
	"fmt"
	"maps"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestWritesThroughEveryMemberReadTheSameEverywhere: writes sent to each
// member (followers forward them to the leader) are all read back, with
// the same revisions, by a linearizable read from every member.
func TestWritesThroughEveryMemberReadTheSameEverywhere(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d members", size), func(t *testing.T) {
			c := testcluster.New(t, testcluster.Config{Size: size})
			ctx := testContext(t)
			clis := make([]*clientv3.Client, size)
			for i, m := range c.Members {
				clis[i] = m.Client(t)
			}
			want := make(map[string]string)
			var lastRev int64
			for round := range 10 {
				for i, cli := range clis {
					k, v := fmt.Sprintf("k/%d/%02d", i, round), fmt.Sprintf("from %s", c.Members[i].Name)
					resp, err := cli.Put(ctx, k, v)
					if err != nil {
						t.Fatalf("put %s through %s: %v", k, c.Members[i].Name, err)
					}
					if resp.Header.Revision <= lastRev {
						t.Fatalf("put through %s at revision %d, after a put at %d", c.Members[i].Name, resp.Header.Revision, lastRev)
					}
					lastRev = resp.Header.Revision
					want[k] = v
				}
			}
			var first *clientv3.GetResponse
			for i, cli := range clis {
				resp, err := cli.Get(ctx, "k/", clientv3.WithPrefix())
				if err != nil {
					t.Fatalf("linearizable read from %s: %v", c.Members[i].Name, err)
				}
				if resp.Header.Revision < lastRev {
					t.Errorf("linearizable read from %s at revision %d, before the last acknowledged write (%d)", c.Members[i].Name, resp.Header.Revision, lastRev)
				}
				if got := kvMap(resp.Kvs); !maps.Equal(got, want) {
					t.Errorf("%s reads %d keys %v; want %d keys %v", c.Members[i].Name, len(got), got, len(want), want)
				}
				if first == nil {
					first = resp
					continue
				}
				if len(resp.Kvs) != len(first.Kvs) {
					continue // reported above
				}
				for j, kv := range resp.Kvs {
					if f := first.Kvs[j]; kv.ModRevision != f.ModRevision || kv.CreateRevision != f.CreateRevision || kv.Version != f.Version {
						t.Errorf("%s: %s at c%d m%d v%d; %s has it at c%d m%d v%d", c.Members[i].Name, kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version,
							c.Members[0].Name, f.CreateRevision, f.ModRevision, f.Version)
					}
				}
			}
			c.WaitConverged(t)
		})
	}
}
