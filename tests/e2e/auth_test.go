package e2e

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// The auth tests pin etcd 3.7.3's rules: scripts/test.sh runs them against
// etcd too, so every expectation below is etcd's behaviour.

const rootPassword = "rootpw"

// authRole is a role of the matrix and what it grants.
type authRole struct {
	name  string
	perms []clientv3.Permission
}

func perm(typ authpb.Permission_Type, key, end string) clientv3.Permission {
	return clientv3.Permission{PermType: typ, Key: []byte(key), RangeEnd: []byte(end)}
}

// The matrix's roles, one per kind of grant, and a user holding each.
var matrixRoles = []authRole{
	{"rkey", []clientv3.Permission{perm(clientv3.PermReadWrite, "k1", "")}},
	{"rrange", []clientv3.Permission{perm(clientv3.PermRead, "r1", "r5")}},
	{"rprefix", []clientv3.Permission{perm(clientv3.PermWrite, "p/", "p0")}},
	{"rfrom", []clientv3.Permission{perm(clientv3.PermRead, "z", "\x00")}},
	// Two touching grants cover [a, e) between them.
	{"roverlap", []clientv3.Permission{perm(clientv3.PermRead, "a", "c"), perm(clientv3.PermRead, "c", "e")}},
}

var matrixUsers = []string{"root", "ukey", "urange", "uprefix", "ufrom", "uoverlap", "unone", "anon"}

// setupAuth makes root and the matrix's roles and users on cli (auth
// still off), then turns auth on.
func setupAuth(t *testing.T, ctx context.Context, cli *clientv3.Client) {
	t.Helper()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cli.UserAdd(ctx, "root", rootPassword))
	must(cli.RoleAdd(ctx, "root"))
	must(cli.UserGrantRole(ctx, "root", "root"))
	for _, r := range matrixRoles {
		must(cli.RoleAdd(ctx, r.name))
		for i := range r.perms {
			p := &r.perms[i]
			must(cli.RoleGrantPermission(ctx, r.name, string(p.Key), string(p.RangeEnd), clientv3.PermissionType(p.PermType)))
		}
		user := "u" + strings.TrimPrefix(r.name, "r")
		must(cli.UserAdd(ctx, user, user+"pw"))
		must(cli.UserGrantRole(ctx, user, r.name))
	}
	must(cli.UserAdd(ctx, "unone", "unonepw"))
	must(cli.AuthEnable(ctx))
}

// authClient is a client of m as user (anon: no credentials).
func authClient(t *testing.T, m *testcluster.Member, user string) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	switch user {
	case "anon":
	case "root":
		cfg.Username, cfg.Password = "root", rootPassword
	default:
		cfg.Username, cfg.Password = user, user+"pw"
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// outcome is "ok" or the error's code and message.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	code, msg := errCodeMsg(err)
	return fmt.Sprintf("%v: %s", code, msg)
}

const (
	denied    = "PermissionDenied: etcdserver: permission denied"
	userEmpty = "InvalidArgument: etcdserver: user name is empty"
)

// matrixOp is one operation of the matrix and who may do it (root always
// may, and gets rootGets if that is set: an error past the permission
// check). Those who may not get denied, and anon userEmpty, unless
// refusals says otherwise. everyone, when set, is what every caller gets
// (an error etcd gives before it looks at the caller).
type matrixOp struct {
	name     string
	allowed  []string
	rootGets string
	everyone string
	refusals map[string]string
	do       func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error
}

// matrixEnv is the state the operations work on: a lease (held by root)
// with k1 attached, the member, and the learner root adds.
type matrixEnv struct {
	leaseK1   clientv3.LeaseID
	root      *clientv3.Client
	memberID  uint64
	peerURLs  []string
	learnerID uint64
}

