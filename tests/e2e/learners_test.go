package e2e

import (
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestMaxLearners: a cluster takes one learner by default and refuses a
// second with etcd's "too many learner members in cluster";
// --max-learners=2 takes two. Passes against etcd 3.7.3.
func TestMaxLearners(t *testing.T) {
	_, cli, ctx := start(t)
	if _, err := cli.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:11"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:12"}); !errors.Is(err, rpctypes.ErrTooManyLearners) {
		t.Fatalf("a second learner: %v, want %v", err, rpctypes.ErrTooManyLearners)
	}
	_, cli2, _ := startAnother(t, "--max-learners=2")
	for _, u := range []string{"http://127.0.0.1:13", "http://127.0.0.1:14"} {
		if _, err := cli2.MemberAddAsLearner(ctx, []string{u}); err != nil {
			t.Fatalf("with --max-learners=2, learner %s: %v", u, err)
		}
	}
}
