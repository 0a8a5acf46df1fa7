package robustness

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// record is one finished request: who asked what, when, and the answer.
// Times are nanoseconds since the history began, from the monotonic
// clock.
type record struct {
	Client int
	Input  kvInput
	Output kvOutput
	Call   int64
	Return int64
}

// history is what every client of one run did, safe for concurrent use.
type history struct {
	start time.Time
	// Init is the store just before the load, which the model starts
	// from.
	Init kvState

	mu      sync.Mutex
	records []record
}

func newHistory(init kvState) *history {
	return &history{start: time.Now(), Init: init}
}

// now is the time to stamp a call or return with.
func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(r record) {
	h.mu.Lock()
	h.records = append(h.records, r)
	h.mu.Unlock()
}

// Records returns a copy of what was recorded so far.
func (h *history) Records() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.records...)
}

// operations converts records to porcupine's form. A request with an
// unknown outcome may take effect at any time after its call, so it
// returns at +∞; a read with an unknown outcome changed nothing and
// told nothing, so it is left out.
func operations(recs []record) []porcupine.Operation {
	ops := make([]porcupine.Operation, 0, len(recs))
	for _, r := range recs {
		ret := r.Return
		if r.Output.Unknown {
			if r.Input.Kind == opGet || r.Input.Kind == opRange {
				continue
			}
			ret = math.MaxInt64
		}
		ops = append(ops, porcupine.Operation{ClientId: r.Client, Input: r.Input, Call: r.Call, Output: r.Output, Return: ret})
	}
	return ops
}

// checkTimeout bounds porcupine's search. Revisions pin most of the
// order, so a bounded run's history checks in well under a second; a
// timeout is reported, not taken as a pass.
const checkTimeout = 3 * time.Minute

// linearizability is the outcome of checking one history.
type linearizability struct {
	Result porcupine.CheckResult
	// Dir holds history.json and history.html when Result is not Ok.
	Dir string
}

// checkLinearizable runs porcupine over recs. Unless the history is
// linearizable it saves the history and its visualization into outDir
// (made if need be), so that a failure can be looked at and replayed.
func checkLinearizable(init kvState, foreign foreignRevs, recs []record, outDir string) (linearizability, error) {
	model := kvModel(init, foreign)
	res, info := porcupine.CheckOperationsVerbose(model, operations(recs), checkTimeout)
	out := linearizability{Result: res}
	if res == porcupine.Ok || outDir == "" {
		return out, nil
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return out, fmt.Errorf("robustness: %w", err)
	}
	out.Dir = outDir
	if err := saveHistory(filepath.Join(outDir, "history.json"), init, foreign, recs); err != nil {
		return out, err
	}
	if err := porcupine.VisualizePath(model, info, filepath.Join(outDir, "history.html")); err != nil {
		return out, fmt.Errorf("robustness: visualize history into %s: %w", outDir, err)
	}
	return out, nil
}

// savedHistory is the file form of a history, for replay.
type savedHistory struct {
	Init    kvState
	Foreign []int64
	Records []record
}

// foreign is the set of foreign revisions saved.
func (h savedHistory) foreign() foreignRevs {
	f := make(foreignRevs, len(h.Foreign))
	for _, r := range h.Foreign {
		f[r] = true
	}
	return f
}

func saveHistory(path string, init kvState, foreign foreignRevs, recs []record) error {
	revs := make([]int64, 0, len(foreign))
	for r := range foreign {
		revs = append(revs, r)
	}
	slices.Sort(revs)
	b, err := json.MarshalIndent(savedHistory{Init: init, Foreign: revs, Records: recs}, "", " ")
	if err != nil {
		return fmt.Errorf("robustness: encode history: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("robustness: save history: %w", err)
	}
	return nil
}

func loadHistory(path string) (savedHistory, error) {
	var h savedHistory
	b, err := os.ReadFile(path)
	if err != nil {
		return h, fmt.Errorf("robustness: load history: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("robustness: decode history %s: %w", path, err)
	}
	return h, nil
}

// checkClientRevisions reports every time a client was told a revision
// older than one it had already been told: each client issues one
// request at a time, so under linearizability its view only moves
// forward.
func checkClientRevisions(recs []record) []string {
	var violations []string
	last := make(map[int]record)
	for _, r := range recs { // in the order each client finished, per client
		if r.Output.Unknown {
			continue
		}
		if prev, ok := last[r.Client]; ok && r.Output.Rev < prev.Output.Rev {
			violations = append(violations, fmt.Sprintf("client %d: %s after %s: revision went back from %d to %d",
				r.Client, describeOp(r.Input, r.Output), describeOp(prev.Input, prev.Output), prev.Output.Rev, r.Output.Rev))
		}
		last[r.Client] = r
	}
	return violations
}

// resolveUnknown uses the watch of rootPrefix to settle what it can of
// the requests whose outcome the client did not learn, as etcd's own
// robustness suite does: porcupine's search grows with every request
// that may take effect anywhere after its call. A put or a cas whose
// (unique) value the watch shows took effect at that revision, and is
// given it, still with an unknown return time; one whose value never
// appears took no effect (the watch is checked to be whole separately)
// and changed nothing anyone saw, so it is left out. Deletes, whose
// events do not say who made them, stay unknown. The records returned
// are for the linearizability check alone: the client never saw the
// revisions filled in.
func resolveUnknown(recs []record, idx eventIndex) []record {
	putAt := make(map[string]int64)
	for rev, evs := range idx {
		for _, e := range evs {
			if e.Put && keyIndex(e.Key) >= 0 {
				putAt[e.Value] = rev
			}
		}
	}
	out := make([]record, 0, len(recs))
	for _, r := range recs {
		if r.Output.Unknown && (r.Input.Kind == opPut || r.Input.Kind == opCAS) {
			rev, ok := putAt[r.Input.Value]
			if !ok {
				continue
			}
			r.Output = kvOutput{Rev: rev, Succeeded: r.Input.Kind == opCAS}
			r.Return = math.MaxInt64
		}
		out = append(out, r)
	}
	return out
}
