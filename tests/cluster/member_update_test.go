package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestMemberUpdateChangesPeerURLs: MemberUpdate replaces a member's peer
// URLs in the replicated list (here a learner that never started), a URL
// another member uses is refused, and an unknown ID gets "member not
// found".
func TestMemberUpdateChangesPeerURLs(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One member for every call, so each sees the previous one applied.
	cli := clientOf(t, c.Members[0])
	var added *clientv3.MemberAddResponse
	var err error
	for {
		// etcd refuses changes for a few seconds after peers connect.
		added, err = cli.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:7"})
		if !errors.Is(err, rpctypes.ErrUnhealthy) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.MemberUpdate(ctx, added.Member.ID, []string{"http://127.0.0.1:8"}); err != nil {
		t.Fatal(err)
	}
	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range list.Members {
		if m.ID == added.Member.ID {
			found = true
			if len(m.PeerURLs) != 1 || m.PeerURLs[0] != "http://127.0.0.1:8" {
				t.Fatalf("after MemberUpdate the member has peer URLs %v, want [http://127.0.0.1:8]", m.PeerURLs)
			}
		}
	}
	if !found {
		t.Fatal("updated member missing from the list")
	}
	if _, err := cli.MemberUpdate(ctx, added.Member.ID, list.Members[0].PeerURLs); !errors.Is(err, rpctypes.ErrPeerURLExist) && list.Members[0].ID != added.Member.ID {
		t.Fatalf("updating to another member's peer URL: %v, want %v", err, rpctypes.ErrPeerURLExist)
	}
	if _, err := cli.MemberUpdate(ctx, 12345, []string{"http://127.0.0.1:9"}); !errors.Is(err, rpctypes.ErrMemberNotFound) {
		t.Fatalf("updating an unknown member: %v, want %v", err, rpctypes.ErrMemberNotFound)
	}
	if _, err := cli.MemberRemove(ctx, added.Member.ID); err != nil {
		t.Fatal(err)
	}
}
