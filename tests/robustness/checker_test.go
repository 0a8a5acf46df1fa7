package robustness

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The tests in this file run no cluster: they prove the checkers reject
// histories that break what they check, and accept the ones etcd's
// semantics allow, so that a pass of a scenario means something.

// op builds a record; out zero-valued but for what is given.
func op(client int, call, ret int64, in kvInput, out kvOutput) record {
	return record{Client: client, Input: in, Output: out, Call: call, Return: ret}
}

var (
	unknown = kvOutput{Unknown: true}
	start   = kvState{Rev: 1}
)

func put(k int, v string) kvInput { return kvInput{Kind: opPut, Key: k, Value: v} }
func get(k int) kvInput           { return kvInput{Kind: opGet, Key: k} }
func del(k int) kvInput           { return kvInput{Kind: opDelete, Key: k} }
func cas(k int, mod int64, v string) kvInput {
	return kvInput{Kind: opCAS, Key: k, ExpectModRev: mod, Value: v}
}
func wrote(rev int64) kvOutput { return kvOutput{Rev: rev} }
func read(rev int64, v string, mod int64) kvOutput {
	return kvOutput{Rev: rev, Found: v != "", Value: v, ModRev: mod}
}

func TestModelLinearizability(t *testing.T) {
	tests := []struct {
		name string
		recs []record
		want porcupine.CheckResult
	}{{
		name: "sequential writes and reads",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, get(0), read(2, "a", 2)),
			op(1, 4, 5, del(0), kvOutput{Rev: 3, Deleted: 1}),
			op(1, 6, 7, del(0), kvOutput{Rev: 3}),
			op(0, 8, 9, get(0), read(3, "", 0)),
		},
		want: porcupine.Ok,
	}, {
		name: "concurrent puts ordered by their revisions, not their calls",
		recs: []record{
			op(0, 0, 10, put(0, "a"), wrote(3)),
			op(1, 1, 10, put(1, "b"), wrote(2)),
			op(2, 11, 12, get(0), read(3, "a", 3)),
		},
		want: porcupine.Ok,
	}, {
		name: "cas succeeds on the mod revision, fails with the current value",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, cas(0, 2, "b"), kvOutput{Rev: 3, Succeeded: true}),
			op(1, 4, 5, cas(0, 2, "c"), read(3, "b", 3)),
			op(1, 6, 7, cas(1, 0, "d"), kvOutput{Rev: 4, Succeeded: true}),
		},
		want: porcupine.Ok,
	}, {
		name: "unknown put that took effect",
		recs: []record{
			op(0, 0, 1, put(0, "a"), unknown),
			op(1, 2, 3, get(0), read(2, "a", 2)),
		},
		want: porcupine.Ok,
	}, {
		name: "unknown put that never took effect",
		recs: []record{
			op(0, 0, 1, put(0, "a"), unknown),
			op(1, 2, 3, get(0), read(1, "", 0)),
			op(1, 4, 5, put(1, "b"), wrote(2)),
		},
		want: porcupine.Ok,
	}, {
		name: "stale read",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, put(0, "b"), wrote(3)),
			op(1, 4, 5, get(0), read(2, "a", 2)),
		},
		want: porcupine.Illegal,
	}, {
		name: "lost acknowledged write",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(1, 2, 3, get(0), read(2, "", 0)),
		},
		want: porcupine.Illegal,
	}, {
		name: "revision skipped",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, put(0, "b"), wrote(4)),
		},
		want: porcupine.Illegal,
	}, {
		name: "two writes at one revision",
		recs: []record{
			op(0, 0, 5, put(0, "a"), wrote(2)),
			op(1, 0, 5, put(1, "b"), wrote(2)),
		},
		want: porcupine.Illegal,
	}, {
		name: "later write at an earlier revision",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(3)),
			op(1, 2, 3, put(1, "b"), wrote(2)),
		},
		want: porcupine.Illegal,
	}, {
		name: "cas succeeded although the key had moved on",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, put(0, "b"), wrote(3)),
			op(1, 4, 5, cas(0, 2, "c"), kvOutput{Rev: 4, Succeeded: true}),
		},
		want: porcupine.Illegal,
	}, {
		name: "read-only answer bumped the revision",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, del(1), kvOutput{Rev: 3}),
		},
		want: porcupine.Illegal,
	}, {
		name: "unknown put cannot explain a read of another value",
		recs: []record{
			op(0, 0, 1, put(0, "a"), unknown),
			op(1, 2, 3, get(0), read(2, "z", 2)),
		},
		want: porcupine.Illegal,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkLinearizable(start, nil, tt.recs, "")
			if err != nil {
				t.Fatal(err)
			}
			if got.Result != tt.want {
				t.Fatalf("porcupine says %s; want %s", got.Result, tt.want)
			}
		})
	}
}

