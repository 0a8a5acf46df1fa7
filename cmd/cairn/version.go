package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time with
// -ldflags "-X main.version=v0.1.0 -X main.gitSHA=$(git rev-parse --short HEAD)".
var (
	version = "0.0.0-dev"
	gitSHA  = ""
)

// apiVersion is the etcd API version Cairn serves.
const apiVersion = "3.7"

// printVersion writes what --version shows, in etcd's layout.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "cairn Version: %s\n", version)
	fmt.Fprintf(w, "Git SHA: %s\n", revision())
	fmt.Fprintf(w, "Go Version: %s\n", runtime.Version())
	fmt.Fprintf(w, "Go OS/Arch: %s/%s\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "API version: %s\n", apiVersion)
}

// revision is gitSHA when set at build time, else the commit the Go
// toolchain stamped into the binary, else etcd's wording for neither.
func revision() string {
	if gitSHA != "" {
		return gitSHA
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				return s.Value[:7]
			}
		}
	}
	return "Not provided (use -ldflags \"-X main.gitSHA=...\")"
}
