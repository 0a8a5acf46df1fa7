package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/backup"
)

func (u *util) backupCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "backup <subcommand>", Short: "Lists the scheduled backups of a --backup-dir"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list <directory>",
		Short: "Lists and verifies the scheduled backups in a directory",
		Long: `Lists the backups a member's --backup-dir holds, oldest first: name, time (UTC), revision, size, and
whether the file verifies (its hash matches and it holds the revision in its name). Other files are left out.
Exits 1 when any backup fails to verify.
`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fail(exitBadArgs, errors.New("backup list requires exactly one argument"))
			}
			if fi, err := os.Stat(args[0]); err != nil {
				return fail(exitError, err)
			} else if !fi.IsDir() {
				return fail(exitError, fmt.Errorf("expected a directory, got a file: %s", args[0]))
			}
			entries, err := backup.List(args[0])
			if err != nil {
				return fail(exitError, err)
			}
			if err := u.printBackups(entries); err != nil {
				return err
			}
			bad := 0
			for _, e := range entries {
				if !e.Verified {
					bad++
				}
			}
			if bad > 0 {
				return fail(exitError, fmt.Errorf("%d of %d backups in %s failed verification", bad, len(entries), args[0]))
			}
			return nil
		},
	})
	return cmd
}

func (u *util) printBackups(entries []backup.Entry) error {
	rows := make([][]string, len(entries))
	for i, e := range entries {
		verified := "true"
		if !e.Verified {
			verified = "false: " + e.Error
		}
		rows[i] = []string{e.Name, e.Time.UTC().Format(time.RFC3339), fmt.Sprint(e.Revision), humanize.Bytes(uint64(e.Size)), verified}
	}
	switch u.format {
	case "simple":
		for _, r := range rows {
			fmt.Fprintln(u.stdout, strings.Join(r, ", "))
		}
	case "json":
		if entries == nil {
			entries = []backup.Entry{}
		}
		b, err := json.Marshal(entries)
		if err != nil {
			return fail(exitError, err)
		}
		fmt.Fprintln(u.stdout, string(b))
	case "table":
		cfg := tablewriter.NewConfigBuilder().WithRowAlignment(tw.AlignRight).Build()
		t := tablewriter.NewTable(u.stdout, tablewriter.WithConfig(cfg))
		t.Header([]string{"name", "time", "revision", "size", "verified"})
		for _, r := range rows {
			_ = t.Append(r)
		}
		_ = t.Render()
	default:
		return fail(exitBadArgs, fmt.Errorf("printer %q is not supported for backup list (simple, table or json)", u.format))
	}
	return nil
}