// TestSwapWriteRevisionsBreaksLinearizability pins the self-check every
// scenario runs on its own history.
func TestSwapWriteRevisionsBreaksLinearizability(t *testing.T) {
	recs := []record{
		op(0, 0, 1, put(0, "a"), wrote(2)),
		op(1, 0, 9, put(1, "x"), unknown),
		op(0, 2, 3, get(0), read(2, "a", 2)),
		op(1, 10, 11, put(2, "b"), wrote(4)),
	}
	if res, _ := checkLinearizable(start, nil, recs, ""); res.Result != porcupine.Ok {
		t.Fatalf("the unswapped history: %s; want Ok", res.Result)
	}
	bad, ok := swapWriteRevisions(recs)
	if !ok {
		t.Fatal("found no pair of writes to swap")
	}
	if res, _ := checkLinearizable(start, nil, bad, ""); res.Result != porcupine.Illegal {
		t.Fatalf("swapped: %s; want Illegal", res.Result)
	}
}

// TestFailedCheckSavesHistory checks that a violation leaves what the
// package doc promises: a visualization and a replayable history.
func TestFailedCheckSavesHistory(t *testing.T) {
	dir := t.TempDir()
	recs := []record{
		op(0, 0, 1, put(0, "a"), wrote(2)),
		op(1, 2, 3, get(0), read(2, "", 0)),
	}
	res, err := checkLinearizable(start, nil, recs, dir)
	if err != nil || res.Result != porcupine.Illegal || res.Dir != dir {
		t.Fatalf("checkLinearizable = %+v, %v; want Illegal in %s", res, err, dir)
	}
	saved, err := loadHistory(dir + "/history.json")
	if err != nil {
		t.Fatal(err)
	}
	if saved.Init != start || len(saved.Records) != len(recs) || saved.Records[1] != recs[1] {
		t.Fatalf("saved history %+v; want %+v from %+v", saved.Records, recs, start)
	}
	if again, _ := checkLinearizable(saved.Init, saved.foreign(), saved.Records, ""); again.Result != porcupine.Illegal {
		t.Fatalf("replayed: %s; want Illegal", again.Result)
	}
}

func TestClientRevisionsNeverGoBack(t *testing.T) {
	recs := []record{
		op(0, 0, 1, put(0, "a"), wrote(5)),
		op(1, 0, 1, get(0), read(3, "", 0)), // another client: fine
		op(0, 2, 3, get(0), read(4, "", 0)),
	}
	v := checkClientRevisions(recs)
	if len(v) != 1 || !strings.Contains(v[0], "client 0") {
		t.Fatalf("violations %q; want one, of client 0", v)
	}
}

