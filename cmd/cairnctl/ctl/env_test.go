package ctl

import (
	"reflect"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestFlagToEnv(t *testing.T) {
	for name, want := range map[string]string{
		"endpoints":                "ETCDCTL_ENDPOINTS",
		"dial-timeout":             "ETCDCTL_DIAL_TIMEOUT",
		"write-out":                "ETCDCTL_WRITE_OUT",
		"insecure-skip-tls-verify": "ETCDCTL_INSECURE_SKIP_TLS_VERIFY",
	} {
		if got := flagToEnv("ETCDCTL", name); got != want {
			t.Errorf("flagToEnv(%q) = %q, want %q", name, got, want)
		}
	}
}

// globalFlagSet returns the global flags parsed from args.
func globalFlagSet(t *testing.T, args ...string) (*pflag.FlagSet, *globalFlags) {
	t.Helper()
	g := &globalFlags{}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs, g
}

func TestEnvSetsFlagsNotGivenOnCommandLine(t *testing.T) {
	fs, g := globalFlagSet(t, "--hex")
	events := setFlagsFromEnv(fs, "ETCDCTL", []string{
		"HOME=/root",
		"ETCDCTL_ENDPOINTS=a:1, b:2",
		"ETCDCTL_WRITE_OUT=json",
		"ETCDCTL_DIAL_TIMEOUT=7s",
		"ETCDCTL_INSECURE_SKIP_TLS_VERIFY=true",
		"ETCDCTL_WRITE_OUT=fields", // the first entry wins, as with os.Getenv
	})
	if len(events) != 0 {
		t.Errorf("events = %+v, want none", events)
	}
	if want := []string{"a:1", " b:2"}; !reflect.DeepEqual(g.endpoints, want) {
		t.Errorf("endpoints = %q, want %q", g.endpoints, want)
	}
	if g.outputFormat != "json" || g.dialTimeout != 7*time.Second || !g.insecureSkipVerify || !g.isHex {
		t.Errorf("flags = %+v", g)
	}
}

func TestEnvReportsUnrecognizedAndEmptyVariables(t *testing.T) {
	fs, g := globalFlagSet(t)
	events := setFlagsFromEnv(fs, "ETCDCTL", []string{
		"ETCDCTL_API=3",
		"ETCDCTLX=1",
		"ETCDCTL_ENDPOINTS=",
		"PATH=/bin",
	})
	want := []envEvent{
		{envUnrecognized, "ETCDCTL_API=3"},
		{envUnrecognized, "ETCDCTL_ENDPOINTS="},
	}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events = %+v, want %+v", events, want)
	}
	if !reflect.DeepEqual(g.endpoints, []string{"127.0.0.1:2379"}) {
		t.Errorf("an empty variable must leave the default; endpoints = %q", g.endpoints)
	}
}

// etcdctl does not report a value that does not parse; the flag is left as
// pflag's Set leaves it, which for a duration is zero (no timeout).
func TestEnvIgnoresValuesThatDoNotParse(t *testing.T) {
	fs, g := globalFlagSet(t)
	if events := setFlagsFromEnv(fs, "ETCDCTL", []string{"ETCDCTL_DIAL_TIMEOUT=bogus"}); len(events) != 0 {
		t.Errorf("events = %+v", events)
	}
	if g.dialTimeout != 0 {
		t.Errorf("dialTimeout = %v, want 0 as etcdctl leaves it", g.dialTimeout)
	}
}

func TestEnvShadowedByFlagIsAConflict(t *testing.T) {
	fs, g := globalFlagSet(t, "--endpoints=x:1")
	events := setFlagsFromEnv(fs, "ETCDCTL", []string{
		"ETCDCTL_API=3",
		"ETCDCTL_ENDPOINTS=y:2",
		"ETCDCTL_FOO=after the conflict, never reported",
	})
	want := []envEvent{{envUnrecognized, "ETCDCTL_API=3"}, {envConflict, "ETCDCTL_ENDPOINTS"}}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events = %+v, want %+v", events, want)
	}
	if !reflect.DeepEqual(g.endpoints, []string{"x:1"}) {
		t.Errorf("the flag must win; endpoints = %q", g.endpoints)
	}
}

func TestEnvInvalidEntry(t *testing.T) {
	fs, _ := globalFlagSet(t)
	events := setFlagsFromEnv(fs, "ETCDCTL", []string{"ETCDCTL_NOEQUALS"})
	want := []envEvent{{envInvalid, "ETCDCTL_NOEQUALS"}, {envUnrecognized, "ETCDCTL_NOEQUALS"}}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events = %+v, want %+v", events, want)
	}
}
