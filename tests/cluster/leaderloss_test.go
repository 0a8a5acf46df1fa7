package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// While the leader is gone, a request that only the leader can answer
// must wait for the next one, or fail with one of etcd's retryable
// errors: never code Unknown, never a transport error naming a peer URL.
// A lease holder that keeps renewing must not lose its lease because the
// store lost its leader.

// leaderLossErrors are the answers etcd gives to a request that ran out
// of time while the cluster had no leader.
var leaderLossErrors = []error{
	rpctypes.ErrGRPCNoLeader,
	rpctypes.ErrGRPCTimeout,
	rpctypes.ErrGRPCTimeoutDueToLeaderFail,
	rpctypes.ErrGRPCTimeoutDueToConnectionLost,
	rpctypes.ErrGRPCLeaderChanged,
}

// checkLeaderLossError fails unless err is nil or one of
// leaderLossErrors (or, where notFound, "requested lease not found": a
// retried revocation whose first attempt took effect).
func checkLeaderLossError(t *testing.T, what string, err error, notFound bool) {
	t.Helper()
	if err == nil {
		return
	}
	code, msg := status.Code(err), err.Error()
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code, msg = ee.Code(), ee.Error()
	}
	if notFound && msg == rpctypes.ErrLeaseNotFound.Error() {
		return
	}
	for _, want := range leaderLossErrors {
		if code == status.Code(want) && msg == status.Convert(want).Message() {
			t.Logf("%s: %v (allowed)", what, err)
			return
		}
	}
	t.Errorf("%s while the leader was gone: code %v %q; want success or one of etcd's leader-loss errors", what, code, msg)
	if code == codes.Unknown || strings.Contains(msg, "http://") || strings.Contains(msg, "dial tcp") {
		t.Errorf("%s: an internal error reached the client", what)
	}
}

// TestLeaderOnlyRequestsThroughLeaderKills: kill -9 the leader, and at
// once keep leases alive, ask their TimeToLive, revoke one and read
// linearizably through each follower; three times over. Every call
// succeeds once a new leader is elected or fails with etcd's error; a
// lease with a 10 s TTL renewed every second never expires.
func TestLeaderOnlyRequestsThroughLeaderKills(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx := testContext(t)
	all := c.Client(t)

	held, err := all.Grant(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := all.Put(ctx, "held", "v", clientv3.WithLease(held.ID)); err != nil {
		t.Fatal(err)
	}
	// The holder renews once a second through whichever member answers,
	// and notes any answer saying the lease is gone.
	hctx, stopHolder := context.WithCancel(ctx)
	var holder sync.WaitGroup
	var lost error
	holder.Go(func() {
		for hctx.Err() == nil {
			rctx, cancel := context.WithTimeout(hctx, 15*time.Second)
			resp, err := all.KeepAliveOnce(rctx, held.ID)
			cancel()
			switch {
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				lost = err
				return
			case err == nil && resp.TTL <= 0:
				lost = fmt.Errorf("keep-alive answered TTL %d", resp.TTL)
				return
			}
			select {
			case <-hctx.Done():
			case <-time.After(time.Second):
			}
		}
	})

	for round := range 3 {
		leader := c.WaitLeader(t)
		followers := others(c, leader)
		var leases []clientv3.LeaseID
		for range followers {
			l, err := all.Grant(ctx, 30)
			if err != nil {
				t.Fatal(err)
			}
			leases = append(leases, l.ID)
		}
		revoked, err := all.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		fclis := make([]*clientv3.Client, len(followers))
		for i, f := range followers {
			fclis[i] = clientOf(t, f)
			// Connected before the kill, so what is measured is the
			// member's answer and not the client's dial.
			if _, err := fclis[i].Get(ctx, "warm", clientv3.WithSerializable()); err != nil {
				t.Fatal(err)
			}
		}

		c.Members[leader].Kill()
		began := time.Now()
		var wg sync.WaitGroup
		for i, f := range followers {
			cli, id := fclis[i], leases[i]
			who := fmt.Sprintf("round %d, follower %s", round, f.Name)
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				resp, err := cli.KeepAliveOnce(rctx, id)
				checkLeaderLossError(t, who+": keep-alive", err, false)
				if err == nil && resp.TTL != 30 {
					t.Errorf("%s: keep-alive answered TTL %d; want 30", who, resp.TTL)
				}
				if err == nil {
					t.Logf("%s: keep-alive answered after %v", who, time.Since(began).Round(time.Millisecond))
				}
			})
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				resp, err := cli.TimeToLive(rctx, id)
				checkLeaderLossError(t, who+": TimeToLive", err, false)
				if err == nil && (resp.GrantedTTL != 30 || resp.TTL <= 0) {
					t.Errorf("%s: TimeToLive %d of %d; want a live lease of 30 s", who, resp.TTL, resp.GrantedTTL)
				}
			})
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				_, err := cli.Get(rctx, "held")
				checkLeaderLossError(t, who+": linearizable read", err, false)
			})
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				_, err := cli.Leases(rctx)
				checkLeaderLossError(t, who+": leases", err, false)
			})
		}
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, err := fclis[0].Revoke(rctx, revoked.ID)
			checkLeaderLossError(t, fmt.Sprintf("round %d: revoke", round), err, true)
		})
		wg.Wait()
		c.WaitNewLeader(t, leader)
		c.Members[leader].Start()
		c.WaitConverged(t)
	}

	stopHolder()
	holder.Wait()
	if lost != nil {
		t.Fatalf("the lease renewed every second was lost across the leader kills: %v", lost)
	}
	ttl, err := all.TimeToLive(ctx, held.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL <= 0 {
		t.Fatalf("renewed lease: TimeToLive %d; want alive", ttl.TTL)
	}
	if resp, err := all.Get(ctx, "held"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the renewed lease's key: %v, %v; want it there", resp, err)
	}
}

