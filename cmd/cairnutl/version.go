package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// Set at build time with -ldflags "-X main.version=v0.1.0", as cairn's.
var version = "0.0.0-dev"

func (u *util) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Prints the version of cairnutl",
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(u.stdout, "cairnutl version:", version)
			fmt.Fprintln(u.stdout, "API version: 3.7")
		},
	}
}
