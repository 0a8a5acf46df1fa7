package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The key-value commands: put, get, del and compaction. Put, get and del
// each keep their flags in an options struct whose op method turns
// arguments into a clientv3 request; txn reuses the same structs to parse
// its request lines, so both accept the same syntax.

// putOptions are put's flags.
type putOptions struct {
	lease       string
	prevKV      bool
	ignoreValue bool
	ignoreLease bool
}

func (o *putOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.lease, "lease", "0", "lease ID (in hexadecimal) to attach to the key")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "return the previous key-value pair before modification")
	fs.BoolVar(&o.ignoreValue, "ignore-value", false, "updates the key using its current value")
	fs.BoolVar(&o.ignoreLease, "ignore-lease", false, "updates the key using its current lease")
}

// op builds the put request. Without a value argument the value is all of
// stdin.
func (o *putOptions) op(args []string, stdin io.Reader) (clientv3.Op, error) {
	errUsage := failf(exitBadArgs, "put command needs 1 argument and input from stdin or 2 arguments")
	if len(args) == 0 {
		return clientv3.Op{}, errUsage
	}
	key := args[0]
	if o.ignoreValue && len(args) > 1 {
		return clientv3.Op{}, failf(exitBadArgs, "put command needs only 1 argument when 'ignore-value' is set")
	}
	var value string
	if !o.ignoreValue {
		var err error
		if value, err = argOrStdin(args, stdin, 1); err != nil {
			return clientv3.Op{}, errUsage
		}
	}
	id, err := strconv.ParseInt(o.lease, 16, 64)
	if err != nil {
		return clientv3.Op{}, failf(exitBadArgs, "bad lease ID (%w), expecting ID in Hex", err)
	}

	var opts []clientv3.OpOption
	if id != 0 {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(id)))
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if o.ignoreValue {
		opts = append(opts, clientv3.WithIgnoreValue())
	}
	if o.ignoreLease {
		opts = append(opts, clientv3.WithIgnoreLease())
	}
	return clientv3.OpPut(key, value, opts...), nil
}

// do sends one put, get or delete request.
func (c *ctl) do(cmd *cobra.Command, op clientv3.Op) (clientv3.OpResponse, error) {
	return request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (clientv3.OpResponse, error) {
		return cli.Do(ctx, op)
	})
}

// argOrStdin returns args[i], or all of stdin if there is no such argument.
func argOrStdin(args []string, stdin io.Reader, i int) (string, error) {
	if i < len(args) {
		return args[i], nil
	}
	b, err := io.ReadAll(stdin)
	if err != nil || len(b) == 0 {
		return "", errors.New("no available argument and stdin")
	}
	return string(b), nil
}

func newPutCommand(o *putOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "put [options] <key> <value> (<value> can also be given from stdin)",
		Short: "Puts the given key into the store",
		Long: `
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
`,
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func (c *ctl) newPutCommand() *cobra.Command {
	o := &putOptions{}
	cmd := newPutCommand(o)
	cmd.GroupID = groupKV
	cmd.Run = c.run(func(cmd *cobra.Command, args []string) error {
		op, err := o.op(args, c.stdin)
		if err != nil {
			return err
		}
		resp, err := c.do(cmd, op)
		if err != nil {
			return err
		}
		return c.display.Put(resp.Put())
	})
	return cmd
}

// getOptions are get's flags.
type getOptions struct {
	consistency  string
	order        string
	sortBy       string
	limit        int64
	prefix       bool
	fromKey      bool
	rev          int64
	keysOnly     bool
	countOnly    bool
	valueOnly    bool
	minCreateRev int64
	maxCreateRev int64
	minModRev    int64
	maxModRev    int64
	stream       bool
}

func (o *getOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.consistency, "consistency", "l", "Linearizable(l) or Serializable(s)")
	fs.StringVar(&o.order, "order", "", "Order of results; ASCEND or DESCEND (ASCEND by default)")
	fs.StringVar(&o.sortBy, "sort-by", "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION")
	fs.Int64Var(&o.limit, "limit", 0, "Maximum number of results")
	fs.BoolVar(&o.prefix, "prefix", false, "Get keys with matching prefix")
	fs.BoolVar(&o.fromKey, "from-key", false, "Get keys that are greater than or equal to the given key using byte compare")
	fs.Int64Var(&o.rev, "rev", 0, "Specify the kv revision")
	fs.BoolVar(&o.keysOnly, "keys-only", false, "Get only the keys")
	fs.BoolVar(&o.countOnly, "count-only", false, "Get only the count")
	fs.BoolVar(&o.valueOnly, "print-value-only", false, `Only write values when using the "simple" output format`)
	fs.Int64Var(&o.minCreateRev, "min-create-rev", 0, "Minimum create revision")
	fs.Int64Var(&o.maxCreateRev, "max-create-rev", 0, "Maximum create revision")
	fs.Int64Var(&o.minModRev, "min-mod-rev", 0, "Minimum modification revision")
	fs.Int64Var(&o.maxModRev, "max-mod-rev", 0, "Maximum modification revision")
	fs.BoolVar(&o.stream, "stream", false, "Use the RangeStream RPC")
}

