package ctl

import (
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// environment is where ETCDCTL_* variables come from; tests supply their own.
type environment interface {
	// Environ returns "KEY=value" entries, like os.Environ.
	Environ() []string
}

// osEnvironment is the process environment.
type osEnvironment struct{}

func (osEnvironment) Environ() []string { return os.Environ() }

// envKind says why an environment variable was reported.
type envKind int

const (
	// envInvalid is an entry without "=".
	envInvalid envKind = iota
	// envUnrecognized has the prefix but names no flag (ETCDCTL_API=3).
	envUnrecognized
	// envConflict names a flag that was also given on the command line.
	envConflict
)

// envEvent is one environment entry worth telling the user about.
type envEvent struct {
	kind envKind
	env  string // the whole entry for envInvalid and envUnrecognized, the key for envConflict
}

// flagToEnv maps a flag name to its variable: ("ETCDCTL", "dial-timeout")
// is ETCDCTL_DIAL_TIMEOUT.
func flagToEnv(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// lookupEnv finds key in environ; the first entry wins, as with os.Getenv.
func lookupEnv(environ []string, key string) (string, bool) {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// setFlagsFromEnv sets every flag in fs that was not given on the command
// line from its non-empty prefixed variable in environ, and reports, in
// environ's order, the entries to warn about. It stops at the first conflict
// (a variable whose flag was also given), which the caller treats as fatal.
//
// This is etcdctl's behaviour (go.etcd.io/etcd/pkg/v3/flags.SetPflagsFromEnv),
// quirks included: a value that does not parse is not reported and the flag
// is left as pflag's Set leaves it (a bad duration becomes 0), and an empty
// variable is reported as unrecognized.
func setFlagsFromEnv(fs *pflag.FlagSet, prefix string, environ []string) []envEvent {
	alreadySet := make(map[string]bool)
	used := make(map[string]bool)
	fs.VisitAll(func(f *pflag.Flag) {
		key := flagToEnv(prefix, f.Name)
		if f.Changed {
			alreadySet[key] = true
			return
		}
		if val, _ := lookupEnv(environ, key); val != "" {
			used[key] = true
			_ = fs.Set(f.Name, val)
		}
	})

	var events []envEvent
	for _, kv := range environ {
		key, _, ok := strings.Cut(kv, "=")
		if !ok {
			events = append(events, envEvent{envInvalid, kv})
		}
		if used[key] {
			continue
		}
		if alreadySet[key] {
			return append(events, envEvent{envConflict, key})
		}
		if strings.HasPrefix(kv, prefix+"_") {
			events = append(events, envEvent{envUnrecognized, kv})
		}
	}
	return events
}
