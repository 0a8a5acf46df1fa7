package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// parseGet parses get's flags and arguments from one command line.
func parseGet(t *testing.T, line ...string) (string, string, *getOptions, error) {
	t.Helper()
	o := &getOptions{}
	fs := pflag.NewFlagSet("get", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(line); err != nil {
		t.Fatal(err)
	}
	op, err := o.op(fs.Args())
	return string(op.KeyBytes()), string(op.RangeBytes()), o, err
}

func TestGetRanges(t *testing.T) {
	for _, tc := range []struct {
		line     []string
		key, end string
	}{
		{[]string{"foo"}, "foo", ""},
		{[]string{"a", "c"}, "a", "c"},
		{[]string{"--prefix", "ab"}, "ab", "ac"},
		{[]string{"--prefix", ""}, "\x00", "\x00"}, // every key
		{[]string{"--from-key", "b"}, "b", "\x00"},
		{[]string{"--from-key", ""}, "\x00", "\x00"},
	} {
		key, end, _, err := parseGet(t, tc.line...)
		if err != nil || key != tc.key || end != tc.end {
			t.Errorf("get %q: key %q end %q err %v, want key %q end %q", tc.line, key, end, err, tc.key, tc.end)
		}
	}
}

func TestGetOptionsReachTheRequest(t *testing.T) {
	o := &getOptions{}
	fs := pflag.NewFlagSet("get", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse([]string{"--limit=3", "--rev=9", "--consistency=s", "--keys-only", "--sort-by=value", "--order=descend",
		"--min-mod-rev=2", "--max-mod-rev=8", "--min-create-rev=1", "--max-create-rev=7", "k"}); err != nil {
		t.Fatal(err)
	}
	op, err := o.op(fs.Args())
	if err != nil {
		t.Fatal(err)
	}
	if op.Limit() != 3 || op.Rev() != 9 || !op.IsSerializable() || !op.IsKeysOnly() || !op.IsSortSet() ||
		op.MinModRev() != 2 || op.MaxModRev() != 8 || op.MinCreateRev() != 1 || op.MaxCreateRev() != 7 {
		t.Errorf("op = %+v", op)
	}
}

// The first complaint is etcdctl's first complaint, with its exit code.
func TestGetArgumentErrorsAsEtcdctl(t *testing.T) {
	for _, tc := range []struct {
		line []string
		want string
		code int
	}{
		{nil, "get command needs one argument as key and an optional argument as range_end", exitBadArgs},
		{[]string{"--prefix", "--from-key", "a"}, "`--prefix` and `--from-key` cannot be set at the same time, choose one", exitBadArgs},
		{[]string{"--keys-only", "--count-only", "a"}, "`--keys-only` and `--count-only` cannot be set at the same time, choose one", exitBadArgs},
		{[]string{"--consistency=x", "--order=bogus", "a"}, `unknown consistency flag "x"`, exitBadFeature},
		{[]string{"--prefix", "a", "z"}, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set", exitBadArgs},
		{[]string{"--order=bogus", "--sort-by=bogus", "a"}, "bad sort order bogus", exitBadFeature},
		{[]string{"--sort-by=bogus", "a"}, "bad sort target bogus", exitBadFeature},
		{[]string{"--min-create-rev=9", "--max-create-rev=3", "a"}, "getMinCreateRev(=9) > getMaxCreateRev(=3)", exitBadFeature},
		{[]string{"--min-mod-rev=5", "--max-mod-rev=3", "a"}, "getMinModRev(=5) > getMaxModRev(=3)", exitBadFeature},
	} {
		_, _, _, err := parseGet(t, tc.line...)
		if err == nil || err.Error() != tc.want || exitCode(err) != tc.code {
			t.Errorf("get %q: got %v (code %d), want %q (code %d)", tc.line, err, exitCode(err), tc.want, tc.code)
		}
	}
}

func TestPutReadsValueFromStdin(t *testing.T) {
	op, err := (&putOptions{lease: "0"}).op([]string{"k"}, strings.NewReader("line1\nline2\n"))
	if err != nil || string(op.ValueBytes()) != "line1\nline2\n" {
		t.Fatalf("value %q, err %v", op.ValueBytes(), err)
	}
	_, err = (&putOptions{lease: "0"}).op([]string{"k"}, strings.NewReader(""))
	if err == nil || err.Error() != "put command needs 1 argument and input from stdin or 2 arguments" || exitCode(err) != exitBadArgs {
		t.Fatalf("empty stdin: got %v", err)
	}
}

func TestPutArgumentErrorsAsEtcdctl(t *testing.T) {
	for _, tc := range []struct {
		o    putOptions
		args []string
		want string
	}{
		{putOptions{lease: "0"}, nil, "put command needs 1 argument and input from stdin or 2 arguments"},
		{putOptions{lease: "0", ignoreValue: true}, []string{"k", "v"}, "put command needs only 1 argument when 'ignore-value' is set"},
		{putOptions{lease: "zz"}, []string{"k", "v"}, `bad lease ID (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex`},
	} {
		_, err := tc.o.op(tc.args, strings.NewReader(""))
		if err == nil || err.Error() != tc.want || exitCode(err) != exitBadArgs {
			t.Errorf("put %q: got %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestDelRanges(t *testing.T) {
	noSleep := func(time.Duration) { t.Error("unexpected pause") }
	for _, tc := range []struct {
		o        delOptions
		args     []string
		key, end string
	}{
		{delOptions{}, []string{"a"}, "a", ""},
		{delOptions{prefix: true}, []string{"ab"}, "ab", "ac"},
		{delOptions{prefix: true}, []string{""}, "\x00", "\x00"},
		{delOptions{fromKey: true}, []string{"b"}, "b", "\x00"},
		{delOptions{fromKey: true}, []string{""}, "\x00", "\x00"},
		{delOptions{isRange: true}, []string{"a", "c"}, "a", "c"},
	} {
		var stderr bytes.Buffer
		op, err := tc.o.op(tc.args, &stderr, noSleep)
		if err != nil || string(op.KeyBytes()) != tc.key || string(op.RangeBytes()) != tc.end {
			t.Errorf("del %q %+v: key %q end %q err %v", tc.args, tc.o, op.KeyBytes(), op.RangeBytes(), err)
		}
	}
}
