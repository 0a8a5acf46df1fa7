package compat

import "slices"

// The passwords of authScript's users.
const (
	rootPassword  = "rootpw"
	alicePassword = "alicepw"
	bobPassword   = "bobpw"
)

// as is ctl as user, given as etcdctl's --user=name:password.
func as(user string, args ...string) step {
	return ctl(slices.Concat([]string{"--user=" + user}, args)...)
}

// asRoot, asAlice and asBob are as for the script's users.
func asRoot(args ...string) step  { return as("root:"+rootPassword, args...) }
func asAlice(args ...string) step { return as("alice:"+alicePassword, args...) }
func asBob(args ...string) step   { return as("bob:"+bobPassword, args...) }

// authScript is run against a fresh plaintext server. It sets up users
// and roles with auth off, turns auth on, reads and writes as root and as
// two limited users (alice reads some keys, bob writes others), is refused
// for bad credentials, changes and revokes what it granted, and turns auth
// off again. Revisions are tracked as in script: user, role and auth
// changes do not move the key-value revision (they move the auth
// revision, which "auth status" shows).
var authScript = []step{
	// Before any user exists. Revision 1 is the empty store.
	ctl("auth", "status"),
	ctl("auth", "status", "-w", "json"),
	ctl("auth", "enable"), // root user does not exist
	ctl("user", "list"),
	ctl("role", "list"),
	ctl("user", "get", "root"), // user name not found
	ctl("role", "get", "root"), // role name not found

	// root, step by step.
	ctl("user", "add", "root", "--new-user-password="+rootPassword),
	ctl("role", "add", "root"),
	ctl("user", "grant-role", "root", "root"),
	ctl("user", "get", "root"),
	ctl("user", "get", "root", "--detail"),
	ctl("role", "get", "root"),
	ctl("role", "get", "root", "-w", "json"),

	// More users, each way etcdctl takes a password.
	ctl("user", "add", "alice:"+alicePassword),
	ctl("user", "add", "bob", "--interactive=false").in(bobPassword + "\n"),
	ctl("user", "add", "carol", "--new-user-password=carolpw", "-w", "json"),
	ctl("user", "add", "svc", "--no-password", "-w", "fields"),
	ctl("user", "add", "alice:again"), // user name already exists

	// Roles and permissions: one key, a range, a prefix, from a key; read,
	// write, readwrite.
	ctl("role", "add", "reader"),
	ctl("role", "add", "writer", "-w", "json"),
	ctl("role", "add", "rw", "-w", "fields"),
	ctl("role", "add", "reader"), // role name already exists
	ctl("role", "grant-permission", "reader", "read", "foo"),
	ctl("role", "grant-permission", "reader", "read", "--prefix", "pub/"),
	ctl("role", "grant-permission", "reader", "read", "a", "c"),
	ctl("role", "grant-permission", "writer", "write", "--prefix", "w/", "-w", "json"),
	ctl("role", "grant-permission", "writer", "readwrite", "--from-key", "z", "-w", "fields"),
	ctl("role", "grant-permission", "rw", "readwrite", "--prefix", "rw/"),
	ctl("role", "grant-permission", "reader", "read", "foo"), // the same again: no change
	ctl("role", "grant-permission", "nosuch", "read", "foo"), // role name not found
	ctl("role", "get", "reader"),
	ctl("role", "get", "reader", "-w", "json"),
	ctl("role", "get", "reader", "-w", "fields"),
	ctl("role", "get", "writer"),
	ctl("role", "list"),
	ctl("role", "list", "-w", "json"),
	ctl("role", "list", "-w", "fields"),

	// Roles for the users.
	ctl("user", "grant-role", "alice", "reader"),
	ctl("user", "grant-role", "bob", "writer", "-w", "json"),
	ctl("user", "grant-role", "bob", "rw", "-w", "fields"),
	ctl("user", "grant-role", "carol", "reader"),
	ctl("user", "grant-role", "alice", "nosuch"),  // role name not found
	ctl("user", "grant-role", "nobody", "reader"), // user name not found
	ctl("user", "list"),
	ctl("user", "list", "-w", "json"),
	ctl("user", "get", "alice"),
	ctl("user", "get", "bob", "-w", "json"),
	ctl("user", "get", "bob", "--detail"),
	ctl("user", "get", "svc"),
	ctl("auth", "status"),

	// Auth on.
	ctl("auth", "enable"),
	ctl("auth", "enable"),    // on now, so only root may: user name is empty
	asRoot("auth", "enable"), // already on: nothing changes
	ctl("auth", "status"),    // anyone may ask
	ctl("auth", "status", "-w", "json"),

	// No credentials.
	ctl("put", "foo", "x"), // user name is empty
	ctl("get", "foo"),
	ctl("user", "list"),

	// root, as --user=name:password, --user with --password, and
	// ETCDCTL_USER/ETCDCTL_PASSWORD.
	asRoot("put", "foo", "v1"),            // rev 2
	asRoot("put", "pub/a", "p"),           // rev 3
	asRoot("put", "a", "1"),               // rev 4
	asRoot("put", "b", "2", "-w", "json"), // rev 5
	asRoot("put", "c", "3"),               // rev 6
	asRoot("put", "secret", "s"),          // rev 7
	asRoot("put", "w/x", "w"),             // rev 8
	asRoot("put", "zz", "z"),              // rev 9
	asRoot("put", "rw/k", "rw"),           // rev 10
	ctl("--user", "root", "--password", rootPassword, "get", "", "--from-key", "--keys-only"),
	ctl("user", "list").withEnv("ETCDCTL_USER=root", "ETCDCTL_PASSWORD="+rootPassword),
	ctl("get", "foo", "-w", "json").withEnv("ETCDCTL_USER=root:" + rootPassword),
	asRoot("user", "get", "root", "--detail"),
	asRoot("user", "get", "bob", "--detail", "-w", "json"),
	asRoot("auth", "status", "-w", "json"),

	// alice reads foo, pub/* and [a, c); nothing else, and writes nothing.
	asAlice("get", "foo"),
	asAlice("get", "foo", "-w", "json"),
	asAlice("get", "pub/", "--prefix"),
	asAlice("get", "a", "c"),
	asAlice("get", "b"),
	asAlice("get", "a", "d"),         // c is not hers: permission denied
	asAlice("get", "secret"),         // permission denied
	asAlice("get", "", "--from-key"), // permission denied
	asAlice("put", "foo", "x"),       // permission denied
	asAlice("del", "foo"),            // permission denied
	asAlice("txn").in(`value("foo") = "v1"

get foo

get pub/a

`),
	asAlice("txn").in(`value("foo") = "v1"

put foo x


`), // permission denied
	asAlice("watch", "foo", "--rev=2").streamFor(watchTime),
	asAlice("user", "get", "alice"), // herself
	asAlice("user", "get", "alice", "--detail"),
	asAlice("role", "get", "reader"),     // a role she holds
	asAlice("user", "get", "bob"),        // permission denied
	asAlice("role", "get", "writer"),     // permission denied
	asAlice("user", "list"),              // permission denied
	asAlice("role", "list"),              // permission denied
	asAlice("user", "add", "mallory:pw"), // permission denied
	asAlice("auth", "disable"),           // permission denied
	ctl("get", "pub/a").withEnv("ETCDCTL_USER=alice", "ETCDCTL_PASSWORD="+alicePassword),

	// bob writes w/*, reads and writes z and after it, and rw/*.
	asBob("put", "w/y", "y"), // rev 11
	asBob("get", "w/y"),      // write only: permission denied
	asBob("put", "zzz", "3"), // rev 12
	asBob("get", "z", "--from-key"),
	asBob("put", "rw/k2", "v", "--prev-kv"), // rev 13 (rw: read allowed)
	asBob("get", "rw/", "--prefix", "-w", "json"),
	asBob("del", "rw/k2", "--prev-kv"),    // rev 14
	asBob("put", "w/z", "z", "--prev-kv"), // prev-kv needs read: permission denied
	asBob("put", "foo", "x"),              // permission denied
	asBob("txn").in(`value("foo") = "v1"

put w/t t


`), // the compare needs read on foo: permission denied
	asBob("txn").in(`
put w/t t
put zt t


`), // rev 15
	asBob("lease", "grant", "60").grants("L1"),
	asBob("put", "w/leased", "l", "--lease={{L1}}"),                       // rev 16
	asAlice("lease", "revoke", "{{L1}}"),                                  // needs write on w/leased: permission denied
	asBob("lease", "revoke", "{{L1}}"),                                    // rev 17: deletes w/leased
	ctl("--user", "bob", "--password", bobPassword, "put", "w/flag", "f"), // rev 18
	// Only root may compact (etcd 3.7's kvServer.Compact; 3.6 checked
	// nothing).
	asBob("compaction", "2"), // permission denied

	// Bad credentials.
	ctl("--user=root:wrong", "get", "foo"),
	ctl("--user=nobody:pw", "get", "foo"),
	ctl("--user", "root", "--password", "wrong", "get", "foo"),
	ctl("get", "foo").withEnv("ETCDCTL_USER=root", "ETCDCTL_PASSWORD=wrong"),
	ctl("--user=svc:anything", "get", "foo"), // a user without a password cannot log in with one

	// Passwords and roles change, permissions are revoked; each takes
	// effect for the next command.
	asRoot("user", "passwd", "alice", "--interactive=false").in("alicepw2\n"),
	asAlice("get", "foo"), // the old password: authentication failed
	as("alice:alicepw2", "get", "foo"),
	asRoot("role", "revoke-permission", "reader", "foo"),
	as("alice:alicepw2", "get", "foo"), // permission denied
	asRoot("role", "revoke-permission", "reader", "--prefix", "pub/"),
	asRoot("role", "revoke-permission", "reader", "a", "c", "-w", "json"),
	asRoot("role", "revoke-permission", "reader", "nothere"), // permission is not granted to the role
	asRoot("role", "revoke-permission", "writer", "--from-key", "z", "-w", "fields"),
	asRoot("role", "get", "reader"),
	asRoot("role", "get", "writer", "-w", "json"),
	as("alice:alicepw2", "get", "pub/a"), // permission denied
	asBob("put", "zzzz", "x"),            // permission denied
	asRoot("user", "revoke-role", "bob", "rw"),
	asRoot("user", "revoke-role", "bob", "rw"), // role is not granted to the user
	asRoot("user", "revoke-role", "bob", "writer", "-w", "json"),
	asRoot("user", "get", "bob", "--detail"),
	asBob("get", "rw/k"), // permission denied

	// Deleting roles and users.
	asRoot("role", "delete", "rw"),
	asRoot("role", "delete", "rw", "-w", "json"), // role name not found
	asRoot("role", "list"),
	asRoot("user", "get", "carol"),
	asRoot("role", "delete", "reader"),
	asRoot("user", "get", "carol"), // the role went with it
	asRoot("user", "delete", "carol", "-w", "json"),
	asRoot("user", "delete", "carol"), // user name not found
	as("carol:carolpw", "get", "foo"),
	asRoot("user", "list", "-w", "json"),

	// root stays root while auth is on.
	asRoot("user", "revoke-role", "root", "root"), // invalid auth management
	asRoot("role", "delete", "root"),              // invalid auth management
	asRoot("user", "delete", "root"),              // invalid auth management
	asRoot("auth", "status"),

	// Auth off: everything is open again; users and roles stay.
	asRoot("auth", "disable"),
	ctl("auth", "status"),
	ctl("auth", "status", "-w", "json"),
	ctl("put", "foo", "after"), // rev 19
	ctl("user", "list"),
	ctl("role", "list"),
	ctl("user", "get", "bob", "--detail"),
	ctl("auth", "disable"), // already off
	ctl("user", "delete", "root"),
	ctl("auth", "enable"), // root user does not exist

	// A root user without the root role: the server refuses to enable
	// auth (root user does not have root role), and etcdctl then adds
	// the role, grants it and enables auth itself.
	ctl("user", "add", "root:"+rootPassword),
	ctl("role", "delete", "root"),
	ctl("user", "get", "root"),
	ctl("auth", "enable"),
	asRoot("user", "get", "root", "--detail"),
	asRoot("auth", "status"),
	asRoot("auth", "disable"),

	ctl("get", "", "--from-key", "-w", "json"),
}
