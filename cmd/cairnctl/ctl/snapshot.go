package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// snapshotExample is indented two spaces per line, blank lines included,
// as etcdctl renders it.
var snapshotExample = "  " + strings.Join([]string{
	"# Save snapshot to a given file",
	cliName + " snapshot save /backup/etcd-snapshot.db",
	"",
	"# Get snapshot from given address and save it to file",
	cliName + " snapshot save --endpoints=127.0.0.1:3000 /backup/etcd-snapshot.db",
	"",
	"# Get snapshot from given address with certificates",
	cliName + " --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/ca.crt --cert=/etc/etcd/etcd.crt --key=/etc/etcd/etcd.key snapshot save /backup/etcd-snapshot.db",
	"",
	"# Get snapshot with certain user and password",
	cliName + " --user=root --password=password123 snapshot save /backup/etcd-snapshot.db",
	"",
	"# Get snapshot from given address with timeout",
	cliName + " --endpoints=https://127.0.0.1:2379 --dial-timeout=20s snapshot save /backup/etcd-snapshot.db",
	"",
	"# Save snapshot with desirable time format",
	cliName + " snapshot save /mnt/backup/etcd/backup_$(date +%Y%m%d_%H%M%S).db",
}, "\n  ")

func (c *ctl) newSnapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshot <subcommand>",
		Short:   "Manages etcd node snapshots",
		Example: snapshotExample,
		GroupID: groupClusterMaintenance,
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "save <filename>",
		Short:   "Stores an etcd node backend snapshot to a given file",
		Example: snapshotExample,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "snapshot save expects one argument <filename>")
			}
			lg, err := newLogger()
			if err != nil {
				return fail(exitError, err)
			}
			spec, err := c.clientConfig(cmd)
			if err != nil {
				return err
			}
			cfg, err := newConfig(spec)
			if err != nil {
				return err
			}
			// A snapshot can take long; only an explicit --command-timeout
			// (or ETCDCTL_COMMAND_TIMEOUT) bounds it.
			ctx, cancel := context.WithCancel(context.Background())
			if cmd.Flags().Changed("command-timeout") {
				cancel()
				ctx, cancel = c.commandCtx()
			}
			defer cancel()

			path := args[0]
			var progress io.Writer
			if _, tty := terminalWidth(c.stderr); tty {
				progress = c.stderr
			}
			version, err := saveSnapshot(ctx, lg, *cfg, path, progress)
			if err != nil {
				return fail(exitInterrupted, err)
			}
			fmt.Fprintf(c.stdout, "Snapshot saved at %s\n", path)
			if version != "" {
				fmt.Fprintf(c.stdout, "Server version %s\n", version)
			}
			return nil
		}),
	})
	return cmd
}