// TestRequireLeaderOnAMemberWithoutLeader: on a follower cut off from
// its peers, a request marked WithRequireLeader is refused with
// "etcdserver: no leader" and a watch stream so marked is ended with it
// (after a few election timeouts, as etcd), so the client can move to a
// member that has a leader. Unmarked watches stay.
func TestRequireLeaderOnAMemberWithoutLeader(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3, Proxy: true})
	ctx := testContext(t)
	leader := c.WaitLeader(t)
	fi := (leader + 1) % 3
	cli := clientOf(t, c.Members[fi])
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	marked := cli.Watch(clientv3.WithRequireLeader(ctx), "k")
	plain := cli.Watch(ctx, "k")
	// Both watches exist before the cut.
	if _, err := cli.Put(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []clientv3.WatchChan{marked, plain} {
		select {
		case r := <-w:
			if r.Err() != nil || len(r.Events) != 1 {
				t.Fatalf("before the cut: %v %v", r.Events, r.Err())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event before the cut")
		}
	}

	c.Isolate(fi)
	cut := time.Now()
	select {
	case r, ok := <-marked:
		if ok && r.Err() != nil {
			wantErrIs(t, r.Err(), rpctypes.ErrNoLeader)
		} else if ok {
			t.Fatalf("require-leader watch: %v; want it ended with no leader", r)
		}
		t.Logf("require-leader watch ended %v after the cut", time.Since(cut).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("the require-leader watch on the isolated member did not end within 30 s")
	}
	// By now the member knows it has no leader: marked requests are
	// refused at once.
	// (A raw connection: clientv3 would retry the refusal until its
	// deadline.)
	conn, err := grpc.NewClient(strings.TrimPrefix(c.Members[fi].Endpoint(), "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), 5*time.Second)
	_, err = pb.NewKVClient(conn).Range(rctx, &pb.RangeRequest{Key: []byte("k"), Serializable: true})
	cancel()
	wantErrIs(t, err, rpctypes.ErrGRPCNoLeader)
	select {
	case r := <-plain:
		t.Fatalf("the unmarked watch ended while isolated: %v", r.Err())
	default:
	}
	c.Heal()
}

// wantErrIs fails unless err carries etcd error want's message.
func wantErrIs(t *testing.T, err, want error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want.Error()) {
		t.Fatalf("got %v; want %q", err, want.Error())
	}
}
