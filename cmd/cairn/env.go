package main

import (
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// envPrefix is the prefix of the environment variables that set flags:
// --data-dir is ETCD_DATA_DIR, as in etcd, so existing manifests work.
const envPrefix = "ETCD"

// flagToEnv names the environment variable for a flag.
func flagToEnv(name string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// environMap turns os.Environ's "KEY=value" list into a map; the first
// occurrence of a key wins, as with os.Getenv.
func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}

// applyEnv sets each flag not given on the command line from its ETCD_*
// variable, following etcd's flags.SetFlagsFromEnv: an empty variable
// counts as unset; a variable for a flag that is also given on the command
// line is an error (etcd exits with "conflicting environment variable is
// shadowed by corresponding command-line flag"), not a silent override; an
// ETCD_* variable naming no flag is logged and otherwise ignored.
func applyEnv(fs *flag.FlagSet, env map[string]string, lg *slog.Logger) error {
	onCmdLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCmdLine[flagToEnv(f.Name)] = true })

	used := map[string]bool{}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		key := flagToEnv(f.Name)
		val := env[key]
		if err != nil || onCmdLine[key] || val == "" {
			return
		}
		used[key] = true
		if serr := fs.Set(f.Name, val); serr != nil {
			err = fmt.Errorf("invalid value %q for %s: %w", val, key, serr)
			return
		}
		if strings.Contains(f.Name, "password") {
			val = "(hidden)"
		}
		lg.Info("recognized and used environment variable", "variable-name", key, "variable-value", val)
	})
	if err != nil {
		return err
	}

	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		switch {
		case used[key]:
		case onCmdLine[key]:
			return fmt.Errorf("conflicting environment variable %s is shadowed by corresponding command-line flag (either unset environment variable or disable flag)", key)
		case strings.HasPrefix(key, envPrefix+"_"):
			lg.Warn("unrecognized environment variable", "environment-variable", key+"="+env[key])
		}
	}
	return nil
}
