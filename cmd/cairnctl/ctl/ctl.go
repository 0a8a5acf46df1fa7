package ctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"go.etcd.io/etcd/api/v3/version"
)

// Version is cairnctl's own version, printed by "cairnctl version". Release
// builds set it with -ldflags "-X github.com/cairnkv/cairn/cmd/cairnctl/ctl.Version=...".
var Version = "0.1.0-dev"

const cliName = "cairnctl"

// Exit codes, as etcdctl uses them (go.etcd.io/etcd/pkg/v3/cobrautl). Scripts
// test these, so they are part of the interface.
const (
	exitError         = 1
	exitBadConnection = 2
	exitInvalidInput  = 3 // txn and watch input
	exitBadFeature    = 4 // a valid flag with an unsupported value
	exitInterrupted   = 5
	exitBadArgs       = 128
)

// exitErr is a command failure: Main prints "Error: <err>" on stderr and
// exits with code. A nil err exits with code and prints nothing.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitErr) Unwrap() error { return e.err }

// fail wraps err so that Main exits with code.
func fail(code int, err error) error {
	return &exitErr{code: code, err: err}
}

// failf is fail with a formatted message.
func failf(code int, format string, a ...any) error {
	return &exitErr{code: code, err: fmt.Errorf(format, a...)}
}

// exitCode returns the code err asks for; plain errors exit with exitError.
func exitCode(err error) int {
	var e *exitErr
	if errors.As(err, &e) {
		return e.code
	}
	return exitError
}

// ctl is one invocation of cairnctl: its streams, its global flags and the
// printer chosen for it. Nothing in it outlives Main.
type ctl struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	osArgs []string
	env    environment

	// sleep and exit are replaceable so tests do not wait or die.
	sleep func(time.Duration)
	exit  func(code int)

	global  globalFlags
	display printer
	// printMu serialises whole responses on stdout when several watches
	// print concurrently (interactive watch).
	printMu sync.Mutex

	// result is what the command that ran returned; Main turns it into the
	// exit code.
	result error
}

// Main runs cairnctl with args (args[0] is the program name) and returns the
// exit code. Output goes to stdout and stderr, except for log lines of the
// etcd client and the gRPC library, which write to the process's stderr.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &ctl{
		stdin:  stdin,
		stdout: stdout,
		stderr: stderr,
		osArgs: args,
		env:    osEnvironment{},
		sleep:  time.Sleep,
		exit:   os.Exit,
	}
	return c.execute(args[1:])
}

func init() {
	// etcdctl enables prefix matching ("etcdctl ge foo" runs get, and a txn
	// line "pu k v" is a put). It is a package-level switch in cobra, and this
	// package is the only user of cobra in the binary.
	cobra.EnablePrefixMatching = true
}

func (c *ctl) execute(args []string) int {
	c.display = &simplePrinter{w: c.stdout, ew: c.stderr}
	root := c.newRootCommand()
	root.SetArgs(args)
	root.SetIn(c.stdin)
	// cobra prints usage after a flag error to "out or stderr": setting
	// out would move that usage from stderr (where etcdctl prints it) to
	// stdout, so set it only when it is not the process's stdout anyway.
	if c.stdout != io.Writer(os.Stdout) {
		root.SetOut(c.stdout)
	}
	root.SetErr(c.stderr)
	if err := root.Execute(); err != nil {
		// cobra has already printed "Error: ..." (unknown command or flag).
		return exitError
	}
	if c.result == nil {
		return 0
	}
	var e *exitErr
	if errors.As(c.result, &e) && e.err == nil {
		return e.code
	}
	fmt.Fprintln(c.stderr, "Error:", c.result)
	return exitCode(c.result)
}

// run adapts a command body to cobra, recording its error for Main.
func (c *ctl) run(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) {
	return func(cmd *cobra.Command, args []string) {
		c.result = fn(cmd, args)
	}
}

// Command groups, as etcdctl shows them in help.
const (
	groupKV                 = "kv"
	groupClusterMaintenance = "cluster maintenance"
	groupConcurrency        = "concurrency"
	groupAuthentication     = "authentication"
	groupUtility            = "utility"
)

// newGroupCommand returns a command that only holds subcommands (lease,
// member, ...), worded as etcdctl words them.
func newGroupCommand(name, title, group string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:     name + " <subcommand>",
		Short:   title + " related commands. Use `" + cliName + " " + name + " --help` to see subcommands",
		Long:    title + " related commands",
		GroupID: group,
	}
	cmd.AddCommand(subs...)
	return cmd
}

func (c *ctl) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:        cliName,
		Short:      "A simple command line client for etcd3.",
		SuggestFor: []string{cliName},
	}
	c.global.register(root.PersistentFlags())

	root.AddGroup(
		&cobra.Group{ID: groupKV, Title: "Key-value commands"},
		&cobra.Group{ID: groupClusterMaintenance, Title: "Cluster maintenance commands"},
		&cobra.Group{ID: groupConcurrency, Title: "Concurrency commands"},
		&cobra.Group{ID: groupAuthentication, Title: "Authentication commands"},
		&cobra.Group{ID: groupUtility, Title: "Utility commands"},
	)
	root.AddCommand(
		c.newGetCommand(),
		c.newPutCommand(),
		c.newDelCommand(),
		c.newTxnCommand(),
		c.newCompactionCommand(),
		c.newAlarmCommand(),
		c.newDefragCommand(),
		c.newEndpointCommand(),
		c.newMoveLeaderCommand(),
		c.newWatchCommand(),
		c.newVersionCommand(),
		c.newLeaseCommand(),
		c.newMemberCommand(),
		c.newSnapshotCommand(),
		c.newLockCommand(),
		c.newElectCommand(),
		c.newMakeMirrorCommand(),
		c.newDowngradeCommand(),
		c.newCheckCommand(),
		c.newAuthCommand(),
		c.newUserCommand(),
		c.newRoleCommand(),
		c.newCompletionCommand(),
		newOptionsCommand(root),
	)
	root.SetHelpCommandGroupID(groupUtility)

	// Global flags are listed by "options", not in every help page.
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		_ = root.PersistentFlags().MarkHidden(f.Name)
	})
	if root.Flags().Lookup("help") == nil {
		root.Flags().BoolP("help", "h", false, "help for "+root.Name())
	}
	_ = root.Flags().MarkHidden("help")

	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		defaultHelp(cmd, args)
		fmt.Fprintln(cmd.OutOrStdout(), `Use "`+cliName+` options" for a list of global command-line options (applies to all commands).`)
	})
	return root
}

func (c *ctl) newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Prints the version of " + cliName,
		GroupID: groupUtility,
		Run: c.run(func(*cobra.Command, []string) error {
			fmt.Fprintln(c.stdout, cliName+" version:", Version)
			fmt.Fprintln(c.stdout, "API version:", version.APIVersion)
			return nil
		}),
	}
}

func newOptionsCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:     "options",
		Short:   "Show the global command-line flags",
		GroupID: groupUtility,
		Run: func(cmd *cobra.Command, _ []string) {
			fs := pflag.NewFlagSet("global", pflag.ContinueOnError)
			root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
				nf := *f
				nf.Hidden = false
				fs.AddFlag(&nf)
			})
			fmt.Fprintf(cmd.OutOrStdout(), "The following options can be passed to any command:\n\n")
			fmt.Fprint(cmd.OutOrStdout(), fs.FlagUsages())
		},
	}
}