func TestModelForeignRevisionsAndRanges(t *testing.T) {
	foreign := foreignRevs{3: true, 4: true}
	all := func(rev int64, kv ...keyState) kvOutput {
		out := kvOutput{Rev: rev}
		copy(out.All[:], kv)
		return out
	}
	tests := []struct {
		name string
		recs []record
		want porcupine.CheckResult
	}{{
		name: "writes skip foreign revisions",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, put(1, "b"), wrote(5)),
			op(1, 4, 5, kvInput{Kind: opRange}, all(5, keyState{"a", 2}, keyState{"b", 5})),
		},
		want: porcupine.Ok,
	}, {
		name: "a read may see foreign revisions",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(1, 2, 3, get(0), read(4, "a", 2)),
			op(0, 4, 5, put(0, "b"), wrote(5)),
		},
		want: porcupine.Ok,
	}, {
		name: "a write cannot take a foreign revision",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, put(1, "b"), wrote(3)),
		},
		want: porcupine.Illegal,
	}, {
		name: "a read cannot go past a revision of the model no write explains",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, put(0, "b"), wrote(5)),
			op(1, 4, 5, get(0), read(6, "b", 5)),
		},
		want: porcupine.Illegal,
	}, {
		name: "delete-range removes every key at one revision",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, put(1, "b"), wrote(5)),
			op(0, 4, 5, kvInput{Kind: opDeleteRange}, kvOutput{Rev: 6, Deleted: 2}),
			op(1, 6, 7, kvInput{Kind: opRange}, all(6)),
			op(1, 8, 9, kvInput{Kind: opDeleteRange}, kvOutput{Rev: 6}),
		},
		want: porcupine.Ok,
	}, {
		name: "delete-range that missed a key",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(0, 2, 3, put(1, "b"), wrote(5)),
			op(0, 4, 5, kvInput{Kind: opDeleteRange}, kvOutput{Rev: 6, Deleted: 1}),
		},
		want: porcupine.Illegal,
	}, {
		name: "range that misses a write",
		recs: []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(1, 2, 3, kvInput{Kind: opRange}, all(2)),
		},
		want: porcupine.Illegal,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkLinearizable(start, foreign, tt.recs, "")
			if err != nil {
				t.Fatal(err)
			}
			if got.Result != tt.want {
				t.Fatalf("porcupine says %s; want %s", got.Result, tt.want)
			}
		})
	}
}

func ev(k int, rev int64, v string) watchEvent {
	return watchEvent{Key: keyName(k), Rev: rev, Put: v != "", Value: v}
}

func events(evs ...watchEvent) watchResponse { return watchResponse{Events: evs} }

func TestWatchStreamChecks(t *testing.T) {
	good := watchLog{Name: "g", Key: keyPrefix, Prefix: true, From: 2, Responses: []watchResponse{
		events(ev(0, 2, "a")), {Progress: 2}, events(ev(0, 3, ""), ev(1, 3, "")), {Progress: 5},
	}}
	if v := checkWatchStream(good, 0); len(v) != 0 {
		t.Fatalf("good stream: %q", v)
	}
	tests := []struct {
		name string
		log  watchLog
		want string
	}{
		{"out of order", watchLog{Key: keyName(0), Responses: []watchResponse{events(ev(0, 4, "c")), events(ev(0, 2, "a"))}}, "after revision 4"},
		{"duplicate", watchLog{Key: keyName(0), Responses: []watchResponse{events(ev(0, 2, "a")), events(ev(0, 2, "a"))}}, "already delivered"},
		{"duplicate in one response", watchLog{Key: keyPrefix, Prefix: true, Responses: []watchResponse{events(ev(0, 2, "a"), ev(0, 2, "a"))}}, "delivered twice"},
		{"revision split across responses", watchLog{Key: keyPrefix, Prefix: true, Responses: []watchResponse{events(ev(0, 3, "")), events(ev(1, 3, ""))}}, "split across"},
		{"foreign key", watchLog{Key: keyName(0), Responses: []watchResponse{events(ev(1, 3, "b"))}}, "outside the watched keys"},
		{"event after progress", watchLog{Key: keyName(0), Responses: []watchResponse{{Progress: 5}, events(ev(0, 4, "b"))}}, "after a progress notification at revision 5"},
		{"compacted though not", watchLog{Key: keyName(0), Streams: []watchStream{{From: 10, Err: "etcdserver: mvcc: required revision has been compacted", Compacted: 12}}}, "refused as compacted"},
	}
	for _, tt := range tests {
		v := checkWatchStream(tt.log, 8)
		if len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), tt.want) {
			t.Errorf("%s: violations %q; want one saying %q", tt.name, v, tt.want)
		}
	}
	compacted := watchLog{Key: keyName(0), Streams: []watchStream{{From: 5, Err: "etcdserver: mvcc: required revision has been compacted", Compacted: 8}}}
	if v := checkWatchStream(compacted, 8); len(v) != 0 {
		t.Errorf("a watch from a compacted revision refused as such: %q", v)
	}
}

