package ctl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func (c *ctl) newTxnCommand() *cobra.Command {
	var interactive bool
	cmd := &cobra.Command{
		Use:   "txn [options]",
		Short: "Txn processes all the requests in one transaction",
		Long: `Txn reads multiple etcd requests from standard input and applies them as a single atomic transaction.

A transaction consists of three components:
1) a list of conditions,
2) a list of requests to apply if all the conditions are true,
3) a list of requests to apply if any condition is false.

Example interactive stdin usage:

---
` + cliName + ` txn -i
# compares:
mod("key1") > "0"

# success requests (get, put, delete):
put key1 "overwrote-key1"

# failure requests (get, put, delete):
put key1 "created-key1"
put key2 "some extra key"
---

Refer to https://github.com/etcd-io/etcd/blob/main/etcdctl/README.md#txn-options.`,
		GroupID: groupKV,
	}
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Input transaction in interactive mode")
	cmd.Run = c.run(func(cmd *cobra.Command, args []string) error {
		if len(args) != 0 {
			return failf(exitBadArgs, "txn command does not accept argument")
		}
		cli, err := c.newClient(cmd)
		if err != nil {
			return err
		}
		prompt := func(s string) {
			if interactive {
				fmt.Fprintln(c.stdout, s)
			}
		}
		p := txnParser{stdin: c.stdin, stderr: c.stderr, sleep: c.sleep}
		r := bufio.NewReader(c.stdin)

		txn := cli.Txn(context.Background())
		prompt("compares:")
		cmps, err := p.readCompares(r)
		if err != nil {
			return err
		}
		txn.If(cmps...)
		prompt("success requests (get, put, del):")
		thenOps, err := p.readOps(r)
		if err != nil {
			return err
		}
		txn.Then(thenOps...)
		prompt("failure requests (get, put, del):")
		elseOps, err := p.readOps(r)
		if err != nil {
			return err
		}
		txn.Else(elseOps...)

		resp, err := txn.Commit()
		if err != nil {
			return err
		}
		return c.display.Txn(resp)
	})
	return cmd
}

// txnParser reads etcdctl's txn input: compare lines, a blank line, success
// requests, a blank line, failure requests, a blank line. Request lines are
// put, get and del command lines with the same flags as the commands.
type txnParser struct {
	// stdin is the raw input, which "put <key>" without a value reads to
	// its end, as etcdctl does.
	stdin  io.Reader
	stderr io.Writer
	sleep  func(time.Duration)
}

// readLine returns the next line without surrounding space. Running out of
// input before the blank line that ends a section is an error ("EOF").
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fail(exitInvalidInput, err)
	}
	return strings.TrimSpace(line), nil
}

func (p *txnParser) readCompares(r *bufio.Reader) ([]clientv3.Cmp, error) {
	var cmps []clientv3.Cmp
	for {
		line, err := readLine(r)
		if err != nil || line == "" {
			return cmps, err
		}
		cmp, err := parseCompare(line)
		if err != nil {
			return nil, fail(exitInvalidInput, err)
		}
		cmps = append(cmps, *cmp)
	}
}

func (p *txnParser) readOps(r *bufio.Reader) ([]clientv3.Op, error) {
	var ops []clientv3.Op
	for {
		line, err := readLine(r)
		if err != nil || line == "" {
			return ops, err
		}
		op, err := p.parseRequest(line)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
}

// parseRequest parses one request line by running it through put, get and
// del commands whose Run only builds the op.
func (p *txnParser) parseRequest(line string) (clientv3.Op, error) {
	args, err := argify(line)
	if err != nil {
		return clientv3.Op{}, err
	}
	if len(args) < 2 {
		return clientv3.Op{}, failf(exitInvalidInput, "invalid txn compare request: %s", line)
	}

	var (
		op    clientv3.Op
		built bool
		opErr error
	)
	record := func(o clientv3.Op, err error) {
		op, built, opErr = o, err == nil, err
	}
	po, gopts, do := &putOptions{}, &getOptions{}, &delOptions{}
	put := newPutCommand(po)
	put.Run = func(_ *cobra.Command, args []string) { record(po.op(args, p.stdin)) }
	get := newGetCommand(gopts)
	get.Run = func(_ *cobra.Command, args []string) { record(gopts.op(args)) }
	del := newDelCommand(do)
	del.Run = func(_ *cobra.Command, args []string) { record(do.op(args, p.stderr, p.sleep)) }

	// An unnamed root, as in etcdctl: usage on a bad flag reads " put [options] ...".
	root := &cobra.Command{SilenceErrors: true}
	root.SetOut(p.stderr)
	root.SetErr(p.stderr)
	root.AddCommand(put, get, del)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return clientv3.Op{}, failf(exitInvalidInput, "invalid txn request: %s", line)
	}
	if opErr != nil {
		return clientv3.Op{}, opErr
	}
	if !built {
		// "put --help" and the like print help and run nothing.
		return clientv3.Op{}, failf(exitInvalidInput, "invalid txn request: %s", line)
	}
	return op, nil
}

// parseCompare parses one compare line: target("key") op "value", where
// target is ver/version, c/create, m/mod, val/value or lease, op is one of
// = != < >, and key and value are Go-quoted strings.
func parseCompare(line string) (*clientv3.Cmp, error) {
	target, rest, ok := strings.Cut(line, "(")
	if !ok {
		return nil, fmt.Errorf("malformed comparison: %s", line)
	}
	var key, op, val string
	n, serr := fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val)
	if n != 3 {
		return nil, fmt.Errorf("malformed comparison: %s; got %s(%q) %s %q", line, target, key, op, val)
	}
	if serr != nil {
		return nil, fmt.Errorf("malformed comparison: %s (%w)", line, serr)
	}

	var cmp clientv3.Cmp
	var operand any
	switch target {
	case "ver", "version":
		cmp = clientv3.Version(key)
	case "c", "create":
		cmp = clientv3.CreateRevision(key)
	case "m", "mod":
		cmp = clientv3.ModRevision(key)
	case "val", "value":
		cmp, operand = clientv3.Value(key), val
	case "lease":
		// etcdctl panics here (it hands the client a string where a number
		// is needed); the documented grammar is a decimal lease ID.
		cmp = clientv3.LeaseValue(key)
	default:
		return nil, fmt.Errorf("malformed comparison: %s (unknown target %s)", line, target)
	}
	if operand == nil {
		v, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid txn compare request: %s", line)
		}
		operand = v
	}
	switch op {
	case "=", "!=", "<", ">":
	default:
		// etcdctl panics on any other operator.
		return nil, fmt.Errorf("malformed comparison: %s (unknown operator %s)", line, op)
	}
	cmp = clientv3.Compare(cmp, op, operand)
	return &cmp, nil
}
