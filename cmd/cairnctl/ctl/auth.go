package ctl

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (c *ctl) newAuthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "auth <enable or disable>",
		Short:   "Enable or disable authentication. Use `" + cliName + " auth --help` to see subcommands",
		Long:    "Enable or disable authentication",
		GroupID: groupAuthentication,
	}
	cmd.AddCommand(
		c.newAuthEnableCommand(),
		c.newAuthDisableCommand(),
		c.newAuthStatusCommand(),
	)
	return cmd
}

func (c *ctl) newAuthEnableCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "enable",
		Short: "Enables authentication",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return failf(exitBadArgs, "auth enable command does not accept any arguments")
			}
			_, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (struct{}, error) {
				return struct{}{}, enableAuth(ctx, cli)
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "Authentication Enabled")
			return nil
		}),
	}
}

// enableAuth turns authentication on. The server refuses while there is no
// root role; like etcdctl, create it and grant it to the root user (which
// must exist), then try again.
func enableAuth(ctx context.Context, cli *clientv3.Client) error {
	for {
		_, err := cli.AuthEnable(ctx)
		if !errors.Is(err, rpctypes.ErrRootRoleNotExist) {
			return err
		}
		if _, err := cli.RoleAdd(ctx, rootRole); err != nil {
			return err
		}
		if _, err := cli.UserGrantRole(ctx, rootRole, rootRole); err != nil {
			return err
		}
	}
}

func (c *ctl) newAuthDisableCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "disable",
		Short: "Disables authentication",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return failf(exitBadArgs, "auth disable command does not accept any arguments")
			}
			_, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthDisableResponse, error) {
				return cli.AuthDisable(ctx)
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "Authentication Disabled")
			return nil
		}),
	}
}

func (c *ctl) newAuthStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Returns authentication status",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return failf(exitBadArgs, "auth status command does not accept any arguments")
			}
			resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthStatusResponse, error) {
				return cli.AuthStatus(ctx)
			})
			if err != nil {
				return err
			}
			return c.display.AuthStatus(resp)
		}),
	}
}