func TestWatchHistoryChecks(t *testing.T) {
	init := kvState{Rev: 1}
	final := kvState{Rev: 5}
	final.Keys[0] = keyState{Value: "c", ModRev: 5}
	final.Keys[1] = keyState{Value: "b", ModRev: 3}
	lease := watchEvent{Key: leasePrefix + "l0-0", Rev: 4, Put: true, Value: "l0-0", Lease: 7}
	recs := []record{
		op(0, 0, 1, put(0, "a"), wrote(2)),
		op(0, 2, 3, put(1, "b"), wrote(3)),
		op(0, 4, 5, put(0, "c"), unknown),
	}
	sent := map[string]bool{"a": true, "b": true, "c": true, "l0-0": true}
	global := func(resps ...watchResponse) watchLog {
		return watchLog{Name: rootPrefix, Key: rootPrefix, Prefix: true, From: 2, Responses: resps}
	}
	good := global(events(ev(0, 2, "a")), events(ev(1, 3, "b")), events(lease), events(ev(0, 5, "c")))
	idx := indexEvents(good)
	if v := checkWatchHistory(init, final, idx, recs, sent); len(v) != 0 {
		t.Fatalf("good history: %q", v)
	}
	if f := idx.foreign(); len(f) != 1 || !f[4] {
		t.Fatalf("foreign revisions %v; want {4}", f)
	}
	perKey := watchLog{Name: "k0", Key: keyName(0), From: 2, Responses: []watchResponse{events(ev(0, 2, "a")), {Progress: 5}}}
	if v := checkWatchAgrees(perKey, idx); len(v) != 1 || !strings.Contains(v[0], "missing put") {
		t.Errorf("a watch of k0 that missed revision 5: %q; want one violation saying it is missing", v)
	}
	perKey.Responses = append(perKey.Responses[:1], events(ev(0, 5, "c")))
	if v := checkWatchAgrees(perKey, idx); len(v) != 0 {
		t.Errorf("a watch of k0 that agrees: %q", v)
	}

	tests := []struct {
		name string
		log  watchLog
		want string
	}{
		{"gap", global(events(ev(0, 2, "a")), events(ev(1, 3, "b")), events(ev(0, 5, "c"))), "never delivered revision 4"},
		{"acknowledged write missing", global(events(ev(0, 2, "x")), events(ev(1, 3, "b")), events(lease), events(ev(0, 5, "c"))), "acknowledged write put(k0, a)"},
		{"value applied twice", global(events(ev(0, 2, "a")), events(ev(1, 3, "b")), events(lease), events(ev(0, 5, "a"))), "written twice"},
		{"phantom value", global(events(ev(0, 2, "a")), events(ev(1, 3, "b")), events(lease), events(ev(0, 5, "z"))), "no client wrote"},
		{"final state differs", global(events(ev(0, 2, "a")), events(ev(1, 3, "b")), events(lease), events(ev(0, 5, ""))), "replaying the watch events"},
		{"model and foreign keys in one revision", global(events(ev(0, 2, "a")), events(ev(1, 3, "b")), events(lease, ev(2, 4, "")), events(ev(0, 5, "c"))), "at once"},
	}
	for _, tt := range tests {
		v := checkWatchHistory(init, final, indexEvents(tt.log), recs, sent)
		if len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), tt.want) {
			t.Errorf("%s: violations %q; want one saying %q", tt.name, v, tt.want)
		}
	}
}

