package ctl

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func (c *ctl) newUserCommand() *cobra.Command {
	return newGroupCommand("user", "User", groupAuthentication,
		c.newUserAddCommand(),
		c.newUserDeleteCommand(),
		c.newUserGetCommand(),
		c.newUserListCommand(),
		c.newUserPasswdCommand(),
		c.newUserGrantRoleCommand(),
		c.newUserRevokeRoleCommand(),
	)
}

// untimedRequest is request without --command-timeout. etcdctl's user and
// role commands wait for as long as the client does, which against an
// unreachable cluster is until they are interrupted; scripts that rely on
// --command-timeout not applying to them behave the same with cairnctl.
func untimedRequest[R any](c *ctl, cmd *cobra.Command, call func(context.Context, *clientv3.Client) (R, error)) (R, error) {
	cli, err := c.newClient(cmd)
	if err != nil {
		var zero R
		return zero, err
	}
	defer cli.Close()
	return call(context.TODO(), cli)
}

// newPassword reads a new user's password before anything is sent: asked
// twice on the terminal with interactive (the default), else the first
// word on stdin, as etcdctl reads it (fmt.Scanf("%s")).
func (c *ctl) newPassword(user string, interactive bool) (string, error) {
	if !interactive {
		var password string
		_, _ = fmt.Fscanf(c.stdin, "%s", &password)
		return password, nil
	}
	first, err := askPassword(c.stdin, c.stdout, fmt.Sprintf("Password of %s: ", user))
	if err != nil {
		return "", failf(exitBadArgs, "failed to ask password: %w", err)
	}
	if first == "" {
		return "", failf(exitBadArgs, "empty password")
	}
	second, err := askPassword(c.stdin, c.stdout, fmt.Sprintf("Type password of %s again for confirmation: ", user))
	if err != nil {
		return "", failf(exitBadArgs, "failed to ask password: %w", err)
	}
	if first != second {
		return "", failf(exitBadArgs, "given passwords are different")
	}
	return first, nil
}

func (c *ctl) newUserAddCommand() *cobra.Command {
	var (
		interactive  bool
		flagPassword string
		noPassword   bool
	)
	cmd := &cobra.Command{
		Use:   "add <user name or user:password> [options]",
		Short: "Adds a new user",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "user add command requires user name as its argument")
			}
			user, password, opts, err := c.userAddArgs(args[0], interactive, flagPassword, noPassword)
			if err != nil {
				return err
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthUserAddResponse, error) {
				return cli.UserAddWithOptions(ctx, user, password, opts)
			})
			if err != nil {
				return err
			}
			return c.display.UserAdd(user, resp)
		}),
	}
	cmd.Flags().BoolVar(&interactive, "interactive", true, "Read password from stdin instead of interactive terminal")
	cmd.Flags().StringVar(&flagPassword, "new-user-password", "", "Supply password from the command line flag")
	cmd.Flags().BoolVar(&noPassword, "no-password", false, "Create a user without password (CN based auth only)")
	return cmd
}

// userAddArgs decides the new user's name and password, in etcdctl's order
// of precedence: --no-password, then --new-user-password (the argument is
// then the whole name, colons and all), then "name:password", then a
// password read from the terminal or stdin.
func (c *ctl) userAddArgs(arg string, interactive bool, flagPassword string, noPassword bool) (user, password string, opts *clientv3.UserAddOptions, err error) {
	opts = &clientv3.UserAddOptions{}
	switch {
	case noPassword:
		opts.NoPassword = true
		return arg, "", opts, nil
	case flagPassword != "":
		return arg, flagPassword, opts, nil
	}
	if name, pass, ok := strings.Cut(arg, ":"); ok {
		if name == "" {
			return "", "", nil, failf(exitBadArgs, "empty user name is not allowed")
		}
		return name, pass, opts, nil
	}
	password, err = c.newPassword(arg, interactive)
	return arg, password, opts, err
}

func (c *ctl) newUserDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete <user name>",
		Short: "Deletes a user",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "user delete command requires user name as its argument")
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthUserDeleteResponse, error) {
				return cli.UserDelete(ctx, args[0])
			})
			if err != nil {
				return err
			}
			return c.display.UserDelete(args[0], resp)
		}),
	}
}

func (c *ctl) newUserGetCommand() *cobra.Command {
	var detail bool
	cmd := &cobra.Command{
		Use:   "get <user name> [options]",
		Short: "Gets detailed information of a user",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "user get command requires user name as its argument")
			}
			name := args[0]
			cli, err := c.newClient(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			resp, err := cli.UserGet(context.TODO(), name)
			if err != nil {
				return err
			}
			if !detail {
				return c.display.UserGet(name, resp)
			}
			// The heading is plain text in every output format, and each
			// role follows in the chosen one.
			fmt.Fprintf(c.stdout, "User: %s\n", name)
			for _, role := range resp.Roles {
				fmt.Fprintln(c.stdout)
				roleResp, err := cli.RoleGet(context.TODO(), role)
				if err != nil {
					return err
				}
				if err := c.display.RoleGet(role, roleResp); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&detail, "detail", false, "Show permissions of roles granted to the user")
	return cmd
}

func (c *ctl) newUserListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Lists all users",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return failf(exitBadArgs, "user list command requires no arguments")
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthUserListResponse, error) {
				return cli.UserList(ctx)
			})
			if err != nil {
				return err
			}
			return c.display.UserList(resp)
		}),
	}
}

func (c *ctl) newUserPasswdCommand() *cobra.Command {
	var interactive bool
	cmd := &cobra.Command{
		Use:   "passwd <user name> [options]",
		Short: "Changes password of user",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "user passwd command requires user name as its argument")
			}
			password, err := c.newPassword(args[0], interactive)
			if err != nil {
				return err
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthUserChangePasswordResponse, error) {
				return cli.UserChangePassword(ctx, args[0], password)
			})
			if err != nil {
				return err
			}
			return c.display.UserChangePassword(resp)
		}),
	}
	cmd.Flags().BoolVar(&interactive, "interactive", true, "If true, read password from stdin instead of interactive terminal")
	return cmd
}

func (c *ctl) newUserGrantRoleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "grant-role <user name> <role name>",
		Short: "Grants a role to a user",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return failf(exitBadArgs, "user grant command requires user name and role name as its argument")
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthUserGrantRoleResponse, error) {
				return cli.UserGrantRole(ctx, args[0], args[1])
			})
			if err != nil {
				return err
			}
			return c.display.UserGrantRole(args[0], args[1], resp)
		}),
	}
}

func (c *ctl) newUserRevokeRoleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-role <user name> <role name>",
		Short: "Revokes a role from a user",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return failf(exitBadArgs, "user revoke-role requires user name and role name as its argument")
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthUserRevokeRoleResponse, error) {
				return cli.UserRevokeRole(ctx, args[0], args[1])
			})
			if err != nil {
				return err
			}
			return c.display.UserRevokeRole(args[0], args[1], resp)
		}),
	}
}
