package main

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/cairnkv/cairn/bench/internal/kubestat"
)

// The targets for the workload, Cairn/etcd.
const (
	kubeTargetP99 = 1.0 // apiserver p99 per verb
	kubeTargetCPU = 0.6 // store CPU seconds
	kubeTargetRSS = 0.5 // store peak RSS
)

// medianOf is the median of f over the samples, NaNs left out.
func medianOf(ss []kubeSample, f func(kubeSample) float64) float64 {
	var xs []float64
	for _, s := range ss {
		if v := f(s); !math.IsNaN(v) {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return math.NaN()
	}
	return median(xs)
}

// kubeRatio is the median over rounds of Cairn's f over etcd's f in the
// same round; ok is false when no round has both.
func kubeRatio(e, c []kubeSample, f func(kubeSample) float64) (float64, bool) {
	var rs []float64
	for i := range min(len(e), len(c)) {
		a, b := f(e[i]), f(c[i])
		if a > 0 && !math.IsNaN(a) && !math.IsNaN(b) {
			rs = append(rs, b/a)
		}
	}
	if len(rs) == 0 {
		return math.NaN(), false
	}
	return median(rs), true
}

func fmtRatio(r float64, ok bool) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

// verdict says whether a ratio (lower is better) meets target.
func verdict(r float64, ok bool, target float64) string {
	switch {
	case !ok:
		return "–"
	case r <= target:
		return fmt.Sprintf("met (≤ %.2f×)", target)
	default:
		return fmt.Sprintf("**not met** (≤ %.2f×)", target)
	}
}

func fmtVal(format string, v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

func fmtMs(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.1f", v*1e3)
}

// latencyOf picks one named latency out of a sample.
func latencyOf(list func(kubeSample) []kubestat.Latency, name string, q func(kubestat.Latency) float64) func(kubeSample) float64 {
	return func(s kubeSample) float64 {
		if l, ok := kubestat.Find(list(s), name); ok {
			return q(l)
		}
		return math.NaN()
	}
}

func p50(l kubestat.Latency) float64   { return l.P50 }
func p99(l kubestat.Latency) float64   { return l.P99 }
func count(l kubestat.Latency) float64 { return l.Count }

// names is every latency name in the samples, by kubestat.OpRank (a
// verb's name is its first word).
func names(list func(kubeSample) []kubestat.Latency, sss ...[]kubeSample) []string {
	var out []string
	for _, ss := range sss {
		for _, s := range ss {
			for _, l := range list(s) {
				if !slices.Contains(out, l.Name) {
					out = append(out, l.Name)
				}
			}
		}
	}
	slices.SortFunc(out, kubestat.OpRank)
	return out
}

// renderKube is the workload's tables: the apiserver's latency per verb,
// the stores' cost, and the latency the load program saw.
func renderKube(results map[string][]kubeSample, o options) string {
	e, c := results["etcd"], results["Cairn"]
	var b strings.Builder
	var first kubestat.Result
	if len(e) > 0 {
		first = e[0].res
	} else if len(c) > 0 {
		first = c[0].res
	}
	fmt.Fprintf(&b, "Kubernetes-shaped workload: kube-apiserver %s against 3 members of etcd %s and of Cairn in turn, medians of %d rounds (scale %g: %d namespaces, %d config maps, secrets and pods, %d events, %d watchers; %d requests in flight; %s; 1-minute load average %s before, %s after). Cairn/etcd is the median of the per-round ratios (lower is better throughout).\n\n",
		kubeVersion, etcdVersion, o.rounds, o.scale, first.Namespaces, first.Objects, first.Events, first.Watchers, first.Workers, o.took, o.loadBefore, o.loadAfter)
	if pin {
		fmt.Fprintf(&b, "Pinned: every store member on CPUs %s; kube-apiserver and the load program on CPUs %s (taskset).\n\n", serverCPUs, clientCPUs)
	}

	verbs := func(s kubeSample) []kubestat.Latency { return s.res.Verbs }
	b.WriteString("kube-apiserver's request latency per verb (`apiserver_request_duration_seconds`, the workload's resources, the whole run; p50/p99 interpolated in its buckets: 5, 25, 50, 100, 200, 400 ms, ...):\n\n")
	b.WriteString("| verb | requests | p50 ms etcd / Cairn | p50 Cairn/etcd | p99 ms etcd / Cairn | p99 Cairn/etcd | target p99 ≤ etcd's |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|---|\n")
	for _, v := range names(verbs, e, c) {
		n := medianOf(e, latencyOf(verbs, v, count))
		r50, ok50 := kubeRatio(e, c, latencyOf(verbs, v, p50))
		r99, ok99 := kubeRatio(e, c, latencyOf(verbs, v, p99))
		fmt.Fprintf(&b, "| %s | %.0f | %s / %s | %s | %s / %s | %s | %s |\n", v, n,
			fmtMs(medianOf(e, latencyOf(verbs, v, p50))), fmtMs(medianOf(c, latencyOf(verbs, v, p50))), fmtRatio(r50, ok50),
			fmtMs(medianOf(e, latencyOf(verbs, v, p99))), fmtMs(medianOf(c, latencyOf(verbs, v, p99))), fmtRatio(r99, ok99),
			verdict(r99, ok99, kubeTargetP99))
	}

	b.WriteString("\nThe stores (all three members' CPU; the largest member's peak RSS and data directory), kube-apiserver and the run:\n\n")
	b.WriteString("| | etcd | Cairn | Cairn/etcd | target |\n|---|--:|--:|--:|---|\n")
	row := func(name, format string, f func(kubeSample) float64, target float64) {
		r, ok := kubeRatio(e, c, f)
		v := "–"
		if target > 0 {
			v = verdict(r, ok, target)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, fmtVal(format, medianOf(e, f)), fmtVal(format, medianOf(c, f)), fmtRatio(r, ok), v)
	}
	row("store CPU, s", "%.1f", func(s kubeSample) float64 { return s.storeCPU }, kubeTargetCPU)
	row("store peak RSS, MiB", "%.0f", func(s kubeSample) float64 { return mib(s.storeRSS) }, kubeTargetRSS)
	row("store disk after, MiB", "%.0f", func(s kubeSample) float64 { return mib(s.disk) }, 0)
	row("kube-apiserver CPU, s", "%.1f", func(s kubeSample) float64 { return s.apiCPU }, 0)
	row("kube-apiserver peak RSS, MiB", "%.0f", func(s kubeSample) float64 { return mib(s.apiRSS) }, 0)
	row("load program CPU, s", "%.1f", func(s kubeSample) float64 { return s.loadCPU }, 0)
	row("wall time, s", "%.1f", func(s kubeSample) float64 { return s.res.Seconds }, 0)
	for _, p := range []string{"create", "update", "list", "watch", "events", "delete"} {
		row("… "+p+", s", "%.1f", func(s kubeSample) float64 {
			for _, ph := range s.res.Phases {
				if ph.Name == p {
					return ph.Seconds
				}
			}
			return math.NaN()
		}, 0)
	}
	row("watch: last event after the last change, s", "%.2f", func(s kubeSample) float64 { return s.res.WatchLag }, 0)
	row("watch events received", "%.0f", func(s kubeSample) float64 { return float64(s.res.WatchEvents) }, 0)
	row("watch events expected", "%.0f", func(s kubeSample) float64 { return float64(s.res.WatchExpected) }, 0)
	row("409 conflicts retried", "%.0f", func(s kubeSample) float64 { return float64(s.res.Conflicts) }, 0)
	row("failed requests", "%.0f", func(s kubeSample) float64 { return float64(s.res.Errors) }, 0)

	client := func(s kubeSample) []kubestat.Latency { return s.res.Client }
	b.WriteString("\nLatency as the load program saw it (every request timed, exact percentiles; a LIST row counts pages):\n\n")
	b.WriteString("| operation | requests | p50 ms etcd / Cairn | p99 ms etcd / Cairn | p99 Cairn/etcd |\n|---|--:|--:|--:|--:|\n")
	for _, op := range names(client, e, c) {
		r99, ok99 := kubeRatio(e, c, latencyOf(client, op, p99))
		fmt.Fprintf(&b, "| %s | %.0f | %s / %s | %s / %s | %s |\n", op, medianOf(e, latencyOf(client, op, count)),
			fmtMs(medianOf(e, latencyOf(client, op, p50))), fmtMs(medianOf(c, latencyOf(client, op, p50))),
			fmtMs(medianOf(e, latencyOf(client, op, p99))), fmtMs(medianOf(c, latencyOf(client, op, p99))), fmtRatio(r99, ok99))
	}
	return b.String()
}
