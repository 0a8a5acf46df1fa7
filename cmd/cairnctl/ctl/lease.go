package ctl

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func (c *ctl) newLeaseCommand() *cobra.Command {
	return newGroupCommand("lease", "Lease", groupKV,
		c.newLeaseGrantCommand(),
		c.newLeaseRevokeCommand(),
		c.newLeaseTimeToLiveCommand(),
		c.newLeaseListCommand(),
		c.newLeaseKeepAliveCommand(),
	)
}

// leaseFromArg parses a lease ID, which etcdctl prints and reads in hex.
func leaseFromArg(arg string) (clientv3.LeaseID, error) {
	id, err := strconv.ParseInt(arg, 16, 64)
	if err != nil {
		return 0, failf(exitBadArgs, "bad lease ID arg (%w), expecting ID in Hex", err)
	}
	return clientv3.LeaseID(id), nil
}

// leaseFromArgs parses the one lease ID argument; usage is the complaint
// when there is not exactly one.
func leaseFromArgs(args []string, usage string) (clientv3.LeaseID, error) {
	if len(args) != 1 {
		return 0, failf(exitBadArgs, "%s", usage)
	}
	return leaseFromArg(args[0])
}

func (c *ctl) newLeaseGrantCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "grant <ttl>",
		Short: "Creates leases",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "lease grant command needs TTL argument")
			}
			ttl, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return failf(exitBadArgs, "bad TTL (%w)", err)
			}
			resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.LeaseGrantResponse, error) {
				return cli.Grant(ctx, ttl)
			})
			if err != nil {
				return failf(exitError, "failed to grant lease (%w)", err)
			}
			return c.display.Grant(resp)
		}),
	}
}

func (c *ctl) newLeaseRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke <leaseID>",
		Short: "Revokes leases",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			id, err := leaseFromArgs(args, "lease revoke command needs 1 argument")
			if err != nil {
				return err
			}
			resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.LeaseRevokeResponse, error) {
				return cli.Revoke(ctx, id)
			})
			if err != nil {
				return failf(exitError, "failed to revoke lease (%w)", err)
			}
			return c.display.Revoke(id, resp)
		}),
	}
}

func (c *ctl) newLeaseTimeToLiveCommand() *cobra.Command {
	var keys bool
	cmd := &cobra.Command{
		Use:   "timetolive <leaseID> [options]",
		Short: "Get lease information",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "lease timetolive command needs lease ID as argument")
			}
			var opts []clientv3.LeaseOption
			if keys {
				opts = append(opts, clientv3.WithAttachedKeys())
			}
			cli, err := c.newClient(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			id, err := leaseFromArg(args[0])
			if err != nil {
				return err
			}
			// Like etcdctl, no command timeout: the dial timeout and the
			// client's retries bound it.
			resp, err := cli.TimeToLive(context.TODO(), id, opts...)
			if err != nil {
				return fail(exitBadConnection, err)
			}
			return c.display.TimeToLive(resp, keys)
		}),
	}
	cmd.Flags().BoolVar(&keys, "keys", false, "Get keys attached to this lease")
	return cmd
}

func (c *ctl) newLeaseListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List all active leases",
		Run: c.run(func(cmd *cobra.Command, _ []string) error {
			cli, err := c.newClient(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			resp, err := cli.Leases(context.TODO())
			if err != nil {
				return fail(exitBadConnection, err)
			}
			return c.display.Leases(resp)
		}),
	}
}

func (c *ctl) newLeaseKeepAliveCommand() *cobra.Command {
	var once bool
	cmd := &cobra.Command{
		Use:   "keep-alive [options] <leaseID>",
		Short: "Keeps leases alive (renew)",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			id, err := leaseFromArgs(args, "lease keep-alive command needs lease ID as argument")
			if err != nil {
				return err
			}
			cli, err := c.newClient(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			if once {
				resp, err := cli.KeepAliveOnce(context.TODO(), id)
				if err != nil {
					return fail(exitBadConnection, err)
				}
				return c.display.KeepAlive(resp)
			}
			respc, err := cli.KeepAlive(context.TODO(), id)
			if err != nil {
				return fail(exitBadConnection, err)
			}
			for resp := range respc {
				if err := c.display.KeepAlive(resp); err != nil {
					return err
				}
			}
			if _, ok := c.display.(*simplePrinter); ok {
				fmt.Fprintf(c.stdout, "lease %016x expired or revoked.\n", id)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&once, "once", false, "Resets the keep-alive time to its original value and cobrautl.Exits immediately")
	return cmd
}
