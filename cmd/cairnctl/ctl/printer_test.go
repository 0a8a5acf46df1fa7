package ctl

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// printerCases drive each printer with one fixed response; the names match
// the golden files in testdata/printer, which etcdctl 3.7.3 wrote.
var printerCases = map[string]func(printer) error{
	"get":                  func(p printer) error { return p.Get(fxGet()) },
	"get-empty":            func(p printer) error { return p.Get(fxGetEmpty()) },
	"put":                  func(p printer) error { return p.Put(fxPut()) },
	"del":                  func(p printer) error { return p.Del(fxDel()) },
	"txn-success":          func(p printer) error { return p.Txn(fxTxn(true)) },
	"txn-failure":          func(p printer) error { return p.Txn(fxTxn(false)) },
	"watch":                func(p printer) error { return p.Watch(fxWatch()) },
	"grant":                func(p printer) error { return p.Grant(fxGrant()) },
	"revoke":               func(p printer) error { return p.Revoke(fxLeaseID, fxRevoke()) },
	"keepalive":            func(p printer) error { return p.KeepAlive(fxKeepAlive()) },
	"ttl":                  func(p printer) error { return p.TimeToLive(fxTimeToLive(), false) },
	"ttl-keys":             func(p printer) error { return p.TimeToLive(fxTimeToLive(), true) },
	"ttl-expired":          func(p printer) error { return p.TimeToLive(fxTimeToLiveExpired(), true) },
	"leases":               func(p printer) error { return p.Leases(fxLeases()) },
	"member-list":          func(p printer) error { return p.MemberList(fxMemberList()) },
	"member-add":           func(p printer) error { return p.MemberAdd(fxMemberAdd()) },
	"member-remove":        func(p printer) error { return p.MemberRemove(0x3e9a8f7c2b1d0e5f, fxMemberRemove()) },
	"member-update":        func(p printer) error { return p.MemberUpdate(0x3e9a8f7c2b1d0e5f, fxMemberUpdate()) },
	"member-promote":       func(p printer) error { return p.MemberPromote(0x3e9a8f7c2b1d0e5f, fxMemberPromote()) },
	"alarm":                func(p printer) error { return p.Alarm(fxAlarm()) },
	"alarm-empty":          func(p printer) error { return p.Alarm(fxAlarmEmpty()) },
	"move-leader":          func(p printer) error { return p.MoveLeader(fxMemberID, 0x3e9a8f7c2b1d0e5f, fxMoveLeader()) },
	"role-add":             func(p printer) error { return p.RoleAdd("r1", fxRoleAdd()) },
	"role-get":             func(p printer) error { return p.RoleGet("r1", fxRoleGet()) },
	"role-get-root":        func(p printer) error { return p.RoleGet("root", fxRoleGetNoPerms()) },
	"role-get-none":        func(p printer) error { return p.RoleGet("r0", fxRoleGetNoPerms()) },
	"role-delete":          func(p printer) error { return p.RoleDelete("r1", fxRoleDelete()) },
	"role-list":            func(p printer) error { return p.RoleList(fxRoleList()) },
	"role-grant":           func(p printer) error { return p.RoleGrantPermission("r1", fxRoleGrant()) },
	"role-revoke-key":      func(p printer) error { return p.RoleRevokePermission("r1", "foo", "", fxRoleRevoke()) },
	"role-revoke-range":    func(p printer) error { return p.RoleRevokePermission("r1", "a", "c", fxRoleRevoke()) },
	"role-revoke-from-key": func(p printer) error { return p.RoleRevokePermission("r1", "from", "\x00", fxRoleRevoke()) },
	"user-add":             func(p printer) error { return p.UserAdd("alice", fxUserAdd()) },
	"user-get":             func(p printer) error { return p.UserGet("alice", fxUserGet()) },
	"user-get-none":        func(p printer) error { return p.UserGet("bob", fxUserGetNoRoles()) },
	"user-list":            func(p printer) error { return p.UserList(fxUserList()) },
	"user-passwd":          func(p printer) error { return p.UserChangePassword(fxUserPasswd()) },
	"user-grant":           func(p printer) error { return p.UserGrantRole("alice", "r1", fxUserGrant()) },
	"user-revoke":          func(p printer) error { return p.UserRevokeRole("alice", "r1", fxUserRevoke()) },
	"user-delete":          func(p printer) error { return p.UserDelete("alice", fxUserDelete()) },
	"auth-status":          func(p printer) error { return p.AuthStatus(fxAuthStatus()) },
	"downgrade-validate":   func(p printer) error { return p.Downgrade(clientv3.DowngradeValidate, fxDowngrade()) },
	"downgrade-enable":     func(p printer) error { return p.Downgrade(clientv3.DowngradeEnable, fxDowngrade()) },
	"downgrade-cancel":     func(p printer) error { return p.Downgrade(clientv3.DowngradeCancel, fxDowngrade()) },
}

// TestPrintersMatchEtcdctlGoldens checks every case in every format against
// etcdctl's output byte for byte; where etcdctl has no output it refuses the
// format, and so must we, with exit code 4.
func TestPrintersMatchEtcdctlGoldens(t *testing.T) {
	for name, call := range printerCases {
		for _, format := range []string{"simple", "fields", "json", "protobuf", "table"} {
			for _, isHex := range []bool{false, true} {
				if isHex && (format == "protobuf" || format == "table") {
					continue
				}
				file := name + "." + format
				if isHex {
					file += ".hex"
				}
				t.Run(file, func(t *testing.T) {
					var out, errOut bytes.Buffer
					err := call(newPrinter(format, isHex, &out, &errOut))
					want, rerr := os.ReadFile(filepath.Join("testdata", "printer", file))
					if os.IsNotExist(rerr) {
						if code := exitCode(err); err == nil || code != exitBadFeature {
							t.Fatalf("etcdctl refuses %s; got err %v (code %d), output %q", file, err, code, out.String())
						}
						return
					}
					if rerr != nil {
						t.Fatal(rerr)
					}
					if err != nil {
						t.Fatalf("unexpected error: %v", err)
					}
					if got := out.String(); got != string(want) {
						t.Errorf("output differs from etcdctl\n got: %q\nwant: %q", got, want)
					}
				})
			}
		}
	}
}

func TestUnsupportedFormatMessages(t *testing.T) {
	for _, tc := range []struct {
		format string
		call   func(printer) error
		want   string
	}{
		{"table", func(p printer) error { return p.Get(fxGet()) }, "table not supported as output format"},
		{"fields", func(p printer) error { return p.MemberAdd(fxMemberAdd()) }, "fields not supported as output format"},
		{"protobuf", func(p printer) error { return p.EndpointStatus(nil) }, "protobuf not supported as output format"},
		{"protobuf", func(p printer) error { return p.Revoke(fxLeaseID, fxRevoke()) }, "marshal unsupported for type *clientv3.LeaseRevokeResponse (&{"},
	} {
		var out bytes.Buffer
		err := tc.call(newPrinter(tc.format, false, &out, &out))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || exitCode(err) != exitBadFeature {
			t.Errorf("%s: got %v (code %d), want %q with code %d", tc.format, err, exitCode(err), tc.want, exitBadFeature)
		}
	}
}

func TestUnknownFormatHasNoPrinter(t *testing.T) {
	if p := newPrinter("yaml", false, nil, nil); p != nil {
		t.Fatalf("newPrinter(yaml) = %T, want nil", p)
	}
}
