// Command cairnutl is Cairn's offline utility, etcdutl's twin: it works on
// files (snapshots, data directories, backups), never on a running
// member. `snapshot status` and `snapshot restore` take etcdutl's
// arguments, flags and output formats and read both etcd's snapshots and
// Cairn's; `backup list` lists a --backup-dir.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

const (
	exitError   = 1
	exitBadArgs = 128
)

// exitErr carries an exit code to main.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }

func fail(code int, err error) error { return &exitErr{code: code, err: err} }

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes cairnutl with args and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	u := &util{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "cairnutl",
		Short:         "An administrative command line tool for Cairn (etcdutl's commands)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&u.format, "write-out", "w", "simple", "set the output format (fields, json, protobuf, simple, table)")
	root.AddCommand(u.snapshotCommand(), u.backupCommand(), u.versionCommand())
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		code := exitError
		if e, ok := err.(*exitErr); ok {
			code = e.code
		}
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return code
	}
	return 0
}

type util struct {
	stdout, stderr io.Writer
	format         string
}
