package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/internal/etcdurls"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/snapshot"
)

func (u *util) snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot <subcommand>", Short: "Manages etcd node snapshots"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status <filename>",
		Short: "Gets backend snapshot status of a given file",
		Long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are hash, revision, total keys, total size.
`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fail(exitBadArgs, errors.New("snapshot status requires exactly one argument"))
			}
			if fi, err := os.Stat(args[0]); err != nil {
				return fail(exitError, err)
			} else if fi.IsDir() {
				return fail(exitError, fmt.Errorf("expected file path, got directory: %s", args[0]))
			}
			if err := checkBoltApart(args[0]); err != nil {
				return fail(exitError, err)
			}
			st, err := snapshot.ReadStatus(args[0])
			if err != nil {
				return fail(exitError, err)
			}
			return u.printStatus(st)
		},
	})
	cmd.AddCommand(u.restoreCommand(), u.checkBoltCommand())
	return cmd
}

func (u *util) restoreCommand() *cobra.Command {
	var (
		dataDir, walDir, cluster, token, peerURLs, name string
		skipHash, markCompacted                         bool
		bump, mmap                                      uint64
	)
	cmd := &cobra.Command{
		Use:   "restore <filename> --data-dir {output dir} [options]",
		Short: "Restores an etcd member snapshot to an etcd directory",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fail(exitBadArgs, errors.New("snapshot restore requires exactly one argument"))
			}
			if (bump == 0 && markCompacted) || (bump > 0 && !markCompacted) {
				return fail(exitBadArgs, errors.New("--mark-compacted required if --revision-bump > 0"))
			}
			if !cmd.Flags().Changed("initial-cluster") {
				cluster = name + "=http://localhost:2380"
			}
			ic, err := etcdurls.ParseInitialCluster(cluster)
			if err != nil {
				return fail(exitError, err)
			}
			purls, err := etcdurls.Parse(peerURLs)
			if err != nil {
				return fail(exitError, err)
			}
			lg := slog.New(slog.NewJSONHandler(u.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			src := args[0]
			if fi, err := os.Stat(src); err == nil && fi.IsDir() {
				// An etcd data directory: its backend file, which has no
				// trailing hash.
				db := filepath.Join(src, "member", "snap", "db")
				if _, err := os.Stat(db); err != nil {
					return fail(exitError, fmt.Errorf("%s is a directory but not an etcd data directory (no member/snap/db): %w", src, err))
				}
				lg.Warn("restoring from an etcd data directory: its member/snap/db holds what etcd had committed to its backend; "+
					"entries in its WAL after that are not included. Stop etcd cleanly first, or restore a snapshot taken with 'etcdctl snapshot save'",
					"data-dir", src, "db", db)
				src, skipHash = db, true
			}
			if skipHash {
				if err := checkBoltApart(src); err != nil {
					return fail(exitError, err)
				}
			}
			if err := server.RestoreDataDir(server.RestoreConfig{
				SnapshotPath: src, Name: name, PeerURLs: purls, InitialCluster: ic, InitialClusterToken: token,
				DataDir: dataDir, WALDir: walDir, SkipHashCheck: skipHash, BumpRevision: bump, MarkCompacted: markCompacted,
				Logger: lg,
			}); err != nil {
				return fail(exitError, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "Path to the output data directory")
	f.StringVar(&walDir, "wal-dir", "", "Path to the WAL directory (use --data-dir if none given)")
	f.StringVar(&cluster, "initial-cluster", "default=http://localhost:2380", "Initial cluster configuration for restore bootstrap")
	f.StringVar(&token, "initial-cluster-token", "etcd-cluster", "Initial cluster token for the etcd cluster during restore bootstrap")
	f.StringVar(&peerURLs, "initial-advertise-peer-urls", "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster")
	f.StringVar(&name, "name", "default", "Human-readable name for this member")
	f.BoolVar(&skipHash, "skip-hash-check", false, "Ignore snapshot integrity hash value (required if copied from data directory)")
	// bbolt's memory map has no counterpart in Cairn's engine: the flag is
	// accepted so etcdutl command lines run, and documented as having no
	// effect.
	f.Uint64Var(&mmap, "initial-memory-map-size", 0, "Initial memory map size of the database in bytes (no effect in Cairn: its engine does not memory-map the database)")
	f.Uint64Var(&bump, "bump-revision", 0, "How much to increase the latest revision after restore")
	f.BoolVar(&markCompacted, "mark-compacted", false, "Mark the latest revision after restore as the point of scheduled compaction (required if --bump-revision > 0, disallowed otherwise)")
	return cmd
}

func (u *util) printStatus(st snapshot.Status) error {
	row := []string{fmt.Sprintf("%x", st.Hash), fmt.Sprint(st.Revision), fmt.Sprint(st.TotalKey),
		humanize.Bytes(uint64(st.TotalSize)), st.Version}
	switch u.format {
	case "simple":
		fmt.Fprintln(u.stdout, strings.Join(row, ", "))
	case "json":
		b, err := json.Marshal(st)
		if err != nil {
			return fail(exitError, err)
		}
		fmt.Fprintln(u.stdout, string(b))
	case "fields":
		fmt.Fprintln(u.stdout, `"Hash" :`, st.Hash)
		fmt.Fprintln(u.stdout, `"Revision" :`, st.Revision)
		fmt.Fprintln(u.stdout, `"Keys" :`, st.TotalKey)
		fmt.Fprintln(u.stdout, `"Size" :`, st.TotalSize)
		fmt.Fprintln(u.stdout, `"Version" :`, st.Version)
	case "table":
		cfg := tablewriter.NewConfigBuilder().WithRowAlignment(tw.AlignRight).Build()
		t := tablewriter.NewTable(u.stdout, tablewriter.WithConfig(cfg))
		t.Header([]string{"hash", "revision", "total keys", "total size", "version"})
		_ = t.Append(row)
		_ = t.Render()
	case "protobuf":
		return fail(exitBadArgs, errors.New("printer protobuf is not supported for snapshot status"))
	default:
		return fail(exitBadArgs, fmt.Errorf("unknown output format %q", u.format))
	}
	return nil
}
