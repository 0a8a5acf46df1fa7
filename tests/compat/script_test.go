package compat

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// step is one etcdctl command of the script.
type step struct {
	// args are etcdctl's arguments; "{{NAME}}" is replaced by a value an
	// earlier step captured on the same server.
	args  []string
	stdin string
	// watch, when set, runs a streaming command for this long and then
	// kills it.
	watch time.Duration
	// capture names a lease ID this step grants, to be used by later
	// steps as {{capture}}.
	capture string
	// sortLines sorts stdout after normalisation, for replies whose order
	// etcd does not define (lease list).
	sortLines bool
	// env are VAR=value entries added to etcdctl's environment; endpoint,
	// when set, replaces the server's client URL in --endpoints. Both may
	// use {{NAME}} as args do.
	env      []string
	endpoint string
	// refusal marks a step the server refuses at the TLS handshake; see
	// lostAlertRace.
	refusal bool
}

func ctl(args ...string) step { return step{args: args} }

func (s step) in(stdin string) step           { s.stdin = stdin; return s }
func (s step) grants(name string) step        { s.capture = name; return s }
func (s step) sorted() step                   { s.sortLines = true; return s }
func (s step) streamFor(d time.Duration) step { s.watch = d; return s }
func (s step) withEnv(kv ...string) step      { s.env = kv; return s }
func (s step) at(endpoint string) step        { s.endpoint = endpoint; return s }
func (s step) refused() step                  { s.refusal = true; return s }

// watchTime is how long a watch runs: replayed events arrive at once.
const watchTime = 2 * time.Second

var (
	leaseGrantedRe = regexp.MustCompile(`lease ([0-9a-f]+) granted`)
	leaseGrantJSON = regexp.MustCompile(`"ID":(\d+)`)
)

// captured extracts, in etcdctl's hex form, the lease ID a grant printed.
func captured(stdout string) (string, error) {
	if m := leaseGrantedRe.FindStringSubmatch(stdout); m != nil {
		return m[1], nil
	}
	if m := leaseGrantJSON.FindStringSubmatch(stdout); m != nil {
		id, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%016x", id), nil
	}
	return "", fmt.Errorf("no lease ID in %q", stdout)
}

// expand replaces {{NAME}} in args by captured values.
func expand(args []string, vars map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range vars {
			a = strings.ReplaceAll(a, "{{"+k+"}}", v)
		}
		out[i] = a
	}
	return out
}

// txnTooBig is a transaction with one more operation than etcd's default
// --max-txn-ops (128).
func txnTooBig() string {
	var b strings.Builder
	b.WriteString("\n")
	for i := range 129 {
		fmt.Fprintf(&b, "put big%d v\n", i)
	}
	b.WriteString("\n\n")
	return b.String()
}