func TestLeaseChecks(t *testing.T) {
	sec := int64(time.Second)
	key := leasePrefix + "l0-0"
	putEv := watchEvent{Key: key, Rev: 2, Put: true, Value: "v", Lease: 7, At: 1 * sec}
	delAt := func(rev, at int64) eventIndex {
		return eventIndex{2: {putEv}, rev: {{Key: key, Rev: rev, At: at}}}
	}
	base := leaseRecord{ID: 7, Key: key, Value: "v", Grant: 0, TTL: 3, PutRev: 2,
		Renewals: []renewal{{Call: 2 * sec, TTL: 3}}}
	if v := checkLeases([]leaseRecord{base}, delAt(9, 6*sec)); len(v) != 0 {
		t.Fatalf("expired after its last renewal's TTL: %q", v)
	}
	if v := checkLeases([]leaseRecord{base}, delAt(9, 4*sec)); len(v) != 1 || !strings.Contains(v[0], "alive") {
		t.Fatalf("deleted 2s after a renewal with TTL 3s: %q; want one violation", v)
	}
	revoked := base
	revoked.Revoke, revoked.RevokeRev = 3*sec, 8
	if v := checkLeases([]leaseRecord{revoked}, delAt(8, 4*sec)); len(v) != 0 {
		t.Fatalf("deleted by its revoke: %q", v)
	}
	if v := checkLeases([]leaseRecord{revoked}, delAt(9, 4*sec)); len(v) != 1 || !strings.Contains(v[0], "revoke acknowledged") {
		t.Fatalf("deleted after the revision its revoke was acknowledged at: %q; want one violation", v)
	}
	if v := checkLeases([]leaseRecord{base}, eventIndex{}); len(v) != 1 || !strings.Contains(v[0], "not in the watch history") {
		t.Fatalf("acknowledged put missing: %q; want one violation", v)
	}
}

// eventsOf indexes events as the watch of rootPrefix would.
func eventsOf(evs ...watchEvent) eventIndex {
	idx := make(eventIndex)
	for _, e := range evs {
		idx[e.Rev] = append(idx[e.Rev], e)
	}
	return idx
}

func putKey(key string, rev, lease int64, v string) watchEvent {
	return watchEvent{Key: key, Rev: rev, Put: true, Value: v, Lease: lease}
}
func delKey(key string, rev int64) watchEvent { return watchEvent{Key: key, Rev: rev} }

// wantViolation fails t unless v has a violation saying want.
func wantViolation(t *testing.T, name string, v []string, want string) {
	t.Helper()
	if len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), want) {
		t.Errorf("%s: violations %q; want one saying %q", name, v, want)
	}
}

