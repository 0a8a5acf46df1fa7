// Package compat holds a test that runs the official etcdctl against a real
// etcd and a real Cairn member, the same scripted commands against each, and
// compares what etcdctl prints. It is its own module so that nothing it
// needs enters Cairn's go.mod; it starts the servers as processes and needs
// no Go dependency at all.
//
// See README.md for how to run it and which differences it normalises away.
package compat
