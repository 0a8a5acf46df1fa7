package ctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func (c *ctl) newMemberCommand() *cobra.Command {
	return newGroupCommand("member", "Membership", groupClusterMaintenance,
		c.newMemberAddCommand(),
		c.newMemberRemoveCommand(),
		c.newMemberUpdateCommand(),
		c.newMemberListCommand(),
		c.newMemberPromoteCommand(),
	)
}

// memberIDFromArgs parses the one hex member ID argument.
func memberIDFromArgs(args []string) (uint64, error) {
	if len(args) != 1 {
		return 0, failf(exitBadArgs, "member ID is not provided")
	}
	id, err := strconv.ParseUint(args[0], 16, 64)
	if err != nil {
		return 0, failf(exitBadArgs, "bad member ID arg (%w), expecting ID in Hex", err)
	}
	return id, nil
}

func (c *ctl) newMemberAddCommand() *cobra.Command {
	var (
		peerURLs  string
		isLearner bool
	)
	cmd := &cobra.Command{
		Use:   "add <memberName> [options]",
		Short: "Adds a member into the cluster",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return fail(exitBadArgs, errors.New("member name not provided"))
			}
			if len(args) > 1 {
				msg := "too many arguments"
				for _, s := range args {
					if strings.HasPrefix(strings.ToLower(s), "http") {
						msg += fmt.Sprintf(`, did you mean --peer-urls=%s`, s)
					}
				}
				return fail(exitBadArgs, errors.New(msg))
			}
			name := args[0]
			if peerURLs == "" {
				return fail(exitBadArgs, errors.New("member peer urls not provided"))
			}
			urls := strings.Split(peerURLs, ",")
			resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberAddResponse, error) {
				if isLearner {
					return cli.MemberAddAsLearner(ctx, urls)
				}
				return cli.MemberAdd(ctx, urls)
			})
			if err != nil {
				return err
			}
			if err := c.display.MemberAdd(resp); err != nil {
				return err
			}
			if _, ok := c.display.(*simplePrinter); ok {
				c.printMemberEnv(name, peerURLs, resp)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma separated peer URLs for the new member.")
	cmd.Flags().BoolVar(&isLearner, "learner", false, "indicates if the new member is raft learner")
	return cmd
}

// printMemberEnv prints the environment the new member must start with.
func (c *ctl) printMemberEnv(name, peerURLs string, resp *clientv3.MemberAddResponse) {
	var conf []string
	for _, m := range resp.Members {
		for _, u := range m.PeerURLs {
			n := m.Name
			if m.ID == resp.Member.ID {
				n = name
			}
			conf = append(conf, fmt.Sprintf("%s=%s", n, u))
		}
	}
	fmt.Fprint(c.stdout, "\n")
	fmt.Fprintf(c.stdout, "ETCD_NAME=%q\n", name)
	fmt.Fprintf(c.stdout, "ETCD_INITIAL_CLUSTER=%q\n", strings.Join(conf, ","))
	fmt.Fprintf(c.stdout, "ETCD_INITIAL_ADVERTISE_PEER_URLS=%q\n", peerURLs)
	fmt.Fprint(c.stdout, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
}

func (c *ctl) newMemberRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove <memberID>",
		Short: "Removes a member from the cluster",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			id, err := memberIDFromArgs(args)
			if err != nil {
				return err
			}
			resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberRemoveResponse, error) {
				return cli.MemberRemove(ctx, id)
			})
			if err != nil {
				return err
			}
			return c.display.MemberRemove(id, resp)
		}),
	}
}

func (c *ctl) newMemberUpdateCommand() *cobra.Command {
	var peerURLs string
	cmd := &cobra.Command{
		Use:   "update <memberID> [options]",
		Short: "Updates a member in the cluster",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			id, err := memberIDFromArgs(args)
			if err != nil {
				return err
			}
			if peerURLs == "" {
				return failf(exitBadArgs, "member peer urls not provided")
			}
			resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberUpdateResponse, error) {
				return cli.MemberUpdate(ctx, id, strings.Split(peerURLs, ","))
			})
			if err != nil {
				return err
			}
			return c.display.MemberUpdate(id, resp)
		}),
	}
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma separated peer URLs for the updated member.")
	return cmd
}

func (c *ctl) newMemberListCommand() *cobra.Command {
	var consistency string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Lists all members in the cluster",
		Long: `When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
`,
		Run: c.run(func(cmd *cobra.Command, _ []string) error {
			// etcdctl names get's --consistency default, not this flag's
			// value, in the error; scripts may match it.
			s, err := serializable(consistency, "l")
			if err != nil {
				return err
			}
			var opts []clientv3.OpOption
			if s {
				opts = append(opts, clientv3.WithSerializable())
			}
			resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberListResponse, error) {
				return cli.MemberList(ctx, opts...)
			})
			if err != nil {
				return err
			}
			return c.display.MemberList(resp)
		}),
	}
	cmd.Flags().StringVar(&consistency, "consistency", "l", "Linearizable(l) or Serializable(s)")
	return cmd
}

func (c *ctl) newMemberPromoteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "promote <memberID>",
		Short: "Promotes a non-voting member in the cluster",
		Long: `Promotes a non-voting learner member to a voting one in the cluster.
`,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			id, err := memberIDFromArgs(args)
			if err != nil {
				return err
			}
			resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberPromoteResponse, error) {
				return cli.MemberPromote(ctx, id)
			})
			if err != nil {
				return err
			}
			return c.display.MemberPromote(id, resp)
		}),
	}
}