func TestLockChecks(t *testing.T) {
	// Keys a and b, of leases 0xa and 0xb: a Mutex client holds a, then
	// a Lock RPC client b.
	ka, kb := keyOf(lockPrefix, 0xa), keyOf(lockPrefix, 0xb)
	idx := eventsOf(putKey(ka, 2, 0xa, ""), putKey(kb, 4, 0xb, ""), delKey(ka, 5), delKey(kb, 7))
	a := hold{Client: 0, Via: viaMutex, Key: ka, Lease: 0xa, Rev: 3, Create: 2}
	b := hold{Client: 1, Via: viaLockRPC, Key: kb, Lease: 0xb, Rev: 6, Unlock: 7} // Create from the history
	if v := checkLocks([]hold{a, b}, idx); len(v) != 0 {
		t.Fatalf("one after the other: %q", v)
	}
	again := a
	again.Rev = 4 // locked again before its unlock went through
	if v := checkLocks([]hold{a, again, b}, idx); len(v) != 0 {
		t.Fatalf("a session holding on reentrantly: %q", v)
	}

	with := func(h hold, f func(*hold)) hold { f(&h); return h }
	tests := []struct {
		name  string
		holds []hold
		idx   eventIndex
		want  string
	}{
		{"b held while a's key still existed", []hold{a, b},
			eventsOf(putKey(ka, 2, 0xa, ""), putKey(kb, 4, 0xb, ""), delKey(ka, 7), delKey(kb, 7)), "lock held twice"},
		{"b granted while a's key still existed", []hold{b},
			eventsOf(putKey(ka, 2, 0xa, ""), putKey(kb, 4, 0xb, ""), delKey(ka, 7), delKey(kb, 7)), "out of turn"},
		{"a hold after its key was gone", []hold{with(a, func(h *hold) { h.Rev = 5 })}, idx, "no such key"},
		{"a hold of another life of the key", []hold{with(a, func(h *hold) { h.Create = 1 })}, idx, "the watch history has"},
		{"a Lock RPC key not named after the lease", []hold{with(b, func(h *hold) { h.Lease = 0xc })}, idx, "etcd's key"},
		{"an Unlock acknowledged before the key went", []hold{with(b, func(h *hold) { h.Unlock = 6 })}, idx, "Unlock acknowledged at revision 6"},
	}
	for _, tt := range tests {
		wantViolation(t, tt.name, checkLocks(tt.holds, tt.idx), tt.want)
	}
}

// TestTenuresOverlap pins the overlap check by itself: the lock and
// election checks reach it only along with another violation, as a
// history whose every tenure began in its turn has no overlap.
func TestTenuresOverlap(t *testing.T) {
	la, lb := &life{Key: "a"}, &life{Key: "b"}
	if v := overlaps([]tenure{{"b", lb, 5, 9}, {"a", la, 2, 5}}, "held twice"); len(v) != 0 {
		t.Fatalf("one after the other: %q", v)
	}
	if v := overlaps([]tenure{{"a", la, 2, 9}, {"a again", la, 4, 9}}, "held twice"); len(v) != 0 {
		t.Fatalf("one life held on: %q", v)
	}
	v := overlaps([]tenure{{"a", la, 2, 9}, {"a again", la, 3, 9}, {"b", lb, 8, 12}}, "held twice")
	if len(v) != 1 || !strings.Contains(v[0], "held twice: a from revision 2 to 9, and b from 8") {
		t.Fatalf("b from 8 while a held to 9: %q; want one violation", v)
	}
}