// serializable maps --consistency to whether the read may be served by any
// member without a quorum round.
func serializable(consistency, reported string) (bool, error) {
	switch consistency {
	case "s":
		return true, nil
	case "l":
		return false, nil
	}
	return false, failf(exitBadFeature, "unknown consistency flag %q", reported)
}

// op builds the range request.
func (o *getOptions) op(args []string) (clientv3.Op, error) {
	key, opts, err := o.parse(args)
	if err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpGet(key, opts...), nil
}

// parse turns arguments and flags into a key and range options, checking
// them in etcdctl's order so that the first complaint is the same.
func (o *getOptions) parse(args []string) (string, []clientv3.OpOption, error) {
	if len(args) == 0 {
		return "", nil, failf(exitBadArgs, "get command needs one argument as key and an optional argument as range_end")
	}
	if o.prefix && o.fromKey {
		return "", nil, failf(exitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}
	if o.keysOnly && o.countOnly {
		return "", nil, failf(exitBadArgs, "`--keys-only` and `--count-only` cannot be set at the same time, choose one")
	}

	var opts []clientv3.OpOption
	s, err := serializable(o.consistency, o.consistency)
	if err != nil {
		return "", nil, err
	}
	if s {
		opts = append(opts, clientv3.WithSerializable())
	}

	key := args[0]
	if len(args) > 1 {
		if o.prefix || o.fromKey {
			return "", nil, failf(exitBadArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}

	opts = append(opts, clientv3.WithLimit(o.limit))
	if o.rev > 0 {
		opts = append(opts, clientv3.WithRev(o.rev))
	}

	order := clientv3.SortNone
	switch strings.ToUpper(o.order) {
	case "ASCEND":
		order = clientv3.SortAscend
	case "DESCEND":
		order = clientv3.SortDescend
	case "":
	default:
		return "", nil, failf(exitBadFeature, "bad sort order %v", o.order)
	}
	target := clientv3.SortByKey
	switch strings.ToUpper(o.sortBy) {
	case "CREATE":
		target = clientv3.SortByCreateRevision
	case "KEY", "":
		target = clientv3.SortByKey
	case "MODIFY":
		target = clientv3.SortByModRevision
	case "VALUE":
		target = clientv3.SortByValue
	case "VERSION":
		target = clientv3.SortByVersion
	default:
		return "", nil, failf(exitBadFeature, "bad sort target %v", o.sortBy)
	}
	opts = append(opts, clientv3.WithSort(target, order))

	key, open := openRange(key, o.prefix, o.fromKey)
	opts = append(opts, open...)
	if o.keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if o.countOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if o.minCreateRev > 0 {
		opts = append(opts, clientv3.WithMinCreateRev(o.minCreateRev))
	}
	if o.maxCreateRev > 0 {
		if o.minCreateRev > o.maxCreateRev {
			return "", nil, failf(exitBadFeature, "getMinCreateRev(=%v) > getMaxCreateRev(=%v)", o.minCreateRev, o.maxCreateRev)
		}
		opts = append(opts, clientv3.WithMaxCreateRev(o.maxCreateRev))
	}
	if o.minModRev > 0 {
		opts = append(opts, clientv3.WithMinModRev(o.minModRev))
	}
	if o.maxModRev > 0 {
		if o.minModRev > o.maxModRev {
			return "", nil, failf(exitBadFeature, "getMinModRev(=%v) > getMaxModRev(=%v)", o.minModRev, o.maxModRev)
		}
		opts = append(opts, clientv3.WithMaxModRev(o.maxModRev))
	}
	return key, opts, nil
}

func newGetCommand(o *getOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get [options] <key> [range_end]",
		Short: "Gets the key or a range of keys",
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func (c *ctl) newGetCommand() *cobra.Command {
	o := &getOptions{}
	cmd := newGetCommand(o)
	cmd.GroupID = groupKV
	cmd.Run = c.run(func(cmd *cobra.Command, args []string) error {
		key, opts, err := o.parse(args)
		if err != nil {
			return err
		}
		resp, err := request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.GetResponse, error) {
			if !o.stream {
				return cli.Get(ctx, key, opts...)
			}
			stream, err := cli.GetStream(ctx, key, opts...)
			if err != nil {
				return nil, err
			}
			return clientv3.GetStreamToGetResponse(stream)
		})
		if err != nil {
			return err
		}

		if o.countOnly {
			if _, ok := c.display.(*fieldsPrinter); !ok {
				return failf(exitBadArgs, "--count-only is only for `--write-out=fields`")
			}
		}
		if o.valueOnly {
			sp, ok := c.display.(*simplePrinter)
			if !ok {
				return failf(exitBadArgs, "print-value-only is only for `--write-out=simple`")
			}
			sp.valueOnly = true
		}
		return c.display.Get(resp)
	})
	return cmd
}

// delOptions are del's flags.
type delOptions struct {
	prefix  bool
	prevKV  bool
	fromKey bool
	isRange bool
}

func (o *delOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.prefix, "prefix", false, "delete keys with matching prefix")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "return deleted key-value pairs")
	fs.BoolVar(&o.fromKey, "from-key", false, "delete keys that are greater than or equal to the given key using byte compare")
	fs.BoolVar(&o.isRange, "range", false, "delete range of keys")
}

