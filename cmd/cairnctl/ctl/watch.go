package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	errBadArgsNum            = errors.New("bad number of arguments")
	errBadArgsNumConflictEnv = errors.New("bad number of arguments (found conflicting environment key)")
	errBadArgsNumSeparator   = errors.New("bad number of arguments (found separator --, but no commands)")
)

// watchOptions are watch's flags. In interactive mode each "watch" line is
// parsed into fresh options: the line's flags apply, not the command's.
type watchOptions struct {
	interactive    bool
	prefix         bool
	rev            int64
	prevKV         bool
	progressNotify bool
	diff           bool // cairnctl's own: print changes as diffs
}

func (o *watchOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Interactive mode")
	fs.BoolVar(&o.prefix, "prefix", false, "Watch on a prefix if prefix is set")
	fs.Int64Var(&o.rev, "rev", 0, "Revision to start watching")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "get the previous key-value pair before the event happens")
	fs.BoolVar(&o.progressNotify, "progress-notify", false, "get periodic watch progress notification from server")
	fs.BoolVar(&o.diff, "diff", false, "print each change as a unified diff of the previous value against the new one (implies --prev-kv; simple output format only)")
}

// errDiffFormat refuses --diff with an output format other than simple:
// the diff is for people, the other formats for programs, which have
// --prev-kv.
var errDiffFormat = errors.New("--diff needs the simple output format")