func TestElectionChecks(t *testing.T) {
	// Client 0 campaigns with key a (lease 0xa) and wins at once; client
	// 1 campaigns with b and waits; 0 proclaims, resigns; 1 leads,
	// proclaims, resigns.
	ka, kb := keyOf(electionPrefix, 0xa), keyOf(electionPrefix, 0xb)
	idx := eventsOf(
		putKey(ka, 2, 0xa, "e0-1"), putKey(kb, 3, 0xb, "e1-1"), putKey(ka, 4, 0xa, "e0-2"),
		delKey(ka, 5), putKey(kb, 6, 0xb, "e1-2"), delKey(kb, 7))
	lead := func(key string, create, mod int64, v string, rev int64) leaderView {
		return leaderView{Key: key, Create: create, Mod: mod, Value: v, Rev: rev}
	}
	seen := func(stream int, lv leaderView) leaderView { lv.Stream = stream; return lv }
	w0 := win{Client: 0, Key: ka, Lease: 0xa, Create: 2, Leader: lead(ka, 2, 2, "e0-1", 3), Resign: 5}
	w1 := win{Client: 1, Key: kb, Lease: 0xb, Create: 3, Leader: lead(kb, 3, 3, "e1-1", 5), Resign: 7}
	good := electionLog{
		Wins:      []win{w0, w1},
		Proclaims: []proclaim{{0, ka, 2, "e0-2", 4}, {1, kb, 3, "e1-2", 6}, {1, kb, 3, "e1-3", 0}},
		Leaders:   []leaderView{w0.Leader, w1.Leader},
		Observed: []leaderView{
			seen(1, lead(ka, 2, 2, "e0-1", 2)), seen(1, lead(ka, 2, 4, "e0-2", 4)),
			seen(1, lead(kb, 3, 3, "e1-1", 5)), // b's first value, from before it led
			seen(1, lead(kb, 3, 6, "e1-2", 6)),
			seen(2, lead(kb, 3, 6, "e1-2", 6)), // a new stream starts from the leader
		},
		SentFor: map[string]string{"e0-1": ka, "e0-2": ka, "e1-1": kb, "e1-2": kb, "e1-3": kb},
	}
	if v := checkElections(good, idx); len(v) != 0 {
		t.Fatalf("good history: %q", v)
	}

	winWith := func(w win, f func(*win)) win { f(&w); return w }
	// b's key put at 4, while a leads.
	early := eventsOf(putKey(ka, 2, 0xa, "e0-1"), putKey(kb, 3, 0xb, "e1-1"), putKey(kb, 4, 0xb, "e1-x"), delKey(ka, 5), delKey(kb, 7))
	tests := []struct {
		name string
		log  electionLog
		idx  eventIndex
		want string
	}{
		{"Campaign returned while an older candidate led", electionLog{Wins: []win{winWith(w1, func(w *win) { w.Leader = lead(ka, 2, 4, "e0-2", 4) })}},
			idx, "won out of turn: at revision 4"},
		{"two candidates told they led at once", electionLog{Wins: []win{w0, winWith(w1, func(w *win) { w.Leader = lead(kb, 3, 3, "e1-1", 4) })}},
			idx, "election led twice"},
		{"a Campaign answer the history does not hold", electionLog{Wins: []win{winWith(w0, func(w *win) { w.Create = 9 })}}, idx, "does not hold"},
		{"a Campaign key not named after the lease", electionLog{Wins: []win{winWith(w0, func(w *win) { w.Lease = 0xc })}}, idx, "etcd's key"},
		{"a Resign acknowledged before the key went", electionLog{Wins: []win{winWith(w0, func(w *win) { w.Resign = 4 })}}, idx, "Resign acknowledged at revision 4"},
		{"Leader names a candidate that did not lead", electionLog{Leaders: []leaderView{lead(kb, 3, 3, "e1-1", 4)}}, idx, "the leader then was " + ka},
		{"Leader names the leader with a stale value", electionLog{Leaders: []leaderView{lead(ka, 2, 2, "e0-1", 4)}}, idx, "the key then held"},
		{"a Proclaim acknowledged that never happened", electionLog{Proclaims: []proclaim{{0, ka, 2, "e0-9", 4}}}, idx, "does not hold"},
		{"a Proclaim by a candidate that did not lead", electionLog{Proclaims: []proclaim{{1, kb, 3, "e1-x", 4}}}, early, "while " + ka},
		{"Observe reports a value the history does not hold", electionLog{Observed: []leaderView{seen(1, lead(ka, 2, 4, "e0-9", 4))}}, idx, "does not hold"},
		{"Observe reports a value nobody sent for the key", electionLog{Observed: []leaderView{seen(1, lead(ka, 2, 4, "e0-2", 4))}, SentFor: map[string]string{"e0-2": kb}},
			idx, "no campaigner sent"},
		{"Observe reports a leader that did not lead", electionLog{Observed: []leaderView{seen(1, lead(kb, 3, 3, "e1-1", 3))}, SentFor: good.SentFor},
			idx, "at revision 3 the leader was " + ka},
		// Only with a stale first report: a leader's later values can
		// predate its leadership only if its first report was not the
		// value it held then.
		{"Observe reports a change by a candidate that did not lead", electionLog{Observed: []leaderView{seen(1, lead(kb, 3, 3, "e1-1", 5)), seen(1, lead(kb, 3, 4, "e1-x", 9))},
			SentFor: map[string]string{"e1-1": kb, "e1-x": kb}}, early, "at revision 4 the leader was " + ka},
		{"Observe's first report of a leader holds a stale value", electionLog{Observed: []leaderView{seen(1, lead(ka, 2, 2, "e0-1", 4))}, SentFor: good.SentFor},
			idx, "but the key then held put " + ka + `="e0-2"@4`},
		{"Observe goes back to an earlier leader", electionLog{Observed: []leaderView{good.Observed[2], good.Observed[1]}, SentFor: good.SentFor}, idx, "back to an earlier leader"},
		{"Observe repeats a value on one stream", electionLog{Observed: []leaderView{good.Observed[1], good.Observed[1]}, SentFor: good.SentFor}, idx, "not newer than the last"},
		{"a new Observe stream goes back to an earlier value", electionLog{Observed: []leaderView{good.Observed[1], seen(2, lead(ka, 2, 2, "e0-1", 3))}, SentFor: good.SentFor},
			idx, "back to an earlier value"},
	}
	for _, tt := range tests {
		wantViolation(t, tt.name, checkElections(tt.log, tt.idx), tt.want)
	}
}

