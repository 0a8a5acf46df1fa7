package robustness

import (
	"strings"
	"testing"

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
			got, err := checkLinearizable(start, tt.recs, "")
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
	if res, _ := checkLinearizable(start, recs, ""); res.Result != porcupine.Ok {
		t.Fatalf("the unswapped history: %s; want Ok", res.Result)
	}
	bad, ok := swapWriteRevisions(recs)
	if !ok {
		t.Fatal("found no pair of writes to swap")
	}
	if res, _ := checkLinearizable(start, bad, ""); res.Result != porcupine.Illegal {
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
	res, err := checkLinearizable(start, recs, dir)
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
	if again, _ := checkLinearizable(saved.Init, saved.Records, ""); again.Result != porcupine.Illegal {
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

func TestWatchChecks(t *testing.T) {
	ev := func(k int, rev int64, v string) watchEvent {
		return watchEvent{Key: k, Rev: rev, Put: v != "", Value: v}
	}
	init := kvState{Rev: 1}
	final := kvState{Rev: 4}
	final.Keys[0] = keyState{Value: "c", ModRev: 4}
	final.Keys[1] = keyState{Value: "b", ModRev: 3}
	recs := []record{
		op(0, 0, 1, put(0, "a"), wrote(2)),
		op(0, 2, 3, put(1, "b"), wrote(3)),
		op(0, 4, 5, put(0, "c"), unknown),
	}
	good := []watchLog{
		{Key: 0, Responses: [][]watchEvent{{ev(0, 2, "a")}, {ev(0, 4, "c")}}},
		{Key: 1, Responses: [][]watchEvent{{ev(1, 3, "b")}}},
	}
	for _, l := range good {
		if v := checkWatchStream(l); len(v) != 0 {
			t.Fatalf("good stream of k%d: %q", l.Key, v)
		}
	}
	if v := checkWatchHistory(init, final, good, recs); len(v) != 0 {
		t.Fatalf("good history: %q", v)
	}

	streams := []struct {
		name string
		log  watchLog
		want string
	}{
		{"out of order", watchLog{Key: 0, Responses: [][]watchEvent{{ev(0, 4, "c")}, {ev(0, 2, "a")}}}, "revision 2 after 4"},
		{"duplicate", watchLog{Key: 0, Responses: [][]watchEvent{{ev(0, 2, "a")}, {ev(0, 2, "a")}}}, "delivered twice"},
		{"foreign key", watchLog{Key: 0, Responses: [][]watchEvent{{ev(1, 3, "b")}}}, "event of k1"},
	}
	for _, tt := range streams {
		v := checkWatchStream(tt.log)
		if len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), tt.want) {
			t.Errorf("%s: violations %q; want one saying %q", tt.name, v, tt.want)
		}
	}

	histories := []struct {
		name string
		logs []watchLog
		want string
	}{
		{"gap", []watchLog{{Key: 0, Responses: [][]watchEvent{{ev(0, 2, "a")}, {ev(0, 4, "c")}}}}, "no watcher saw revision 3"},
		{"acknowledged write missing", []watchLog{
			{Key: 0, Responses: [][]watchEvent{{ev(0, 2, "x")}, {ev(0, 4, "c")}}},
			{Key: 1, Responses: [][]watchEvent{{ev(1, 3, "b")}}},
		}, "acknowledged write put(k0, a)"},
		{"value applied twice", []watchLog{
			{Key: 0, Responses: [][]watchEvent{{ev(0, 2, "a")}, {ev(0, 4, "a")}}},
			{Key: 1, Responses: [][]watchEvent{{ev(1, 3, "b")}}},
		}, "written twice"},
		{"phantom value", []watchLog{
			{Key: 0, Responses: [][]watchEvent{{ev(0, 2, "a")}, {ev(0, 4, "z")}}},
			{Key: 1, Responses: [][]watchEvent{{ev(1, 3, "b")}}},
		}, "which no client wrote"},
		{"final state differs", []watchLog{
			{Key: 0, Responses: [][]watchEvent{{ev(0, 2, "a")}, {ev(0, 4, "")}}},
			{Key: 1, Responses: [][]watchEvent{{ev(1, 3, "b")}}},
		}, "replaying the watch events"},
	}
	for _, tt := range histories {
		v := checkWatchHistory(init, final, tt.logs, recs)
		if len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), tt.want) {
			t.Errorf("%s: violations %q; want one saying %q", tt.name, v, tt.want)
		}
	}
}