// withLeasedKey runs fn on a fresh lease of root's with key attached,
// then revokes the lease (deleting key) unless fn did.
func (env *matrixEnv) withLeasedKey(ctx context.Context, key string, fn func(clientv3.LeaseID) error) error {
	l, err := env.root.Grant(ctx, 600)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if key != "" {
		if _, err := env.root.Put(ctx, key, "v", clientv3.WithLease(l.ID)); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	defer env.root.Revoke(ctx, l.ID) //nolint:errcheck // gone already when fn revoked it
	return fn(l.ID)
}

// maint is the raw Maintenance client on cli's connection (with cli's
// token), for the RPCs clientv3 does not wrap.
func maint(cli *clientv3.Client) pb.MaintenanceClient {
	return pb.NewMaintenanceClient(cli.ActiveConnection())
}

// attach (re)attaches k1 to the lease, which a put of k1 by an earlier
// operation detached.
func (env *matrixEnv) attach(ctx context.Context) {
	_, _ = env.root.Put(ctx, "k1", "v", clientv3.WithLease(env.leaseK1))
}

// watchRefusals: a refused watch is a cancellation whose reason clientv3
// reports as an Unknown error wrapping the reason's status.
var watchRefusals = func() map[string]string {
	r := map[string]string{"anon": "Unknown: rpc error: code = InvalidArgument desc = etcdserver: user name is empty"}
	for _, u := range matrixUsers {
		if u != "anon" {
			r[u] = "Unknown: rpc error: code = PermissionDenied desc = etcdserver: permission denied"
		}
	}
	return r
}()

func getOp(key string, opts ...clientv3.OpOption) func(context.Context, *clientv3.Client, *matrixEnv) error {
	return func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Get(ctx, key, opts...)
		return err
	}
}

func putOp(key string, opts ...clientv3.OpOption) func(context.Context, *clientv3.Client, *matrixEnv) error {
	return func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Put(ctx, key, "v", opts...)
		return err
	}
}

func delOp(key string, opts ...clientv3.OpOption) func(context.Context, *clientv3.Client, *matrixEnv) error {
	return func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Delete(ctx, key, opts...)
		return err
	}
}

func allUsers() []string {
	return slices.DeleteFunc(slices.Clone(matrixUsers), func(u string) bool { return u == "anon" })
}

