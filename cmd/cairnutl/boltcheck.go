package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/snapshot"
)

// checkBoltCommand is the hidden child of checkBoltApart.
func (u *util) checkBoltCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "check-bolt <filename>",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return snapshot.CheckBolt(args[0])
		},
	}
}

// checkBoltApart reads an etcd-format file whose hash was not checked in
// a child process first: bbolt trusts a file's pages, and a damaged one
// can fault the process that reads it, so it faults the child, and the
// user gets an error naming the file instead of a crash.
func checkBoltApart(path string) error {
	if f, err := snapshot.Detect(path); err != nil || f != snapshot.Etcd {
		return nil // not bbolt: read in-process, with its own checks
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "snapshot", "check-bolt", path)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == exitError {
		return errors.New(strings.TrimPrefix(strings.TrimSpace(string(out)), "Error: "))
	}
	return fmt.Errorf("snapshot: %s is a corrupt bbolt file (reading it failed: %v)", path, err)
}
