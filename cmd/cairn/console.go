package main

import (
	"flag"
	"strconv"
)

// registerConsole adds Cairn's --console flag: left unset (*p nil) the
// server decides (on only when every client URL is loopback, see
// server.Config.ConsoleOn); --console or --console=true forces the web
// console on, --console=false off.
func registerConsole(fs *flag.FlagSet, p **bool) {
	fs.Var(&optionalBool{p: p}, "console", "Cairn only: serve the web console at /ui/ on the client URLs. Default: on only when every client URL is loopback (127.0.0.0/8, ::1, localhost or a unix socket); --console=true turns it on anywhere, --console=false off.")
	fs.Lookup("console").DefValue = "auto"
}

// optionalBool is a boolean flag that remembers whether it was given.
type optionalBool struct{ p **bool }

func (v *optionalBool) String() string {
	if v.p == nil || *v.p == nil {
		return "auto"
	}
	return strconv.FormatBool(**v.p)
}

func (v *optionalBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*v.p = &b
	return nil
}

// IsBoolFlag lets --console be given bare.
func (v *optionalBool) IsBoolFlag() bool { return true }
