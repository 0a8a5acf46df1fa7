package main

import "github.com/spf13/cobra"

func (u *util) backupCommand() *cobra.Command {
	return &cobra.Command{Use: "backup <subcommand>", Short: "Lists the scheduled backups of a --backup-dir"}
}
