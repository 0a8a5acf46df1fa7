// Command cairnctl is Cairn's command line client: a drop-in replacement for
// etcdctl 3.7 that speaks the etcd v3 API. All commands live in package ctl;
// this file only wires the process to it.
package main

import (
	"os"

	"github.com/cairnkv/cairn/cmd/cairnctl/ctl"
)

func main() {
	os.Exit(ctl.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
