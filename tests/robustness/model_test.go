package robustness

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
)

// keyCount is the size of the workload's key space: small, so that
// clients contend on every key and the CAS often races.
const keyCount = 4

// keyName is the etcd key of key index i.
func keyName(i int) string { return fmt.Sprintf("/robustness/k%d", i) }

// keyPrefix holds every key of the workload, for the final read.
const keyPrefix = "/robustness/"

// opKind is the kind of one client request.
type opKind uint8

const (
	opGet opKind = iota
	opPut
	opDelete
	// opCAS is Txn(If ModRevision(key) == ExpectModRev Then Put(key,
	// Value) Else Get(key)). ExpectModRev 0 means "the key is absent",
	// as etcd compares a missing key's revisions as 0.
	opCAS
)

func (k opKind) String() string {
	return [...]string{"get", "put", "delete", "cas"}[k]
}

// kvInput is what a client asked.
type kvInput struct {
	Kind         opKind
	Key          int    // index in [0, keyCount)
	Value        string // put and cas; unique over the run
	ExpectModRev int64  // cas
}

// kvOutput is what the client was told. With Unknown set nothing else
// is meaningful: the request failed in a way that leaves open whether
// the cluster applied it.
type kvOutput struct {
	Unknown bool
	// Rev is the response header's revision: the store's revision after
	// a write, the one read at for a read.
	Rev int64
	// Found, Value and ModRev are the key as a get, or a failed cas's
	// else branch, saw it.
	Found  bool
	Value  string
	ModRev int64
	// Deleted is a delete's count of keys removed (0 or 1).
	Deleted int64
	// Succeeded is whether a cas's comparison held.
	Succeeded bool
}

// keyState is one key in the model; ModRev 0 means absent.
type keyState struct {
	Value  string
	ModRev int64
}

// kvState is the whole store as the model sees it. It is a comparable
// value, so porcupine's default equality and cheap copies keep Step
// pure.
type kvState struct {
	Rev  int64
	Keys [keyCount]keyState
}

// step is etcd's semantics for the four requests. Writes are
// deterministic given the state, so an unknown outcome needs no
// branching: if porcupine linearizes the request, it did what the state
// dictates; if it was never applied, porcupine linearizes it after
// everything else, where it changes nothing anyone observed.
func step(s kvState, in kvInput, out kvOutput) (bool, kvState) {
	cur := s.Keys[in.Key]
	switch in.Kind {
	case opGet:
		return out.Unknown || readMatches(s, cur, out), s
	case opPut:
		s.Rev++
		s.Keys[in.Key] = keyState{Value: in.Value, ModRev: s.Rev}
		return out.Unknown || out.Rev == s.Rev, s
	case opDelete:
		var deleted int64
		if cur.ModRev != 0 {
			s.Rev++
			s.Keys[in.Key] = keyState{}
			deleted = 1
		}
		return out.Unknown || (out.Rev == s.Rev && out.Deleted == deleted), s
	case opCAS:
		if cur.ModRev == in.ExpectModRev {
			s.Rev++
			s.Keys[in.Key] = keyState{Value: in.Value, ModRev: s.Rev}
			return out.Unknown || (out.Succeeded && out.Rev == s.Rev), s
		}
		return out.Unknown || (!out.Succeeded && readMatches(s, cur, out)), s
	}
	panic(fmt.Sprintf("robustness: unknown op kind %d", in.Kind))
}

func readMatches(s kvState, cur keyState, out kvOutput) bool {
	return out.Rev == s.Rev && out.Found == (cur.ModRev != 0) && out.Value == cur.Value && out.ModRev == cur.ModRev
}

// kvModel is the porcupine model, starting from init (the store as read
// just before the load). It has no partition function: the revision
// orders writes to every key, so the history is one partition.
func kvModel(init kvState) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return init },
		Step: func(state, input, output any) (bool, any) {
			return step(state.(kvState), input.(kvInput), output.(kvOutput))
		},
		DescribeOperation: func(input, output any) string {
			return describeOp(input.(kvInput), output.(kvOutput))
		},
		DescribeState: func(state any) string {
			s := state.(kvState)
			var b strings.Builder
			fmt.Fprintf(&b, "rev %d", s.Rev)
			for i, k := range s.Keys {
				if k.ModRev != 0 {
					fmt.Fprintf(&b, ", k%d=%s@%d", i, k.Value, k.ModRev)
				}
			}
			return b.String()
		},
	}
}

func describeOp(in kvInput, out kvOutput) string {
	var call string
	switch in.Kind {
	case opGet:
		call = fmt.Sprintf("get(k%d)", in.Key)
	case opPut:
		call = fmt.Sprintf("put(k%d, %s)", in.Key, in.Value)
	case opDelete:
		call = fmt.Sprintf("delete(k%d)", in.Key)
	case opCAS:
		call = fmt.Sprintf("cas(k%d, mod=%d, %s)", in.Key, in.ExpectModRev, in.Value)
	}
	if out.Unknown {
		return call + " -> unknown"
	}
	switch {
	case in.Kind == opPut || (in.Kind == opCAS && out.Succeeded):
		return fmt.Sprintf("%s -> ok rev %d", call, out.Rev)
	case in.Kind == opDelete:
		return fmt.Sprintf("%s -> deleted %d rev %d", call, out.Deleted, out.Rev)
	case !out.Found:
		return fmt.Sprintf("%s -> absent rev %d", call, out.Rev)
	default:
		return fmt.Sprintf("%s -> %s@%d rev %d", call, out.Value, out.ModRev, out.Rev)
	}
}
