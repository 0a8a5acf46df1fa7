package ctl

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The downgrade commands are one Maintenance.Downgrade call each. Whether a
// downgrade is possible is the server's decision, and its refusal is
// printed as the server words it; the client checks only its arguments.

func (c *ctl) newDowngradeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "downgrade <TARGET_VERSION>",
		Short:   "Downgrade related commands. Use `" + cliName + " downgrade --help` to see subcommands",
		Long:    "Downgrade related commands",
		GroupID: groupClusterMaintenance,
	}
	cmd.AddCommand(
		c.newDowngradeSubcommand("validate <TARGET_VERSION>", "Validate downgrade capability before starting downgrade", clientv3.DowngradeValidate),
		c.newDowngradeSubcommand("enable <TARGET_VERSION>", "Start a downgrade action to cluster", clientv3.DowngradeEnable),
		c.newDowngradeSubcommand("cancel", "Cancel the ongoing downgrade action to cluster", clientv3.DowngradeCancel),
	)
	return cmd
}

// newDowngradeSubcommand is "downgrade validate", "enable" or "cancel".
// Cancel takes no version and, as in etcdctl, ignores any arguments.
func (c *ctl) newDowngradeSubcommand(use, short string, action clientv3.DowngradeAction) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			var target string
			if action != clientv3.DowngradeCancel {
				switch {
				case len(args) < 1:
					return fail(exitBadArgs, errors.New("TARGET_VERSION not provided"))
				case len(args) > 1:
					return fail(exitBadArgs, errors.New("too many arguments"))
				case args[0] == "":
					return fail(exitBadArgs, errors.New("target version not provided"))
				}
				target = args[0]
			}
			resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.DowngradeResponse, error) {
				return cli.Downgrade(ctx, action, target)
			})
			if err != nil {
				return err
			}
			return c.display.Downgrade(action, resp)
		}),
	}
}
