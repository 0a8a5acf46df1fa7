package ctl

import (
	"context"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func (c *ctl) newRoleCommand() *cobra.Command {
	return newGroupCommand("role", "Role", groupAuthentication,
		c.newRoleAddCommand(),
		c.newRoleDeleteCommand(),
		c.newRoleGetCommand(),
		c.newRoleListCommand(),
		c.newRoleGrantPermissionCommand(),
		c.newRoleRevokePermissionCommand(),
	)
}

// permRangeFlags are --prefix and --from-key of grant-permission and
// revoke-permission.
type permRangeFlags struct {
	prefix, fromKey bool
}

// keyRange turns the key arguments (key [endkey]) into the key and range
// end a permission is stored with. The empty key stands for the whole key
// space: it is sent as "\x00" (the server stores ranges as byte intervals
// that cannot start empty), open ended with --prefix or --from-key, and any
// endkey after it is ignored, as etcdctl ignores it.
func (f permRangeFlags) keyRange(args []string) (key, end string, err error) {
	key = args[0]
	if key == "" {
		if f.prefix && f.fromKey {
			return "", "", failf(exitBadArgs, "--from-key and --prefix flags are mutually exclusive")
		}
		if f.prefix || f.fromKey {
			return "\x00", "\x00", nil
		}
		return "\x00", "", nil
	}
	if len(args) == 1 {
		switch {
		case f.prefix && f.fromKey:
			return "", "", failf(exitBadArgs, "--from-key and --prefix flags are mutually exclusive")
		case f.prefix:
			return key, clientv3.GetPrefixRangeEnd(key), nil
		case f.fromKey:
			return key, "\x00", nil
		}
		return key, "", nil
	}
	switch {
	case f.prefix:
		return "", "", failf(exitBadArgs, "unexpected endkey argument with --prefix flag")
	case f.fromKey:
		return "", "", failf(exitBadArgs, "unexpected endkey argument with --from-key flag")
	}
	// Arguments after the endkey are ignored, as in etcdctl.
	return key, args[1], nil
}

func (c *ctl) newRoleAddCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "add <role name>",
		Short: "Adds a new role",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "role add command requires role name as its argument")
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthRoleAddResponse, error) {
				return cli.RoleAdd(ctx, args[0])
			})
			if err != nil {
				return err
			}
			return c.display.RoleAdd(args[0], resp)
		}),
	}
}

func (c *ctl) newRoleDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete <role name>",
		Short: "Deletes a role",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "role delete command requires role name as its argument")
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthRoleDeleteResponse, error) {
				return cli.RoleDelete(ctx, args[0])
			})
			if err != nil {
				return err
			}
			return c.display.RoleDelete(args[0], resp)
		}),
	}
}

func (c *ctl) newRoleGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get <role name>",
		Short: "Gets detailed information of a role",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "role get command requires role name as its argument")
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthRoleGetResponse, error) {
				return cli.RoleGet(ctx, args[0])
			})
			if err != nil {
				return err
			}
			return c.display.RoleGet(args[0], resp)
		}),
	}
}

func (c *ctl) newRoleListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Lists all roles",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return failf(exitBadArgs, "role list command requires no arguments")
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthRoleListResponse, error) {
				return cli.RoleList(ctx)
			})
			if err != nil {
				return err
			}
			return c.display.RoleList(resp)
		}),
	}
}

func (c *ctl) newRoleGrantPermissionCommand() *cobra.Command {
	var f permRangeFlags
	cmd := &cobra.Command{
		Use:   "grant-permission [options] <role name> <permission type> <key> [endkey]",
		Short: "Grants a key to a role",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) < 3 {
				return failf(exitBadArgs, "role grant command requires role name, permission type, and key [endkey] as its argument")
			}
			perm, err := clientv3.StrToPermissionType(args[1])
			if err != nil {
				return fail(exitBadArgs, err)
			}
			key, end, err := f.keyRange(args[2:])
			if err != nil {
				return err
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthRoleGrantPermissionResponse, error) {
				return cli.RoleGrantPermission(ctx, args[0], key, end, perm)
			})
			if err != nil {
				return err
			}
			return c.display.RoleGrantPermission(args[0], resp)
		}),
	}
	cmd.Flags().BoolVar(&f.prefix, "prefix", false, "grant a prefix permission")
	cmd.Flags().BoolVar(&f.fromKey, "from-key", false, "grant a permission of keys that are greater than or equal to the given key using byte compare")
	return cmd
}

func (c *ctl) newRoleRevokePermissionCommand() *cobra.Command {
	var f permRangeFlags
	cmd := &cobra.Command{
		Use:   "revoke-permission <role name> <key> [endkey]",
		Short: "Revokes a key from a role",
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return failf(exitBadArgs, "role revoke-permission command requires role name and key [endkey] as its argument")
			}
			key, end, err := f.keyRange(args[1:])
			if err != nil {
				return err
			}
			resp, err := untimedRequest(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.AuthRoleRevokePermissionResponse, error) {
				return cli.RoleRevokePermission(ctx, args[0], key, end)
			})
			if err != nil {
				return err
			}
			// The message names the key as typed, not as sent.
			return c.display.RoleRevokePermission(args[0], args[1], end, resp)
		}),
	}
	cmd.Flags().BoolVar(&f.prefix, "prefix", false, "revoke a prefix permission")
	cmd.Flags().BoolVar(&f.fromKey, "from-key", false, "revoke a permission of keys that are greater than or equal to the given key using byte compare")
	return cmd
}
