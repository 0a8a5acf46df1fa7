package ctl

import (
	"context"
	"errors"
	"reflect"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fakeMember answers move-leader's requests as one endpoint of a cluster
// whose leader is leader, and records what it was asked.
type fakeMember struct {
	id, leader uint64
	statusErr  error
	moveErr    error
	log        *[]string
}

func (m *fakeMember) Status(_ context.Context, ep string) (*clientv3.StatusResponse, error) {
	*m.log = append(*m.log, "status "+ep)
	if m.statusErr != nil {
		return nil, m.statusErr
	}
	return &clientv3.StatusResponse{Header: &pb.ResponseHeader{MemberId: m.id}, Leader: m.leader}, nil
}

func (m *fakeMember) MoveLeader(_ context.Context, target uint64) (*clientv3.MoveLeaderResponse, error) {
	*m.log = append(*m.log, "move-leader")
	if m.moveErr != nil {
		return nil, m.moveErr
	}
	return &clientv3.MoveLeaderResponse{Header: &pb.ResponseHeader{MemberId: m.id}}, nil
}

func (m *fakeMember) Close() error {
	*m.log = append(*m.log, "close")
	return nil
}

func TestMoveLeaderAsksOnlyTheLeader(t *testing.T) {
	errDown := errors.New("context deadline exceeded")
	for _, tc := range []struct {
		name    string
		members map[string]*fakeMember // by endpoint
		eps     []string
		leader  uint64
		err     string
		code    int
		log     []string
	}{
		{
			name:    "leader is second",
			members: map[string]*fakeMember{"a": {id: 1, leader: 2}, "b": {id: 2, leader: 2}, "c": {id: 3, leader: 2}},
			eps:     []string{"a", "b", "c"},
			leader:  2,
			log:     []string{"status a", "close", "status b", "move-leader", "close"},
		},
		{
			name:    "no leader among the endpoints",
			members: map[string]*fakeMember{"a": {id: 1, leader: 2}, "c": {id: 3, leader: 2}},
			eps:     []string{"a", "c"},
			err:     "no leader endpoint given at [a c]",
			code:    exitBadArgs,
			log:     []string{"status a", "close", "status c", "close"},
		},
		{
			name:    "an endpoint that cannot answer ends the search",
			members: map[string]*fakeMember{"a": {statusErr: errDown}, "b": {id: 2, leader: 2}},
			eps:     []string{"a", "b"},
			err:     "context deadline exceeded",
			code:    exitError,
			log:     []string{"status a", "close"},
		},
		{
			name:    "the leader refuses",
			members: map[string]*fakeMember{"a": {id: 1, leader: 1, moveErr: errors.New("etcdserver: bad leader transferee")}},
			eps:     []string{"a"},
			err:     "etcdserver: bad leader transferee",
			code:    exitError,
			log:     []string{"status a", "move-leader", "close"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log []string
			dial := func(ep string) (leaderClient, error) {
				m := tc.members[ep]
				m.log = &log
				return m, nil
			}
			leader, resp, err := moveLeader(context.Background(), tc.eps, 3, dial)
			if tc.err == "" {
				if err != nil || leader != tc.leader || resp.Header.GetMemberId() != tc.leader {
					t.Errorf("got leader %d, resp %v, err %v; want leader %d", leader, resp, err, tc.leader)
				}
			} else if err == nil || err.Error() != tc.err || exitCode(err) != tc.code {
				t.Errorf("got err %v (code %d), want %q (code %d)", err, exitCode(err), tc.err, tc.code)
			}
			if !reflect.DeepEqual(log, tc.log) {
				t.Errorf("requests %q, want %q", log, tc.log)
			}
		})
	}
}

func TestMoveLeaderDialFailureStopsTheSearch(t *testing.T) {
	want := fail(exitBadConnection, errors.New("at least one Endpoint is required in client config"))
	_, _, err := moveLeader(context.Background(), []string{"a"}, 3, func(string) (leaderClient, error) { return nil, want })
	if !errors.Is(err, want) || exitCode(err) != exitBadConnection {
		t.Fatalf("got %v (code %d), want the dial error", err, exitCode(err))
	}
}
