package ctl

import (
	"strings"
	"testing"
	"time"
)

// Argument errors of the auth, user, role, lock and elect commands, found
// before any request, with etcdctl's words and exit codes.
func TestAuthArgumentErrorsAsEtcdctl(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		stderr string
		code   int
	}{
		{[]string{"auth", "enable", "x"}, "auth enable command does not accept any arguments", 128},
		{[]string{"auth", "disable", "x"}, "auth disable command does not accept any arguments", 128},
		{[]string{"auth", "status", "x"}, "auth status command does not accept any arguments", 128},
		{[]string{"user", "add"}, "user add command requires user name as its argument", 128},
		{[]string{"user", "add", "a", "b"}, "user add command requires user name as its argument", 128},
		{[]string{"user", "add", ":pw"}, "empty user name is not allowed", 128},
		{[]string{"user", "delete"}, "user delete command requires user name as its argument", 128},
		{[]string{"user", "get"}, "user get command requires user name as its argument", 128},
		{[]string{"user", "list", "x"}, "user list command requires no arguments", 128},
		{[]string{"user", "passwd"}, "user passwd command requires user name as its argument", 128},
		{[]string{"user", "grant-role", "u"}, "user grant command requires user name and role name as its argument", 128},
		{[]string{"user", "revoke-role", "u"}, "user revoke-role requires user name and role name as its argument", 128},
		{[]string{"role", "add"}, "role add command requires role name as its argument", 128},
		{[]string{"role", "delete", "a", "b"}, "role delete command requires role name as its argument", 128},
		{[]string{"role", "get"}, "role get command requires role name as its argument", 128},
		{[]string{"role", "list", "x"}, "role list command requires no arguments", 128},
		{[]string{"role", "grant-permission", "r", "read"}, "role grant command requires role name, permission type, and key [endkey] as its argument", 128},
		{[]string{"role", "grant-permission", "r", "bogus", "k"}, "invalid permission type: bogus", 128},
		{[]string{"role", "grant-permission", "--prefix", "--from-key", "r", "read", "k"}, "--from-key and --prefix flags are mutually exclusive", 128},
		{[]string{"role", "grant-permission", "--prefix", "r", "read", "a", "b"}, "unexpected endkey argument with --prefix flag", 128},
		{[]string{"role", "revoke-permission", "r"}, "role revoke-permission command requires role name and key [endkey] as its argument", 128},
		{[]string{"role", "revoke-permission", "--from-key", "r", "a", "b"}, "unexpected endkey argument with --from-key flag", 128},
		{[]string{"lock"}, "lock takes a lock name argument and an optional command to execute", 128},
		{[]string{"elect"}, "elect takes one election name argument and an optional proposal argument", 128},
		{[]string{"elect", "a", "b", "c"}, "elect takes one election name argument and an optional proposal argument", 128},
		// Checked once the client exists, which needs no server.
		{[]string{"elect", "e"}, "no proposal argument but -l not set", 128},
		{[]string{"elect", "-l", "e", "p"}, "proposal given but -l is set", 128},
	} {
		out, errOut, code := runCtl(t, nil, "", tc.args...)
		if want := "Error: " + tc.stderr + "\n"; errOut != want || code != tc.code || out != "" {
			t.Errorf("%q: got stdout %q stderr %q code %d, want stderr %q code %d", tc.args, out, errOut, code, want, tc.code)
		}
	}
}

func TestPermissionKeyRanges(t *testing.T) {
	for _, tc := range []struct {
		f        permRangeFlags
		args     []string
		key, end string
	}{
		{permRangeFlags{}, []string{"k"}, "k", ""},
		{permRangeFlags{}, []string{"a", "c"}, "a", "c"},
		{permRangeFlags{}, []string{"a", "c", "ignored"}, "a", "c"},
		{permRangeFlags{prefix: true}, []string{"ab"}, "ab", "ac"},
		{permRangeFlags{prefix: true}, []string{"a\xff"}, "a\xff", "b"},
		{permRangeFlags{fromKey: true}, []string{"b"}, "b", "\x00"},
		// The empty key is the whole key space, and an endkey after it is
		// ignored.
		{permRangeFlags{}, []string{""}, "\x00", ""},
		{permRangeFlags{}, []string{"", "z"}, "\x00", ""},
		{permRangeFlags{prefix: true}, []string{""}, "\x00", "\x00"},
		{permRangeFlags{fromKey: true}, []string{"", "z"}, "\x00", "\x00"},
	} {
		key, end, err := tc.f.keyRange(tc.args)
		if err != nil || key != tc.key || end != tc.end {
			t.Errorf("%+v %q: key %q end %q err %v, want key %q end %q", tc.f, tc.args, key, end, err, tc.key, tc.end)
		}
	}
}

// The new user's password: --no-password, then --new-user-password (with
// the whole argument as the name), then name:password, then asked.
func TestUserAddPasswordPrecedence(t *testing.T) {
	for _, tc := range []struct {
		arg, flagPassword string
		noPassword        bool
		stdin             string
		user, password    string
	}{
		{"a:b", "", true, "", "a:b", ""},
		{"a:b", "flag", false, "", "a:b", "flag"},
		{"a:b:c", "", false, "", "a", "b:c"},
		{"a:", "", false, "", "a", ""},
		{"a", "", false, "pw\npw\n", "a", "pw"},
	} {
		var out strings.Builder
		c := &ctl{stdin: strings.NewReader(tc.stdin), stdout: &out, sleep: func(time.Duration) {}}
		user, password, opts, err := c.userAddArgs(tc.arg, true, tc.flagPassword, tc.noPassword)
		if err != nil || user != tc.user || password != tc.password || opts.NoPassword != tc.noPassword {
			t.Errorf("%+v: user %q password %q opts %+v err %v", tc, user, password, opts, err)
		}
	}
}

func TestNewPasswordAsEtcdctlReadsIt(t *testing.T) {
	for _, tc := range []struct {
		interactive bool
		stdin       string
		password    string
		prompts     string
		err         string
	}{
		// Without --interactive, the first word on stdin.
		{false, "  two words\n", "two", "", ""},
		{false, "", "", "", ""},
		// With it, the same line twice, trimmed.
		{true, " pw \r\npw\n", "pw", "Password of u: \nType password of u again for confirmation: \n", ""},
		{true, "pw\nother\n", "", "Password of u: \nType password of u again for confirmation: \n", "given passwords are different"},
		{true, "pw", "", "Password of u: \nType password of u again for confirmation: \n", "given passwords are different"},
		{true, "\n", "", "Password of u: \n", "empty password"},
	} {
		var out strings.Builder
		c := &ctl{stdin: strings.NewReader(tc.stdin), stdout: &out}
		got, err := c.newPassword("u", tc.interactive)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || exitCode(err) != exitBadArgs {
				t.Errorf("%+v: err %v (code %d), want %q (128)", tc, err, exitCode(err), tc.err)
			}
		} else if err != nil || got != tc.password {
			t.Errorf("%+v: password %q err %v", tc, got, err)
		}
		if out.String() != tc.prompts {
			t.Errorf("%+v: prompts %q, want %q", tc, out.String(), tc.prompts)
		}
	}
}
