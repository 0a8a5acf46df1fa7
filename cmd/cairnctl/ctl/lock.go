package ctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func (c *ctl) newLockCommand() *cobra.Command {
	ttl := 10
	cmd := &cobra.Command{
		Use:     "lock <lockname> [exec-command arg1 arg2 ...]",
		Short:   "Acquires a named lock",
		GroupID: groupConcurrency,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return failf(exitBadArgs, "lock takes a lock name argument and an optional command to execute")
			}
			cli, err := c.newClient(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			err = c.lock(cli, args[0], ttl, args[1:])
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				// The command's own status; -1 (killed by a signal) makes
				// the process exit with 255, as etcdctl's does.
				return fail(exit.ExitCode(), err)
			}
			return err
		}),
	}
	cmd.Flags().IntVar(&ttl, "ttl", ttl, "timeout for session")
	return cmd
}

// lock takes the lock name with a session of ttl seconds, the way
// etcdctl does: client-side, with concurrency.Mutex (keys under
// "<name>/"), not through the Lock service. With a command, it runs the
// command while holding the lock, with ETCD_LOCK_KEY and ETCD_LOCK_REV in
// its environment, and releases the lock when the command ends. Without
// one, it prints the lock's key and holds the lock until SIGINT or SIGTERM.
//
// Signals only end the wait for the lock, or the holding without a
// command: a running command is left to finish, and to get its own
// signals from the terminal.
func (c *ctl) lock(cli *clientv3.Client, name string, ttl int, command []string) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		return err
	}
	// Like etcdctl, the session is not closed: its lease outlives the
	// process by up to ttl seconds, after the lock key itself is deleted.
	m := concurrency.NewMutex(s, name)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Lock(ctx); err != nil {
		return err
	}

	if len(command) > 0 {
		cmd := exec.Command(command[0], command[1:]...)
		// Prepended as etcdctl does, so that a value inherited from the
		// environment wins.
		cmd.Env = append([]string{
			"ETCD_LOCK_KEY=" + m.Key(),
			fmt.Sprintf("ETCD_LOCK_REV=%d", m.Header().Revision),
		}, c.environ()...)
		cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
		runErr := cmd.Run()
		unlockErr := m.Unlock(context.TODO())
		if runErr != nil {
			return runErr
		}
		return unlockErr
	}

	resp, err := cli.Get(ctx, m.Key())
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return errors.New("lock lost on init")
	}
	if err := c.display.Get(resp); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return m.Unlock(context.TODO())
	case <-s.Done():
		return errors.New("session expired")
	}
}