// op builds the delete request. An explicit range end without --range is
// deleted only after a warning and a two-second pause in which the user can
// interrupt, as etcdctl does; sleep is that pause.
func (o *delOptions) op(args []string, stderr io.Writer, sleep func(time.Duration)) (clientv3.Op, error) {
	if len(args) == 0 || len(args) > 2 {
		return clientv3.Op{}, failf(exitBadArgs, "del command needs one argument as key and an optional argument as range_end")
	}
	if o.prefix && o.fromKey {
		return clientv3.Op{}, failf(exitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}

	var opts []clientv3.OpOption
	key := args[0]
	if len(args) > 1 {
		if o.prefix || o.fromKey {
			return clientv3.Op{}, failf(exitBadArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
		if !o.isRange {
			fmt.Fprintf(stderr, "Warning: Keys between %q and %q will be deleted. Please interrupt the command within next 2 seconds to cancel. "+
				"You can provide `--range` flag to avoid the delay.\n", args[0], args[1])
			sleep(2 * time.Second)
		}
	}
	key, open := openRange(key, o.prefix, o.fromKey)
	opts = append(opts, open...)
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	return clientv3.OpDelete(key, opts...), nil
}

// openRange applies --prefix or --from-key, which get and del share and
// check are not both set, to key. With either, an empty key means every
// key: from "\x00" to the end.
func openRange(key string, prefix, fromKey bool) (string, []clientv3.OpOption) {
	switch {
	case (prefix || fromKey) && key == "":
		return "\x00", []clientv3.OpOption{clientv3.WithFromKey()}
	case prefix:
		return key, []clientv3.OpOption{clientv3.WithPrefix()}
	case fromKey:
		return key, []clientv3.OpOption{clientv3.WithFromKey()}
	}
	return key, nil
}

func newDelCommand(o *delOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "del [options] <key> [range_end]",
		Short: "Removes the specified key or range of keys [key, range_end)",
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func (c *ctl) newDelCommand() *cobra.Command {
	o := &delOptions{}
	cmd := newDelCommand(o)
	cmd.GroupID = groupKV
	cmd.Run = c.run(func(cmd *cobra.Command, args []string) error {
		op, err := o.op(args, c.stderr, c.sleep)
		if err != nil {
			return err
		}
		resp, err := c.do(cmd, op)
		if err != nil {
			return err
		}
		return c.display.Del(resp.Del())
	})
	return cmd
}

func (c *ctl) newCompactionCommand() *cobra.Command {
	var physical bool
	cmd := &cobra.Command{
		Use:     "compaction [options] <revision>",
		Short:   "Compacts the event history in etcd",
		GroupID: groupKV,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return failf(exitBadArgs, "compaction command needs 1 argument")
			}
			rev, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fail(exitError, err)
			}
			var opts []clientv3.CompactOption
			if physical {
				opts = append(opts, clientv3.WithCompactPhysical())
			}
			_, err = request(c, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.CompactResponse, error) {
				return cli.Compact(ctx, rev, opts...)
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "compacted revision", rev)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&physical, "physical", false, "'true' to wait for compaction to physically remove all old revisions")
	return cmd
}