var matrixOps = []matrixOp{
	{name: "get k1", allowed: []string{"ukey"}, do: getOp("k1")},
	{name: "put k1", allowed: []string{"ukey"}, do: putOp("k1")},
	{name: "put k1 prev_kv", allowed: []string{"ukey"}, do: putOp("k1", clientv3.WithPrevKV())},
	{name: "get r3", allowed: []string{"urange"}, do: getOp("r3")},
	{name: "put r3", do: putOp("r3")},
	{name: "get [r1,r5)", allowed: []string{"urange"}, do: getOp("r1", clientv3.WithRange("r5"))},
	{name: "get [r2,r4)", allowed: []string{"urange"}, do: getOp("r2", clientv3.WithRange("r4"))},
	{name: "get [r1,r6)", do: getOp("r1", clientv3.WithRange("r6"))},
	{name: "put p/a", allowed: []string{"uprefix"}, do: putOp("p/a")},
	{name: "get p/a", do: getOp("p/a")},
	{name: "delete prefix p/", allowed: []string{"uprefix"}, do: delOp("p/", clientv3.WithPrefix())},
	{name: "delete [p/a,p/b)", allowed: []string{"uprefix"}, do: delOp("p/a", clientv3.WithRange("p/b"))},
	{name: "delete p/a prev_kv", do: delOp("p/a", clientv3.WithPrevKV())},
	{name: "get from z", allowed: []string{"ufrom"}, do: getOp("z", clientv3.WithFromKey())},
	{name: "get zzz", allowed: []string{"ufrom"}, do: getOp("zzz")},
	{name: "get from y", do: getOp("y", clientv3.WithFromKey())},
	{name: "get [a,e)", allowed: []string{"uoverlap"}, do: getOp("a", clientv3.WithRange("e"))},
	{name: "get [b,d)", allowed: []string{"uoverlap"}, do: getOp("b", clientv3.WithRange("d"))},
	{name: "get [a,f)", do: getOp("a", clientv3.WithRange("f"))},
	{name: "get prefix a", allowed: []string{"uoverlap"}, do: getOp("a", clientv3.WithPrefix())},
	{name: "get prefix d", allowed: []string{"uoverlap"}, do: getOp("d", clientv3.WithPrefix())},
	{name: "get prefix e", do: getOp("e", clientv3.WithPrefix())},
	{name: "txn k1 then put k1", allowed: []string{"ukey"}, do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("k1"), ">", -1)).Then(clientv3.OpPut("k1", "t")).Commit()
		return err
	}},
	{name: "txn r3 then put k1", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("r3"), ">", -1)).Then(clientv3.OpPut("k1", "t")).Commit()
		return err
	}},
	{name: "txn else branch put r3", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Txn(ctx).Then(clientv3.OpGet("k1")).Else(clientv3.OpPut("r3", "t")).Commit()
		return err
	}},
	{name: "nested txn put p/x", allowed: []string{"uprefix"}, do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Txn(ctx).Then(clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("p/x", "n")}, nil)).Commit()
		return err
	}},
	{name: "read-only txn get r3", allowed: []string{"urange"}, do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Txn(ctx).Then(clientv3.OpGet("r3")).Commit()
		return err
	}},
	{name: "watch k1", allowed: []string{"ukey"}, do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		defer cancel()
		wch := cli.Watch(ctx, "k1", clientv3.WithCreatedNotify())
		select {
		case wr, ok := <-wch:
			if !ok {
				return fmt.Errorf("watch closed")
			}
			return wr.Err()
		case <-time.After(10 * time.Second):
			return fmt.Errorf("no watch response")
		}
	}, refusals: watchRefusals},
	{name: "lease grant", allowed: allUsers(), do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Grant(ctx, 60)
		return err
	}},
	{name: "lease time-to-live", allowed: allUsers(), do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		_, err := cli.TimeToLive(ctx, env.leaseK1)
		return err
	}},
	{name: "lease time-to-live keys", allowed: []string{"ukey"}, do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		env.attach(ctx)
		_, err := cli.TimeToLive(ctx, env.leaseK1, clientv3.WithAttachedKeys())
		return err
	}},
	{name: "lease keep-alive once", allowed: []string{"ukey"}, do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		env.attach(ctx)
		_, err := cli.KeepAliveOnce(ctx, env.leaseK1)
		return err
	}},
	{name: "lease leases", allowed: []string{"ukey"}, do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		// Read on every key of every lease: only k1's lease has keys.
		env.attach(ctx)
		_, err := cli.Leases(ctx)
		return err
	}},
	{name: "lease leases (p/l leased too)", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		env.attach(ctx)
		return env.withLeasedKey(ctx, "p/l", func(clientv3.LeaseID) error {
			_, err := cli.Leases(ctx)
			return err
		})
	}},
	{name: "lease revoke (no keys)", allowed: allUsers(), do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		return env.withLeasedKey(ctx, "", func(id clientv3.LeaseID) error {
			_, err := cli.Revoke(ctx, id)
			return err
		})
	}},
	{name: "lease revoke (k1 leased)", allowed: []string{"ukey"}, do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		defer env.attach(ctx) // the revoke deleted k1
		return env.withLeasedKey(ctx, "k1", func(id clientv3.LeaseID) error {
			_, err := cli.Revoke(ctx, id)
			return err
		})
	}},
	{name: "lease revoke (p/l leased)", allowed: []string{"uprefix"}, do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		return env.withLeasedKey(ctx, "p/l", func(id clientv3.LeaseID) error {
			_, err := cli.Revoke(ctx, id)
			return err
		})
	}},
	{name: "lease revoke (r3 leased)", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		return env.withLeasedKey(ctx, "r3", func(id clientv3.LeaseID) error {
			_, err := cli.Revoke(ctx, id)
			return err
		})
	}},
	{name: "lease time-to-live keys (p/l)", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		return env.withLeasedKey(ctx, "p/l", func(id clientv3.LeaseID) error {
			_, err := cli.TimeToLive(ctx, id, clientv3.WithAttachedKeys())
			return err
		})
	}},
	{name: "lease time-to-live (p/l)", allowed: allUsers(), do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		return env.withLeasedKey(ctx, "p/l", func(id clientv3.LeaseID) error {
			_, err := cli.TimeToLive(ctx, id)
			return err
		})
	}},
	{name: "lease time-to-live keys (r3)", allowed: []string{"urange"}, do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		return env.withLeasedKey(ctx, "r3", func(id clientv3.LeaseID) error {
			_, err := cli.TimeToLive(ctx, id, clientv3.WithAttachedKeys())
			return err
		})
	}},
	{name: "lease keep-alive once (p/l)", allowed: []string{"uprefix"}, do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		return env.withLeasedKey(ctx, "p/l", func(id clientv3.LeaseID) error {
			_, err := cli.KeepAliveOnce(ctx, id)
			return err
		})
	}},
	{name: "lease keep-alive once (r3)", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		return env.withLeasedKey(ctx, "r3", func(id clientv3.LeaseID) error {
			_, err := cli.KeepAliveOnce(ctx, id)
			return err
		})
	}},
	{name: "put k1 on a lease with p/l", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		// Write on k1 is not enough: a put onto a lease needs write on
		// the lease's keys too.
		defer env.attach(ctx)
		return env.withLeasedKey(ctx, "p/l", func(id clientv3.LeaseID) error {
			_, err := cli.Put(ctx, "k1", "v", clientv3.WithLease(id))
			return err
		})
	}},
	{name: "put p/m on a lease with p/l", allowed: []string{"uprefix"}, do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		return env.withLeasedKey(ctx, "p/l", func(id clientv3.LeaseID) error {
			_, err := cli.Put(ctx, "p/m", "v", clientv3.WithLease(id))
			return err
		})
	}},
	{name: "status", allowed: allUsers(), do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Status(ctx, cli.Endpoints()[0])
		return err
	}},
	{name: "alarm list", allowed: allUsers(), do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.AlarmList(ctx)
		return err
	}},
	{name: "hash kv", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.HashKV(ctx, cli.Endpoints()[0], 0)
		return err
	}},
	{name: "hash", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := maint(cli).Hash(ctx, &pb.HashRequest{})
		return err
	}},
	{name: "snapshot", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		rc, err := cli.Snapshot(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	}},
	{name: "move leader (to itself)", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		_, err := cli.MoveLeader(ctx, env.memberID)
		return err
	}},
	{name: "downgrade validate 3.6", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Downgrade(ctx, clientv3.DowngradeValidate, "3.6")
		return err
	}},
	{name: "downgrade validate three", rootGets: "InvalidArgument: etcdserver: wrong downgrade target version format", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Downgrade(ctx, clientv3.DowngradeValidate, "three")
		return err
	}},
	{name: "alarm activate NOSPACE", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		_, err := maint(cli).Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: env.memberID, Alarm: pb.AlarmType_NOSPACE})
		if err == nil {
			// Out of NOSPACE before the next cell.
			if _, derr := env.root.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: env.memberID, Alarm: pb.AlarmType_NOSPACE}); derr != nil {
				return fmt.Errorf("disarm after activate: %w", derr)
			}
		}
		return err
	}},
	{name: "alarm disarm NOSPACE", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		_, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: env.memberID, Alarm: pb.AlarmType_NOSPACE})
		return err
	}},
	{name: "compact", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		resp, err := cli.Get(ctx, "k1")
		if err != nil {
			// Not allowed to read k1: compact at revision 1 instead.
			_, err = cli.Compact(ctx, 1)
		} else {
			_, err = cli.Compact(ctx, resp.Header.Revision)
		}
		if err != nil && strings.Contains(err.Error(), "compacted") {
			return nil // allowed, already compacted that far
		}
		return err
	}},
	{name: "defragment", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.Defragment(ctx, cli.Endpoints()[0])
		return err
	}},
	{name: "member list", allowed: allUsers(), do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.MemberList(ctx)
		return err
	}},
	{name: "member update (same URLs)", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		_, err := cli.MemberUpdate(ctx, env.memberID, env.peerURLs)
		return err
	}},
	{name: "member add learner", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		resp, err := cli.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:1"})
		if err == nil {
			env.learnerID = resp.Member.ID
		}
		return err
	}},
	{name: "member promote learner", rootGets: "FailedPrecondition: etcdserver: can only promote a learner member which is in sync with leader", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		_, err := cli.MemberPromote(ctx, env.learnerID)
		return err
	}},
	{name: "move leader (to the learner)", rootGets: "FailedPrecondition: etcdserver: bad leader transferee", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		_, err := cli.MoveLeader(ctx, env.learnerID)
		return err
	}},
	{name: "member remove learner", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		_, err := cli.MemberRemove(ctx, env.learnerID)
		return err
	}},
	{name: "member remove (unknown ID)", rootGets: "NotFound: etcdserver: member not found", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		_, err := cli.MemberRemove(ctx, env.learnerID)
		return err
	}},
	{name: "member add (bad URL)", everyone: "InvalidArgument: etcdserver: given member URLs are invalid", do: func(ctx context.Context, cli *clientv3.Client, env *matrixEnv) error {
		// etcd checks the URLs before the caller. Raw: clientv3 refuses
		// the URL itself.
		_, err := pb.NewClusterClient(cli.ActiveConnection()).MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"not a url"}, IsLearner: true})
		return err
	}},
	{name: "auth status", allowed: matrixUsers, do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.AuthStatus(ctx)
		return err
	}},
	{name: "user list", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.UserList(ctx)
		return err
	}},
	{name: "user get ukey", allowed: []string{"ukey"}, do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.UserGet(ctx, "ukey")
		return err
	}},
	{name: "role get rkey", allowed: []string{"ukey"}, do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		_, err := cli.RoleGet(ctx, "rkey")
		return err
	}},
	{name: "role add", do: func(ctx context.Context, cli *clientv3.Client, _ *matrixEnv) error {
		// A fresh name each time: only root succeeds, once.
		_, err := cli.RoleAdd(ctx, fmt.Sprintf("new-%d", time.Now().UnixNano()))
		return err
	}},
}

