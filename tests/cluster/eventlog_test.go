package cluster

import (
	"io"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestEventLogLines: each notable event OPERATIONS lists under "Events in
// the log" is logged with its message when it happens: a leader change
// (on the new leader and on a follower), a member added and removed, a
// compaction, an alarm raised and disarmed, a snapshot sent to a client.
func TestEventLogLines(t *testing.T) {
	if testcluster.Reference() {
		t.Skip("Cairn's own log lines (etcd words some differently)")
	}
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx := testContext(t)
	old := c.WaitLeader(t)
	c.Members[old].Kill()
	lead := c.WaitNewLeader(t, old)
	follower := 3 - old - lead
	c.Members[old].Start() // strict reconfig wants every voter up to add one
	c.WaitConverged(t)
	cli := c.Client(t)

	// The leader counts a restarted peer as up once it has been
	// connected for a few seconds (etcd's rule).
	var add *clientv3.MemberAddResponse
	untilHealthy(t, func() (err error) { add, err = cli.MemberAddAsLearner(ctx, []string{loopback(t)}); return err })
	if _, err := cli.MemberRemove(ctx, add.Member.ID); err != nil {
		t.Fatal(err)
	}
	put, err := cli.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, put.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	leaderCli := c.Members[lead].Client(t)
	alarm := &pb.AlarmMember{MemberID: c.Members[lead].ID(), Alarm: pb.AlarmType_NOSPACE}
	if _, err := pb.NewMaintenanceClient(leaderCli.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: alarm.MemberID, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	if _, err := leaderCli.AlarmDisarm(ctx, (*clientv3.AlarmMember)(alarm)); err != nil {
		t.Fatal(err)
	}
	rc, err := leaderCli.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()

	want := map[int][]string{
		lead:     {"server: became leader", "added member", "removed member", "mvcc: finished compaction", "alarm raised", "alarm disarmed", "sending database snapshot to client", "sent database snapshot to client"},
		follower: {"server: leader changed", "added member", "removed member", "alarm raised", "alarm disarmed"},
	}
	for i, msgs := range want {
		m := c.Members[i]
		for _, msg := range msgs {
			quoted := `"msg":"` + msg + `"`
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(m.Logs(), quoted); time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("member %s never logged %q", m.Name, msg)
					break
				}
			}
		}
	}
}
