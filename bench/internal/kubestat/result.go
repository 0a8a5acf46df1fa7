package kubestat

import (
	"math"
	"slices"
	"strings"
	"time"
)

// Result is what one run of bench/cmd/kubeload measured, written as JSON.
type Result struct {
	Scale      float64 `json:"scale"`
	Namespaces int     `json:"namespaces"`
	// Objects is the config maps, secrets and pods created (namespaces,
	// service accounts and events not counted).
	Objects int `json:"objects"`
	Events  int `json:"events"`
	Workers int `json:"workers"`
	// Watchers is the informer-style watches of the watch phase;
	// WatchEvents the label changes they received of WatchExpected, and
	// WatchLag the time from the last change's response until the last
	// expected event arrived (or the wait gave up).
	Watchers      int     `json:"watchers"`
	WatchEvents   int64   `json:"watch_events"`
	WatchExpected int64   `json:"watch_expected"`
	WatchLag      float64 `json:"watch_lag_seconds"`
	// Conflicts is the 409s the read-modify-write updates retried.
	Conflicts int64 `json:"conflicts"`
	// Errors is the requests that failed (after retries on conflict).
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	Phases  []Phase `json:"phases"`
	// Verbs is the apiserver's request latency per verb over the whole
	// run, from apiserver_request_duration_seconds (the workload's
	// resources only; WATCH excluded, its duration is the watch's life).
	Verbs []Latency `json:"verbs"`
	// Client is the latency the load program saw per operation, exact
	// percentiles of every request.
	Client []Latency `json:"client"`
}

// Phase is one phase of the run.
type Phase struct {
	Name     string    `json:"name"`
	Seconds  float64   `json:"seconds"`
	Requests int64     `json:"requests"`
	Errors   int64     `json:"errors"`
	Verbs    []Latency `json:"verbs"`
}

// Latency is the p50 and p99 of one verb or operation, in seconds.
type Latency struct {
	Name  string  `json:"name"`
	Count float64 `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
}

// verbOrder is the order the table lists the apiserver's verbs in.
var verbOrder = []string{"POST", "GET", "LIST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION"}

// VerbRank orders verb names: the usual ones first in verbOrder's
// order, then the rest alphabetically.
func VerbRank(a, b string) int {
	ia, ib := slices.Index(verbOrder, a), slices.Index(verbOrder, b)
	if ia < 0 {
		ia = len(verbOrder)
	}
	if ib < 0 {
		ib = len(verbOrder)
	}
	if ia != ib {
		return ia - ib
	}
	return strings.Compare(a, b)
}

// OpRank orders operation names ("POST pods", `LIST one namespace rv=0`)
// by their first word as VerbRank does, then by the rest.
func OpRank(a, b string) int {
	va, ra, _ := strings.Cut(a, " ")
	vb, rb, _ := strings.Cut(b, " ")
	if c := VerbRank(va, vb); c != 0 {
		return c
	}
	return strings.Compare(ra, rb)
}

// LongRunning reports whether verb's duration is a connection's lifetime
// rather than a request's latency.
func LongRunning(verb string) bool {
	return verb == "WATCH" || verb == "WATCHLIST" || verb == "CONNECT"
}

// Latencies is p50 and p99 of each histogram, by VerbRank, skipping
// long-running verbs and empty histograms.
func Latencies(byVerb map[string]*Histogram) []Latency {
	var out []Latency
	for verb, h := range byVerb {
		if LongRunning(verb) || h.Count() == 0 {
			continue
		}
		out = append(out, Latency{Name: verb, Count: h.Count(), P50: h.Quantile(0.5), P99: h.Quantile(0.99)})
	}
	slices.SortFunc(out, func(a, b Latency) int { return VerbRank(a.Name, b.Name) })
	return out
}

// Percentile is the nearest-rank q-percentile of sorted (ascending): the
// smallest sample with at least q of the samples at or below it. NaN when
// there are none.
func Percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return sorted[i].Seconds()
}

// Find is the latency named name in ls.
func Find(ls []Latency, name string) (Latency, bool) {
	for _, l := range ls {
		if l.Name == name {
			return l, true
		}
	}
	return Latency{}, false
}