// TestModelUnknownDeletesTakeARevision pins a bug the model once had:
// a delete with an unknown outcome that took effect must take its
// revision like any other write.
func TestModelUnknownDeletesTakeARevision(t *testing.T) {
	for _, in := range []kvInput{del(0), {Kind: opDeleteRange}} {
		recs := []record{
			op(0, 0, 1, put(0, "a"), wrote(2)),
			op(1, 2, 3, in, unknown),
			op(0, 4, 5, get(0), read(3, "", 0)),
			op(0, 6, 7, put(1, "b"), wrote(4)),
		}
		if res, _ := checkLinearizable(start, nil, recs, ""); res.Result != porcupine.Ok {
			t.Errorf("unknown %s that took effect: %s; want Ok", in.Kind, res.Result)
		}
	}
}

func TestResolveUnknown(t *testing.T) {
	recs := []record{
		op(0, 0, 1, put(0, "a"), wrote(2)),
		op(1, 2, 3, put(1, "b"), unknown),    // took effect at 3
		op(2, 2, 3, put(2, "c"), unknown),    // never did
		op(3, 2, 3, cas(0, 2, "d"), unknown), // took effect at 4
		op(4, 2, 3, del(0), unknown),         // cannot tell
		op(0, 5, 6, get(1), read(4, "b", 3)),
	}
	idx := eventIndex{2: {ev(0, 2, "a")}, 3: {ev(1, 3, "b")}, 4: {ev(0, 4, "d")}}
	got := resolveUnknown(recs, idx)
	if len(got) != 5 {
		t.Fatalf("%d records; want 5 (the put that never took effect left out)", len(got))
	}
	if r := got[1]; r.Output != (kvOutput{Rev: 3}) || r.Return != math.MaxInt64 {
		t.Errorf("unknown put seen at 3: %+v", r)
	}
	if r := got[2]; r.Output != (kvOutput{Rev: 4, Succeeded: true}) || r.Return != math.MaxInt64 {
		t.Errorf("unknown cas seen at 4: %+v", r)
	}
	if r := got[3]; !r.Output.Unknown {
		t.Errorf("unknown delete: %+v; want it left unknown", r)
	}
	if res, _ := checkLinearizable(start, nil, got, ""); res.Result != porcupine.Ok {
		t.Errorf("resolved history: %s; want Ok", res.Result)
	}
}
