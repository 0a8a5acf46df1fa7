package ctl

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The maintenance commands that act on members rather than keys: alarm,
// defrag and move-leader. Endpoint and snapshot have files of their own.

func (c *ctl) newAlarmCommand() *cobra.Command {
	return newGroupCommand("alarm", "Alarm", groupClusterMaintenance,
		c.newAlarmSubcommand("disarm", "Disarms all alarms",
			func(ctx context.Context, cli *clientv3.Client) (*clientv3.AlarmResponse, error) {
				// No member and no alarm type: every alarm.
				return cli.AlarmDisarm(ctx, &clientv3.AlarmMember{})
			}),
		c.newAlarmSubcommand("list", "Lists all alarms",
			func(ctx context.Context, cli *clientv3.Client) (*clientv3.AlarmResponse, error) {
				return cli.AlarmList(ctx)
			}),
	)
}

// newAlarmSubcommand is "alarm list" or "alarm disarm": no arguments, one
// request, and the alarms it returns printed.
func (c *ctl) newAlarmSubcommand(name, short string, call func(context.Context, *clientv3.Client) (*clientv3.AlarmResponse, error)) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return failf(exitBadArgs, "alarm %s command accepts no arguments", name)
			}
			resp, err := request(c, cmd, call)
			if err != nil {
				return err
			}
			return c.display.Alarm(resp)
		}),
	}
}

// newDefragCommand defragments each endpoint in turn. Its report is plain
// text whatever --write-out says, as in etcdctl: a line on stdout per
// member done, on stderr per member failed, and exit code 1 if any failed.
func (c *ctl) newDefragCommand() *cobra.Command {
	var cluster bool
	cmd := &cobra.Command{
		Use:     "defrag",
		Short:   "Defragments the storage of the etcd members with given endpoints",
		GroupID: groupClusterMaintenance,
		Run: c.run(func(cmd *cobra.Command, _ []string) error {
			failed := false
			err := c.eachEndpoint(cmd, &cluster, func(ctx context.Context, cli *clientv3.Client, ep string) {
				start := time.Now()
				_, err := cli.Defragment(ctx, ep)
				took := time.Since(start)
				if err != nil {
					failed = true
					fmt.Fprintf(c.stderr, "Failed to defragment etcd member[%s]. took %s. (%v)\n", ep, took, err)
					return
				}
				fmt.Fprintf(c.stdout, "Finished defragmenting etcd member[%s]. took %s\n", ep, took)
			})
			if err != nil {
				return err
			}
			if failed {
				return &exitErr{code: exitError}
			}
			return nil
		}),
	}
	// A flag of defrag's own, unlike endpoint's inherited --cluster, so
	// ETCDCTL_CLUSTER does not set it (etcdctl reports it unrecognized).
	cmd.PersistentFlags().BoolVar(&cluster, "cluster", false, "use all endpoints from the cluster member list")
	return cmd
}

func (c *ctl) newMoveLeaderCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "move-leader <transferee-member-id>",
		Short:   "Transfers leadership to another etcd cluster member.",
		GroupID: groupClusterMaintenance,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "move-leader command needs 1 argument")
			}
			target, err := strconv.ParseUint(args[0], 16, 64)
			if err != nil {
				return fail(exitBadArgs, err)
			}
			spec, err := c.clientConfig(cmd)
			if err != nil {
				return err
			}
			// etcdctl reads the endpoints back from a client made with all
			// of them; doing the same keeps its errors for an empty list.
			cli, err := connect(spec)
			if err != nil {
				return err
			}
			eps := cli.Endpoints()
			cli.Close()

			ctx, cancel := c.commandCtx()
			defer cancel()
			leader, resp, err := moveLeader(ctx, eps, target, func(ep string) (leaderClient, error) {
				spec.Endpoints = []string{ep}
				cli, err := connect(spec)
				if err != nil {
					return nil, err
				}
				return cli, nil
			})
			if err != nil {
				return err
			}
			return c.display.MoveLeader(leader, target, resp)
		}),
	}
}

// leaderClient is what move-leader needs of a client connected to one
// endpoint. *clientv3.Client is one; tests use a fake.
type leaderClient interface {
	Status(ctx context.Context, endpoint string) (*clientv3.StatusResponse, error)
	MoveLeader(ctx context.Context, transfereeID uint64) (*clientv3.MoveLeaderResponse, error)
	Close() error
}

// moveLeader asks the endpoints in turn, each through its own client from
// dial, for their status until one reports that it is the leader, and asks
// that one to hand leadership to target; it returns the old leader's ID.
// Only the leader can transfer leadership, hence the search. As in
// etcdctl, ctx bounds all the requests together, and an endpoint that
// cannot answer ends the search with its error.
func moveLeader(ctx context.Context, eps []string, target uint64, dial func(ep string) (leaderClient, error)) (uint64, *clientv3.MoveLeaderResponse, error) {
	var (
		leaderCli leaderClient
		leader    uint64
	)
	for _, ep := range eps {
		cli, err := dial(ep)
		if err != nil {
			return 0, nil, err
		}
		st, err := cli.Status(ctx, ep)
		if err != nil {
			cli.Close()
			return 0, nil, fail(exitError, err)
		}
		if st.Header.GetMemberId() == st.Leader {
			leaderCli, leader = cli, st.Leader
			break
		}
		cli.Close()
	}
	if leaderCli == nil {
		return 0, nil, failf(exitBadArgs, "no leader endpoint given at %v", eps)
	}
	defer leaderCli.Close()
	resp, err := leaderCli.MoveLeader(ctx, target)
	if err != nil {
		return 0, nil, fail(exitError, err)
	}
	return leader, resp, nil
}