// watch starts watching args[0], or [args[0], args[1]) if a range end is
// given; arguments beyond two are ignored, as in etcdctl.
func (o *watchOptions) watch(ctx context.Context, c *ctl, cli *clientv3.Client, args []string) (clientv3.WatchChan, error) {
	if len(args) < 1 {
		return nil, errBadArgsNum
	}
	opts := []clientv3.OpOption{clientv3.WithRev(o.rev)}
	if len(args) == 2 {
		if o.prefix {
			return nil, errors.New("`range_end` and `--prefix` are mutually exclusive")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}
	if o.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if o.diff {
		if _, ok := c.display.(*simplePrinter); !ok {
			return nil, errDiffFormat
		}
	}
	if o.prevKV || o.diff {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if o.progressNotify {
		opts = append(opts, clientv3.WithProgressNotify())
	}
	return cli.Watch(clientv3.WithRequireLeader(ctx), args[0], opts...), nil
}

// splitWatchArgs splits positional arguments at "--" (dash is its index, or
// -1) into the key range and the command to run for each event, and puts
// ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END in front of the range. A key
// given both ways is an error, except before "--" in interactive mode,
// where etcdctl lets the variables win silently.
func splitWatchArgs(args []string, dash int, envKey, envRange string, interactive bool) (watchArgs, execArgs []string, err error) {
	hasExec := dash >= 0
	if hasExec && dash == len(args) {
		return nil, nil, errBadArgsNumSeparator
	}
	if interactive && !hasExec && envKey == "" && len(args) == 0 {
		return nil, nil, errBadArgsNum
	}
	if envKey != "" && ((!hasExec && len(args) > 0) || (hasExec && dash > 0 && !interactive)) {
		return nil, nil, errBadArgsNumConflictEnv
	}

	watchArgs = args
	if hasExec {
		watchArgs, execArgs = args[:dash], args[dash:]
	}
	if envKey != "" {
		ranges := []string{envKey}
		if envRange != "" {
			ranges = append(ranges, envRange)
		}
		watchArgs = append(ranges, watchArgs...)
	}
	return watchArgs, execArgs, nil
}

// watchLong documents what cairnctl's watch does beyond etcdctl's.
const watchLong = `Watches events stream on keys or prefixes

With --diff (not in etcdctl), each change prints as a unified diff of the
key's value before it against its value after it, in the simple output
format only; --diff implies --prev-kv. An event prints as its type (PUT or
DELETE), a "---" line naming the key and the revision of its previous
value (/dev/null for a new key), a "+++" line naming the key and the
revision of the change (/dev/null for a deletion), and the hunks, with
three lines of context, as diff -u writes them:

  PUT
  --- config	revision 4
  +++ config	revision 7
  @@ -1,2 +1,2 @@
   replicas: 3
  -image: v1
  +image: v2
`

func (c *ctl) newWatchCommand() *cobra.Command {
	o := &watchOptions{}
	cmd := &cobra.Command{
		Use:     "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
		Short:   "Watches events stream on keys or prefixes",
		Long:    watchLong,
		GroupID: groupKV,
	}
	o.addFlags(cmd.Flags())
	cmd.Run = c.run(func(cmd *cobra.Command, args []string) error {
		envKey, envRange := c.getenv("ETCDCTL_WATCH_KEY"), c.getenv("ETCDCTL_WATCH_RANGE_END")
		if envKey == "" && envRange != "" {
			return failf(exitBadArgs, "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=%q", envRange)
		}
		if o.interactive {
			return c.watchInteractive(cmd, envKey, envRange)
		}

		dash := cmd.ArgsLenAtDash()
		if dash < 0 && envKey == "" && !c.hasArgsAfter("watch") {
			return fail(exitBadArgs, errBadArgsNum)
		}
		watchArgs, execArgs, err := splitWatchArgs(args, dash, envKey, envRange, false)
		if err != nil {
			return fail(exitBadArgs, err)
		}
		cli, err := c.newClient(cmd)
		if err != nil {
			return err
		}
		wc, err := o.watch(context.Background(), c, cli, watchArgs)
		if err != nil {
			cli.Close()
			if errors.Is(err, errDiffFormat) {
				return fail(exitBadFeature, err)
			}
			return fail(exitBadArgs, err)
		}
		if err := c.printWatch(cli, wc, execArgs, o.diff, nil); err != nil {
			return err
		}
		if err := cli.Close(); err != nil {
			return fail(exitBadConnection, err)
		}
		return failf(exitInterrupted, "watch is canceled by the server")
	})
	return cmd
}

// hasArgsAfter reports whether anything, flags included, follows the first
// word name on the command line. etcdctl rejects a bare "watch" before
// connecting but "watch --prefix" only after, and the difference shows in
// whether environment warnings are printed.
func (c *ctl) hasArgsAfter(name string) bool {
	for i, a := range c.osArgs {
		if a == name {
			return i+1 < len(c.osArgs)
		}
	}
	return len(c.osArgs) > 0
}

// watchInteractive reads "watch ..." and "progress" lines from stdin and
// serves each watch concurrently until stdin ends, which is an error.
func (c *ctl) watchInteractive(cmd *cobra.Command, envKey, envRange string) error {
	cli, err := c.newClient(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg       sync.WaitGroup
		stopping atomic.Bool
	)
	defer func() {
		// Quietly end the watches started so far: the command is over.
		stopping.Store(true)
		cancel()
		_ = cli.Close()
		wg.Wait()
	}()

	r := bufio.NewReader(c.stdin)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return failf(exitInvalidInput, "error reading watch request line: %w", err)
		}
		l = strings.TrimSuffix(l, "\n")

		args, err := argify(l)
		if err != nil {
			return err
		}
		if len(args) < 1 {
			fmt.Fprintf(c.stderr, "Invalid command: %s (watch and progress supported)\n", l)
			continue
		}
		switch args[0] {
		case "watch":
			if len(args) < 2 && envKey == "" {
				fmt.Fprintf(c.stderr, "Invalid command %s (command type or key is not provided)\n", l)
				continue
			}
			o := &watchOptions{}
			fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
			fs.SetOutput(c.stderr)
			o.addFlags(fs)
			if err := fs.Parse(args[1:]); err != nil {
				return fail(exitBadArgs, err)
			}
			watchArgs, execArgs, err := splitWatchArgs(fs.Args(), fs.ArgsLenAtDash(), envKey, envRange, true)
			if err != nil {
				return fail(exitBadArgs, err)
			}
			wc, err := o.watch(ctx, c, cli, watchArgs)
			if err != nil {
				fmt.Fprintf(c.stderr, "Invalid command %s (%v)\n", l, err)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.printWatch(cli, wc, execArgs, o.diff, &stopping); err != nil && !stopping.Load() {
					c.fatal(err)
				}
			}()
		case "progress":
			if err := cli.RequestProgress(clientv3.WithRequireLeader(context.Background())); err != nil {
				return fail(exitError, err)
			}
		default:
			fmt.Fprintf(c.stderr, "Invalid command %s (only support watch)\n", l)
		}
	}
}