// want is what op should give user.
func (op matrixOp) want(user string) string {
	if op.everyone != "" {
		return op.everyone
	}
	if user == "root" && op.rootGets != "" {
		return op.rootGets
	}
	if user == "root" || slices.Contains(op.allowed, user) {
		return "ok"
	}
	if r, ok := op.refusals[user]; ok {
		return r
	}
	if user == "anon" {
		return userEmpty
	}
	return denied
}

// TestAuthPermissionMatrix runs every operation as every user of a
// matrix of roles (single key, range, prefix, from-key, touching grants,
// none, and no credentials at all) and checks each cell against etcd's
// rules.
func TestAuthPermissionMatrix(t *testing.T) {
	m, admin, ctx := start(t)
	if bad := runMatrix(t, ctx, m, admin); len(bad) > 0 {
		t.Fatalf("%d cells differ:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

// TestAuthMatrixCatchesABug: with a deliberate bug (the permissions of a
// Txn's else branch go unchecked), the matrix fails exactly on the cells
// that write through that branch.
func TestAuthMatrixCatchesABug(t *testing.T) {
	if testcluster.Reference() {
		t.Skip("a Cairn failpoint")
	}
	t.Parallel()
	m := testcluster.NewMember(t, testcluster.Config{BuildTags: []string{"cairn_failpoints"}, Env: []string{"CAIRN_FAILPOINTS=authSkipTxnElse"}})
	ctx := testContext(t)
	bad := runMatrix(t, ctx, m, m.Client(t))
	if len(bad) == 0 {
		t.Fatal("the matrix passed a server that does not check a Txn's else branch")
	}
	for _, b := range bad {
		if !strings.HasPrefix(b, "txn else branch put r3") {
			t.Errorf("unexpected cell: %s", b)
		}
	}
}

// runMatrix sets up the matrix's roles and users on m, runs every
// operation as every user and returns the cells that differ from etcd's
// rules.
func runMatrix(t *testing.T, ctx context.Context, m *testcluster.Member, admin *clientv3.Client) []string {
	put(t, ctx, admin, "k1", "v")
	put(t, ctx, admin, "r3", "v")
	setupAuth(t, ctx, admin)
	root := authClient(t, m, "root")
	lease, err := root.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "k1", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	ml, err := root.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env := &matrixEnv{leaseK1: lease.ID, root: root, memberID: ml.Members[0].ID, peerURLs: ml.Members[0].PeerURLs}

	clients := map[string]*clientv3.Client{}
	for _, u := range matrixUsers {
		clients[u] = authClient(t, m, u)
	}
	var bad []string
	for _, op := range matrixOps {
		for _, u := range matrixUsers {
			octx, cancel := context.WithTimeout(ctx, 15*time.Second)
			got := outcome(op.do(octx, clients[u], env))
			cancel()
			if want := op.want(u); got != want {
				bad = append(bad, fmt.Sprintf("%-30s %-9s got %q, want %q", op.name, u, got, want))
			}
		}
	}
	return bad
}

// TestAuthErrors: the refusals of the Auth service itself, in etcd's
// words.
func TestAuthErrors(t *testing.T) {
	m, cli, ctx := start(t)
	check := func(what string, err error, want string) {
		t.Helper()
		if got := outcome(err); got != want {
			t.Errorf("%s: got %q, want %q", what, got, want)
		}
	}
	_, err := cli.AuthEnable(ctx)
	check("enable without root", err, "FailedPrecondition: etcdserver: root user does not exist")
	_, err = cli.UserAdd(ctx, "root", rootPassword)
	check("add root", err, "ok")
	_, err = cli.AuthEnable(ctx)
	check("enable without the root role", err, "FailedPrecondition: etcdserver: root user does not have root role")
	_, err = cli.UserGrantRole(ctx, "root", "root")
	check("grant root", err, "ok")
	_, err = cli.UserGrantRole(ctx, "root", "missing")
	check("grant a missing role", err, "FailedPrecondition: etcdserver: role name not found")
	_, err = cli.UserAdd(ctx, "root", "x")
	check("add root again", err, "FailedPrecondition: etcdserver: user name already exists")
	_, err = cli.UserAdd(ctx, "", "x")
	check("add an empty user", err, userEmpty)
	_, err = cli.RoleAdd(ctx, "")
	check("add an empty role", err, "InvalidArgument: etcdserver: role name is empty")
	_, err = cli.RoleAdd(ctx, "r")
	check("add role r", err, "ok")
	_, err = cli.RoleGrantPermission(ctx, "r", "b", "a", clientv3.PermissionType(clientv3.PermRead))
	check("grant an inverted range", err, "InvalidArgument: etcdserver: invalid auth management")
	_, err = cli.RoleGrantPermission(ctx, "r", "", "", clientv3.PermissionType(clientv3.PermRead))
	check("grant an empty key", err, "InvalidArgument: etcdserver: invalid auth management")
	_, err = cli.RoleGrantPermission(ctx, "missing", "a", "", clientv3.PermissionType(clientv3.PermRead))
	check("grant to a missing role", err, "FailedPrecondition: etcdserver: role name not found")
	_, err = cli.RoleRevokePermission(ctx, "r", "a", "")
	check("revoke a permission not granted", err, "FailedPrecondition: etcdserver: permission is not granted to the role")
	_, err = cli.UserRevokeRole(ctx, "root", "r")
	check("revoke a role not granted", err, "FailedPrecondition: etcdserver: role is not granted to the user")
	_, err = cli.UserDelete(ctx, "nobody")
	check("delete a missing user", err, "FailedPrecondition: etcdserver: user name not found")
	_, err = cli.UserAdd(ctx, "cert-only", "")
	check("add a user", err, "ok")
	_, err = cli.UserAddWithOptions(ctx, "nopw", "", &clientv3.UserAddOptions{NoPassword: true})
	check("add a user with no password", err, "ok")
	_, err = cli.AuthEnable(ctx)
	check("enable", err, "ok")

	// With auth on, root stays root.
	rc := authClient(t, m, "root")
	_, err = rc.UserDelete(ctx, "root")
	check("delete root", err, "InvalidArgument: etcdserver: invalid auth management")
	_, err = rc.UserRevokeRole(ctx, "root", "root")
	check("revoke root's root role", err, "InvalidArgument: etcdserver: invalid auth management")
	_, err = rc.RoleDelete(ctx, "root")
	check("delete the root role", err, "InvalidArgument: etcdserver: invalid auth management")

	// Authenticate, through the raw API so the client retries nothing.
	ac := pb.NewAuthClient(rc.ActiveConnection())
	_, err = ac.Authenticate(ctx, &pb.AuthenticateRequest{Name: "root", Password: "wrong"})
	check("wrong password", err, "InvalidArgument: etcdserver: authentication failed, invalid user ID or password")
	_, err = ac.Authenticate(ctx, &pb.AuthenticateRequest{Name: "nobody", Password: "x"})
	check("unknown user", err, "InvalidArgument: etcdserver: authentication failed, invalid user ID or password")
	_, err = ac.Authenticate(ctx, &pb.AuthenticateRequest{Name: "nopw", Password: "x"})
	// etcd leaves this one unmapped: code Unknown, its internal words.
	check("password for a no-password user", err, "Unknown: auth: authentication failed, password was given for no password user")
	_, err = rc.AuthDisable(ctx)
	check("disable", err, "ok")
	_, err = ac.Authenticate(ctx, &pb.AuthenticateRequest{Name: "root", Password: rootPassword})
	check("authenticate with auth off", err, "FailedPrecondition: etcdserver: authentication is not enabled")
}
