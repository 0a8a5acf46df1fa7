package ctl

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func (c *ctl) newElectCommand() *cobra.Command {
	var listen bool
	cmd := &cobra.Command{
		Use:     "elect <election-name> [proposal]",
		Short:   "Observes and participates in leader election",
		GroupID: groupConcurrency,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 && len(args) != 2 {
				return failf(exitBadArgs, "elect takes one election name argument and an optional proposal argument")
			}
			cli, err := c.newClient(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			if len(args) == 1 {
				if !listen {
					return failf(exitBadArgs, "no proposal argument but -l not set")
				}
				return c.observe(cli, args[0])
			}
			if listen {
				return failf(exitBadArgs, "proposal given but -l is set")
			}
			return c.campaign(cli, args[0], args[1])
		}),
	}
	cmd.Flags().BoolVarP(&listen, "listen", "l", false, "observation mode")
	return cmd
}

// Like lock, elect works client-side with package concurrency (keys under
// "<election>/"), as etcdctl does, and stops on SIGINT or SIGTERM.

// observe prints the leader's key and proposal each time the leadership
// changes, until a signal.
func (c *ctl) observe(cli *clientv3.Client, election string) error {
	// etcdctl opens a session (a lease) even though observing needs none;
	// so does cairnctl, so that the two leave the same leases behind.
	s, err := concurrency.NewSession(cli)
	if err != nil {
		return err
	}
	e := concurrency.NewElection(s, election)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for resp := range e.Observe(ctx) {
		if err := c.display.Get(resp); err != nil {
			return err
		}
	}
	if ctx.Err() == nil {
		return errors.New("elect: observer lost")
	}
	return nil
}

// campaign waits to become the leader with proposal, prints the leader
// key and proposal, and leads until a signal, then resigns.
func (c *ctl) campaign(cli *clientv3.Client, election, proposal string) error {
	s, err := concurrency.NewSession(cli)
	if err != nil {
		return err
	}
	e := concurrency.NewElection(s, election)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := e.Campaign(ctx, proposal); err != nil {
		return err
	}
	resp, err := cli.Get(ctx, e.Key())
	if err != nil {
		return err
	}
	if err := c.display.Get(resp); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.Done():
		return errors.New("elect: session expired")
	}
	return e.Resign(context.TODO())
}