// printWatch prints every response from wc until it closes, as diffs if
// diff is set, running execArgs (if any) once per event with the event in
// ETCD_WATCH_* variables. It stops printing once stopping is set.
func (c *ctl) printWatch(cli *clientv3.Client, wc clientv3.WatchChan, execArgs []string, diff bool, stopping *atomic.Bool) error {
	for resp := range wc {
		if stopping != nil && stopping.Load() {
			continue
		}
		if err := c.printWatchResponse(&resp, diff); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			if len(execArgs) == 0 {
				break
			}
			cmd := exec.CommandContext(cli.Ctx(), execArgs[0], execArgs[1:]...)
			cmd.Env = append(c.environ(),
				fmt.Sprintf("ETCD_WATCH_REVISION=%d", resp.Header.GetRevision()),
				fmt.Sprintf("ETCD_WATCH_EVENT_TYPE=%q", ev.GetType()),
				fmt.Sprintf("ETCD_WATCH_KEY=%q", ev.GetKv().GetKey()),
				fmt.Sprintf("ETCD_WATCH_VALUE=%q", ev.GetKv().GetValue()),
			)
			cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(c.stderr, "command %q error (%v)\n", execArgs, err)
				return &exitErr{code: exitError}
			}
		}
	}
	return nil
}

// printWatchResponse prints one response whole, so that concurrent watches
// do not interleave their lines.
func (c *ctl) printWatchResponse(resp *clientv3.WatchResponse, diff bool) error {
	c.printMu.Lock()
	defer c.printMu.Unlock()
	if resp.Canceled {
		fmt.Fprintf(c.stderr, "watch was canceled (%v)\n", resp.Err())
	}
	if resp.IsProgressNotify() {
		fmt.Fprintf(c.stdout, "progress notify: %d\n", resp.Header.GetRevision())
	}
	if diff {
		for _, ev := range resp.Events {
			writeEventDiff(c.stdout, ev, c.global.isHex)
		}
		return nil
	}
	return c.display.Watch(resp)
}

// writeEventDiff prints an event's type, then the key's value before it
// (from the previous key-value; nothing, /dev/null, for a new key) against
// its value after it (nothing for a deletion) as a unified diff, each side
// named by the key and the revision it was written at:
//
//	PUT
//	--- config	revision 4
//	+++ config	revision 7
//	@@ -1,2 +1,2 @@
//	 replicas: 3
//	-image: v1
//	+image: v2
func writeEventDiff(w io.Writer, ev *clientv3.Event, isHex bool) {
	esc := func(s string) string { return s }
	if isHex {
		esc = func(s string) string { return hexEscape([]byte(s)) }
	}
	fmt.Fprintln(w, ev.Type)
	var before, after string
	if prev := ev.PrevKv; prev != nil {
		fmt.Fprintf(w, "--- %s\trevision %d\n", esc(string(prev.Key)), prev.ModRevision)
		before = string(prev.Value)
	} else {
		fmt.Fprintln(w, "--- /dev/null")
	}
	if ev.Type == clientv3.EventTypeDelete {
		fmt.Fprintf(w, "+++ /dev/null\trevision %d\n", ev.Kv.ModRevision)
	} else {
		fmt.Fprintf(w, "+++ %s\trevision %d\n", esc(string(ev.Kv.Key)), ev.Kv.ModRevision)
		after = string(ev.Kv.Value)
	}
	writeUnified(w, diffLines(splitLines(before), splitLines(after)), esc)
}

// fatal ends the process from a goroutine the way Main would end it.
func (c *ctl) fatal(err error) {
	var e *exitErr
	if !errors.As(err, &e) || e.err != nil {
		fmt.Fprintln(c.stderr, "Error:", err)
	}
	c.exit(exitCode(err))
}