// script is the sequence run against each server. Revisions are
// deterministic (each put, and each delete or txn that changes something,
// adds one), and the comments track them because later steps read at, watch
// from and compact to particular revisions. Steps whose outcome etcdctl
// decides on its own, without asking the server, are left out: they would
// compare etcdctl with itself.
var script = []step{
	// Setup. Revision 1 is the empty store.
	ctl("put", "foo", "bar"),                                 // rev 2
	ctl("put", "foo1", "bar1"),                               // rev 3
	ctl("put", "foo2", "bar2"),                               // rev 4
	ctl("put", "foo3", "bar3"),                               // rev 5
	ctl("put", "zoo", "animal"),                              // rev 6
	ctl("put", "a", "1"),                                     // rev 7
	ctl("put", "b", "2"),                                     // rev 8
	ctl("put", "foo", "bar-v2", "--prev-kv"),                 // rev 9
	ctl("put", "foo", "bar-v3", "-w", "json"),                // rev 10
	ctl("put", "foo1", "bar1-v2", "--prev-kv", "-w", "json"), // rev 11
	ctl("put", "", "empty-key"),                              // error
	ctl("put", "foo", "--ignore-value"),                      // rev 12

	// get and its flags.
	ctl("get", "foo"),
	ctl("get", "foo", "-w", "json"),
	ctl("get", "foo", "-w", "fields"),
	ctl("get", "foo", "-w", "simple"),
	ctl("get", "nonexistent"),
	ctl("get", "nonexistent", "-w", "json"),
	ctl("get", "foo", "--prefix"),
	ctl("get", "foo", "--prefix", "-w", "json"),
	ctl("get", "foo", "--prefix", "-w", "fields"),
	ctl("get", "foo", "--prefix", "--keys-only"),
	ctl("get", "foo", "--prefix", "--keys-only", "-w", "json"),
	ctl("get", "foo", "--prefix", "--count-only", "-w", "fields"),
	ctl("get", "foo", "--prefix", "--limit=2"),
	ctl("get", "foo", "--prefix", "--limit=2", "-w", "json"),
	ctl("get", "foo", "--prefix", "--limit=2", "-w", "fields"),
	ctl("get", "foo", "--prefix", "--limit=0"),
	ctl("get", "foo", "--from-key"),
	ctl("get", "foo", "--from-key", "--keys-only", "--limit=3"),
	ctl("get", "", "--from-key", "--keys-only"),
	ctl("get", "", "--prefix", "--print-value-only"),
	ctl("get", "a", "foo1"),
	ctl("get", "a", "foo1", "-w", "json"),
	ctl("get", "foo", "--rev=2"),
	ctl("get", "foo", "--rev=9", "-w", "json"),
	ctl("get", "foo", "--prefix", "--rev=4"),
	ctl("get", "zoo", "--rev=5"),
	ctl("get", "foo", "--prefix", "--sort-by=KEY", "--order=DESCEND"),
	ctl("get", "foo", "--prefix", "--sort-by=VALUE", "--order=DESCEND"),
	ctl("get", "foo", "--prefix", "--sort-by=VALUE", "--order=ASCEND"),
	ctl("get", "foo", "--prefix", "--sort-by=CREATE", "--order=DESCEND"),
	ctl("get", "foo", "--prefix", "--sort-by=MODIFY", "--order=DESCEND"),
	ctl("get", "foo", "--prefix", "--sort-by=MODIFY", "--order=ASCEND", "--limit=2"),
	ctl("get", "foo", "--prefix", "--sort-by=VERSION", "--order=DESCEND", "--keys-only"),
	ctl("get", "foo", "--prefix", "--order=DESCEND"),
	ctl("get", "foo", "--prefix", "--sort-by=KEY", "--order=DESCEND", "--limit=1", "-w", "json"),
	ctl("get", "foo", "--print-value-only"),
	ctl("get", "foo", "--prefix", "--print-value-only"),
	ctl("get", "foo", "--prefix", "--print-value-only", "--keys-only"),
	ctl("get", "foo", "--consistency=s"),
	ctl("get", "foo", "--consistency=l", "-w", "json"),
	ctl("get", ""),

	// Revisions in the future (compacted ones come later).
	ctl("get", "foo", "--rev=1000"),
	ctl("get", "foo", "--rev=12"),
	ctl("get", "foo", "--rev=13"),

	// Watch replays history from a revision.
	ctl("watch", "foo", "--rev=2").streamFor(watchTime),
	ctl("watch", "foo", "--prefix", "--rev=3").streamFor(watchTime),
	ctl("watch", "foo", "--rev=9", "--prev-kv").streamFor(watchTime),
	ctl("watch", "a", "c", "--rev=1").streamFor(watchTime),
	ctl("watch", "foo", "--rev=9", "-w", "json").streamFor(watchTime),
	ctl("watch", "foo1", "--rev=1000").streamFor(watchTime),

	// Delete.
	ctl("del", "foo2"),              // rev 13
	ctl("del", "foo3", "--prev-kv"), // rev 14
	ctl("del", "nonexistent"),
	ctl("del", "nonexistent", "--prev-kv", "-w", "json"),
	ctl("del", "zoo", "--prev-kv", "-w", "json"), // rev 15
	ctl("del", ""),
	ctl("put", "d1", "x"),                    // rev 16
	ctl("put", "d2", "y"),                    // rev 17
	ctl("del", "d", "--prefix", "--prev-kv"), // rev 18
	ctl("get", "d", "--prefix"),
	ctl("watch", "d", "--prefix", "--rev=16", "--prev-kv").streamFor(watchTime),

	// Transactions, from stdin: compares, blank line, success ops, blank
	// line, failure ops, blank line.
	ctl("txn").in(`value("foo") = "bar-v3"
mod("foo") > "1"

put foo txn-success
get foo
del nothing

put foo txn-failure

`), // rev 19: succeeds
	ctl("txn").in(`value("foo") = "nope"

put foo x

put t1 txn-failure
get t1

`), // rev 20: fails
	ctl("txn", "-w", "json").in(`create("t1") = "20"
version("t1") = "1"

get t1
put t2 v


`), // rev 21
	ctl("txn", "-w", "json").in(`value("t1") != "txn-failure"


get t --prefix

`),
	ctl("txn", "-w", "fields").in(`create("missing") = "0"

put t3 v


`), // rev 22
	ctl("txn").in(`mod("t1") < "100"

del t --prefix


`), // rev 23
	ctl("txn").in(`
put e1 1
put e2 2


`), // rev 24
	ctl("txn").in(`
put dup 1
put dup 2


`), // error: duplicate key
	ctl("txn").in(txnTooBig()), // error: too many operations

	// Leases.
	ctl("lease", "grant", "60").grants("L1"),
	ctl("lease", "grant", "120", "-w", "json").grants("L2"),
	ctl("lease", "grant", "1").grants("L3"), // below the minimum TTL, which it gets instead
	ctl("lease", "revoke", "{{L3}}"),
	ctl("put", "leased", "v", "--lease={{L1}}"),  // rev 25
	ctl("put", "leased2", "v", "--lease={{L1}}"), // rev 26
	ctl("get", "leased", "-w", "json"),
	ctl("get", "leased", "-w", "fields"),
	ctl("lease", "timetolive", "{{L1}}"),
	ctl("lease", "timetolive", "{{L1}}", "--keys"),
	ctl("lease", "timetolive", "{{L1}}", "--keys", "-w", "json"),
	ctl("lease", "list").sorted(),
	ctl("lease", "revoke", "{{L2}}"),
	ctl("lease", "list", "-w", "json"),
	ctl("lease", "keep-alive", "--once", "{{L1}}"),
	ctl("put", "leased", "v", "--lease=1234abcd"),
	ctl("lease", "revoke", "{{L1}}"), // rev 27: deletes both keys
	ctl("get", "leased", "--prefix"),
	ctl("lease", "timetolive", "{{L1}}"),
	ctl("lease", "timetolive", "{{L1}}", "-w", "json"),
	ctl("lease", "revoke", "{{L1}}"),
	ctl("lease", "keep-alive", "--once", "{{L1}}"),
	ctl("lease", "list"),

	// Compaction.
	ctl("get", "foo", "-w", "json"),
	ctl("compaction", "5"),
	ctl("get", "foo", "--rev=4"),
	ctl("get", "foo", "--rev=5"),
	ctl("get", "foo", "--rev=5", "-w", "json"),
	ctl("get", "foo", "--prefix", "--rev=6", "--keys-only"),
	ctl("watch", "foo", "--rev=2").streamFor(watchTime),
	ctl("watch", "foo", "--rev=5").streamFor(watchTime),
	ctl("compaction", "3"),
	ctl("compaction", "5"),
	ctl("compaction", "1000"),
	ctl("compaction", "--physical", "10"),
	ctl("compaction", "-w", "json", "12"),
	ctl("get", "foo", "--rev=11"),
	ctl("get", "foo", "--rev=12", "-w", "json"),

	// Cluster.
	ctl("endpoint", "status", "-w", "table"),
	ctl("endpoint", "status", "-w", "json"),
	ctl("endpoint", "status", "-w", "fields"),
	ctl("endpoint", "health"),
	ctl("endpoint", "health", "-w", "table"),
	ctl("endpoint", "health", "-w", "json"),
	ctl("member", "list"),
	ctl("member", "list", "-w", "table"),
	ctl("member", "list", "-w", "json"),
	ctl("member", "list", "-w", "fields"),
	ctl("alarm", "list"),

	// Cleanup, checking the final state.
	ctl("del", "", "--from-key", "--prev-kv", "-w", "json"), // rev 28
	ctl("get", "", "--from-key", "-w", "json"),
}
