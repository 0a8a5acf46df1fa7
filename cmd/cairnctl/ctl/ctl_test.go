package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeEnv is a fixed environment.
type fakeEnv []string

func (e fakeEnv) Environ() []string { return e }

// runCtl runs one invocation without a server and returns its output and
// exit code. Only commands that fail before dialing can be run this way.
func runCtl(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &ctl{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		osArgs: append([]string{cliName}, args...),
		env:    fakeEnv(env),
		sleep:  func(time.Duration) {},
		exit:   func(code int) { t.Fatalf("unexpected exit(%d)", code) },
	}
	code := c.execute(args)
	return out.String(), errOut.String(), code
}

func TestVersion(t *testing.T) {
	out, errOut, code := runCtl(t, nil, "", "version")
	if want := "cairnctl version: " + Version + "\nAPI version: 3.7\n"; out != want || errOut != "" || code != 0 {
		t.Fatalf("got %q %q %d, want %q", out, errOut, code, want)
	}
}

// Failures before any request: the exact stderr line and exit code etcdctl
// gives for the same command line.
func TestEarlyFailuresAsEtcdctl(t *testing.T) {
	for _, tc := range []struct {
		env    []string
		args   []string
		stderr string
		code   int
	}{
		{nil, []string{"get"}, "Error: get command needs one argument as key and an optional argument as range_end\n", 128},
		{nil, []string{"del"}, "Error: del command needs one argument as key and an optional argument as range_end\n", 128},
		{nil, []string{"put"}, "Error: put command needs 1 argument and input from stdin or 2 arguments\n", 128},
		{nil, []string{"put", "k", "v", "-w", "bogus"}, "Error: unsupported output format\n", 4},
		{[]string{"ETCDCTL_WRITE_OUT=yaml"}, []string{"put", "k", "v"}, "Error: unsupported output format\n", 4},
		{nil, []string{"--cert=", "get", "foo"}, "Error: empty string is passed to --cert option\n", 128},
		{nil, []string{"txn", "extra"}, "Error: txn command does not accept argument\n", 128},
		{nil, []string{"lease", "grant"}, "Error: lease grant command needs TTL argument\n", 128},
		{nil, []string{"lease", "grant", "abc"}, "Error: bad TTL (strconv.ParseInt: parsing \"abc\": invalid syntax)\n", 128},
		{nil, []string{"lease", "revoke", "xyz"}, "Error: bad lease ID arg (strconv.ParseInt: parsing \"xyz\": invalid syntax), expecting ID in Hex\n", 128},
		{nil, []string{"compaction"}, "Error: compaction command needs 1 argument\n", 128},
		{nil, []string{"compaction", "abc"}, "Error: strconv.ParseInt: parsing \"abc\": invalid syntax\n", 1},
		{nil, []string{"member", "add"}, "Error: member name not provided\n", 128},
		{nil, []string{"member", "add", "n2", "http://x"}, "Error: too many arguments, did you mean --peer-urls=http://x\n", 128},
		{nil, []string{"member", "remove", "zz"}, "Error: bad member ID arg (strconv.ParseUint: parsing \"zz\": invalid syntax), expecting ID in Hex\n", 128},
		{nil, []string{"member", "list", "--consistency=x"}, "Error: unknown consistency flag \"l\"\n", 4},
		{nil, []string{"snapshot", "save"}, "Error: snapshot save expects one argument <filename>\n", 128},
		{nil, []string{"alarm", "list", "x"}, "Error: alarm list command accepts no arguments\n", 128},
		{nil, []string{"alarm", "disarm", "x"}, "Error: alarm disarm command accepts no arguments\n", 128},
		{nil, []string{"move-leader"}, "Error: move-leader command needs 1 argument\n", 128},
		{nil, []string{"move-leader", "zz"}, "Error: strconv.ParseUint: parsing \"zz\": invalid syntax\n", 128},
		{nil, []string{"watch"}, "Error: bad number of arguments\n", 128},
		{nil, []string{"watch", "foo", "--"}, "Error: bad number of arguments (found separator --, but no commands)\n", 128},
		{[]string{"ETCDCTL_WATCH_RANGE_END=b"}, []string{"watch"}, "Error: ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=\"b\"\n", 128},
		{[]string{"ETCDCTL_WATCH_KEY=a"}, []string{"watch", "b"}, "Error: bad number of arguments (found conflicting environment key)\n", 128},
		{nil, []string{"make-mirror"}, "Error: make-mirror takes one destination argument\n", 128},
		{nil, []string{"make-mirror", "a", "b"}, "Error: make-mirror takes one destination argument\n", 128},
		{nil, []string{"check", "perf", "--load", "q"}, "Error: unknown load option q\n", 4},
		{nil, []string{"check", "datascale", "--load", "xXL"}, "Error: unknown load option xXL\n", 4},
		{nil, []string{"downgrade", "validate"}, "Error: TARGET_VERSION not provided\n", 128},
		{nil, []string{"downgrade", "enable", "3.6", "3.5"}, "Error: too many arguments\n", 128},
		{nil, []string{"downgrade", "enable", ""}, "Error: target version not provided\n", 128},
		{nil, []string{"bogus"}, "Error: unknown command \"bogus\" for \"cairnctl\"\nRun 'cairnctl --help' for usage.\n", 1},
	} {
		out, errOut, code := runCtl(t, tc.env, "", tc.args...)
		if errOut != tc.stderr || code != tc.code || out != "" {
			t.Errorf("%q: got stdout %q stderr %q code %d, want stderr %q code %d", tc.args, out, errOut, code, tc.stderr, tc.code)
		}
	}
}

func TestOptionsListsGlobalFlags(t *testing.T) {
	out, _, code := runCtl(t, nil, "", "options")
	for _, want := range []string{
		"The following options can be passed to any command:\n\n",
		"      --endpoints strings            gRPC endpoints (default [127.0.0.1:2379])\n",
		"  -w, --write-out string             set the output format (fields, json, protobuf, simple, table) (default \"simple\")\n",
	} {
		if !strings.Contains(out, want) || code != 0 {
			t.Errorf("options output lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpHidesGlobalFlagsAndPointsToOptions(t *testing.T) {
	out, _, _ := runCtl(t, nil, "", "--help")
	if strings.Contains(out, "--endpoints") || !strings.HasSuffix(out, "Use \"cairnctl options\" for a list of global command-line options (applies to all commands).\n") {
		t.Errorf("help:\n%s", out)
	}
}
