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
func keyName(i int) string { return fmt.Sprintf("%sk%d", keyPrefix, i) }

// Key spaces. Everything the workload writes is under rootPrefix, which
// one watcher follows whole; the linearizability model covers the keys
// under keyPrefix, and treats revisions that changed only other keys
// (lease, lock and election keys) as foreign: they happen, but the
// model needs no more about them than that they take a revision.
const (
	rootPrefix     = "/robustness/"
	keyPrefix      = rootPrefix + "kv/"
	leasePrefix    = rootPrefix + "lease/"
	lockPrefix     = rootPrefix + "lock/"
	electionPrefix = rootPrefix + "election/"
)

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
	// opRange reads every key under keyPrefix at once.
	opRange
	// opDeleteRange deletes every key under keyPrefix at once: one
	// revision whatever it deletes, none if nothing.
	opDeleteRange
)

func (k opKind) String() string {
	return [...]string{"get", "put", "delete", "cas", "range", "delete-range"}[k]
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
	// Deleted is a delete's count of keys removed.
	Deleted int64
	// All is every key as a range saw it.
	All [keyCount]keyState
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

// foreignRevs are the revisions of a run that changed no key of the
// model (lease, lock and election keys), as the watch of rootPrefix
// saw them.
type foreignRevs map[int64]bool

// catchUp reports whether the store can have moved from revision from
// to revision to by foreign writes alone.
func (f foreignRevs) catchUp(from, to int64) bool {
	if to < from {
		return false
	}
	for r := from + 1; r <= to; r++ {
		if !f[r] {
			return false
		}
	}
	return true
}

// next is the revision the next write of the model gets after rev: the
// first that is not foreign.
func (f foreignRevs) next(rev int64) int64 {
	rev++
	for f[rev] {
		rev++
	}
	return rev
}

// step is etcd's semantics for the requests. Writes are deterministic
// given the state, so an unknown outcome needs no branching: if
// porcupine linearizes the request, it did what the state dictates; if
// it was never applied, porcupine linearizes it after everything else,
// where it changes nothing anyone observed. Foreign revisions are
// taken lazily: a read may see the store any number of foreign
// revisions ahead, a write takes the first revision that is not
// foreign.
func step(f foreignRevs, s kvState, in kvInput, out kvOutput) (bool, kvState) {
	cur := s.Keys[in.Key]
	// read is a request that wrote nothing: its revision may be ahead
	// of the state's by foreign writes, which it then has seen.
	read := func(match bool) (bool, kvState) {
		if out.Unknown {
			return true, s
		}
		if !match || !f.catchUp(s.Rev, out.Rev) {
			return false, s
		}
		s.Rev = out.Rev
		return true, s
	}
	write := func() int64 {
		s.Rev = f.next(s.Rev)
		return s.Rev
	}
	switch in.Kind {
	case opGet:
		return read(keyMatches(cur, out))
	case opRange:
		return read(out.All == s.Keys)
	case opPut:
		rev := write()
		s.Keys[in.Key] = keyState{Value: in.Value, ModRev: rev}
		return out.Unknown || out.Rev == rev, s
	case opDelete:
		if cur.ModRev == 0 {
			return read(out.Deleted == 0)
		}
		s.Keys[in.Key] = keyState{}
		rev := write()
		return out.Unknown || (out.Rev == rev && out.Deleted == 1), s
	case opDeleteRange:
		var n int64
		for _, k := range s.Keys {
			if k.ModRev != 0 {
				n++
			}
		}
		if n == 0 {
			return read(out.Deleted == 0)
		}
		s.Keys = [keyCount]keyState{}
		rev := write()
		return out.Unknown || (out.Rev == rev && out.Deleted == n), s
	case opCAS:
		if cur.ModRev == in.ExpectModRev {
			rev := write()
			s.Keys[in.Key] = keyState{Value: in.Value, ModRev: rev}
			return out.Unknown || (out.Succeeded && out.Rev == rev), s
		}
		return read(!out.Succeeded && keyMatches(cur, out))
	}
	panic(fmt.Sprintf("robustness: unknown op kind %d", in.Kind))
}

func keyMatches(cur keyState, out kvOutput) bool {
	return out.Found == (cur.ModRev != 0) && out.Value == cur.Value && out.ModRev == cur.ModRev
}

// kvModel is the porcupine model, starting from init (the store as read
// just before the load). It has no partition function: the revision
// orders writes to every key, so the history is one partition.
func kvModel(init kvState, foreign foreignRevs) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return init },
		Step: func(state, input, output any) (bool, any) {
			return step(foreign, state.(kvState), input.(kvInput), output.(kvOutput))
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
	case opRange:
		call = "range(kv/)"
	case opDeleteRange:
		call = "delete-range(kv/)"
	}
	if out.Unknown {
		return call + " -> unknown"
	}
	switch {
	case in.Kind == opPut || (in.Kind == opCAS && out.Succeeded):
		return fmt.Sprintf("%s -> ok rev %d", call, out.Rev)
	case in.Kind == opDelete, in.Kind == opDeleteRange:
		return fmt.Sprintf("%s -> deleted %d rev %d", call, out.Deleted, out.Rev)
	case in.Kind == opRange:
		var b strings.Builder
		for i, k := range out.All {
			if k.ModRev != 0 {
				fmt.Fprintf(&b, " k%d=%s@%d", i, k.Value, k.ModRev)
			}
		}
		return fmt.Sprintf("%s ->%s rev %d", call, b.String(), out.Rev)
	case !out.Found:
		return fmt.Sprintf("%s -> absent rev %d", call, out.Rev)
	default:
		return fmt.Sprintf("%s -> %s@%d rev %d", call, out.Value, out.ModRev, out.Rev)
	}
}
