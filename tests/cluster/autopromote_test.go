package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestAutoPromoteLearnersUnderLoad: with --auto-promote-learners the
// leader promotes a learner added to a live cluster once it has caught up
// (etcd's 90% rule), while writes go on, with no one calling
// MemberPromote; it logs it and counts it in
// etcd_server_learner_promote_successes. Cairn only.
func TestAutoPromoteLearnersUnderLoad(t *testing.T) {
	if testcluster.Reference() {
		t.Skip("--auto-promote-learners is Cairn's")
	}
	c := testcluster.New(t, testcluster.Config{Size: 3, Flags: []string{"--auto-promote-learners"}})
	ctx := testContext(t)
	cli := c.Client(t)
	putN(t, ctx, cli, "pre/", 2000, 8)

	loadCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; loadCtx.Err() == nil; i++ {
			_, _ = cli.Put(loadCtx, fmt.Sprintf("load/%d", i), "v")
		}
	})
	learner := c.AddMember(t, true)
	var voter bool
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := cli.MemberList(ctx)
		if err != nil {
			continue
		}
		for _, m := range resp.Members {
			if m.ID == learner.ID() && !m.IsLearner {
				voter = true
			}
		}
		if voter {
			break
		}
	}
	stop()
	wg.Wait()
	if !voter {
		t.Fatal("the learner was not promoted within 30 s")
	}
	// The new voter holds everything written before it joined.
	lcli := learner.Client(t)
	resp, err := lcli.Get(ctx, "pre/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 2000 {
		t.Fatalf("the promoted member has %d of the 2000 keys", resp.Count)
	}
	leader := c.WaitLeader(t)
	if v := value(scrape(t, ctx, c.Members[leader]), "etcd_server_learner_promote_successes"); v != 1 {
		t.Errorf("etcd_server_learner_promote_successes on the leader is %v, want 1", v)
	}
	if !strings.Contains(c.Members[leader].Logs(), "auto-promoted learner") {
		t.Error("the leader did not log the promotion")
	}
}
