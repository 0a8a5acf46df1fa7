package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// key names one cell group of the table: a target and a workload.
type key struct{ target, workload string }

// sample is one workload run against one target.
type sample struct {
	opsPerSec float64
	p50, p99  float64 // seconds
	rss       int64   // peak RSS of the largest member, bytes
	disk      int64   // data directory of the largest member, bytes
	ops       float64 // requests (events, for watch) the summary counts
	serverCPU float64 // seconds of CPU (user+system) of all members during the run
	clientCPU float64 // seconds of CPU of the benchmark tool
}

// serverCPUPerOp is the members' CPU per counted operation, in µs: what
// each server spends per request whatever the client leaves it.
func (s sample) serverCPUPerOp() float64 {
	if s.ops == 0 {
		return 0
	}
	return s.serverCPU / s.ops * 1e6
}

func setup(ctx context.Context, cl *cluster, w workload) error {
	c, err := clientv3.New(cl.clientConfig())
	if err != nil {
		return err
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return w.setup(sctx, c)
}

var (
	rpsRe   = regexp.MustCompile(`Requests/sec:\s+([0-9.eE+-]+)`)
	pctRe   = regexp.MustCompile(`(?m)^\s*(50|99)% in ([0-9.eE+-]+) secs`)
	totalRe = regexp.MustCompile(`Total:\s+([0-9.eE+-]+) secs`)
)

// parseReport reads the last summary etcd's benchmark tool printed (watch
// prints two: creating the watchers, then receiving events; the second is
// the one that matters).
func parseReport(out string) (sample, error) {
	if i := strings.LastIndex(out, "Summary:"); i >= 0 {
		out = out[i:]
	}
	var s sample
	m := rpsRe.FindStringSubmatch(out)
	if m == nil {
		return s, errors.New("no Requests/sec in output")
	}
	s.opsPerSec, _ = strconv.ParseFloat(m[1], 64)
	if m := totalRe.FindStringSubmatch(out); m != nil {
		secs, _ := strconv.ParseFloat(m[1], 64)
		s.ops = s.opsPerSec * secs
	}
	for _, m := range pctRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[1] == "50" {
			s.p50 = v
		} else {
			s.p99 = v
		}
	}
	if strings.Contains(out, "Error distribution") {
		return s, errors.New("some requests failed")
	}
	return s, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func med(ss []sample, f func(sample) float64) float64 {
	var xs []float64
	for _, s := range ss {
		xs = append(xs, f(s))
	}
	return median(xs)
}

// pairedRatio is the median over rounds of Cairn's f divided by etcd's f
// in the same round, or "–" when there is none.
func pairedRatio(e, c []sample, f func(sample) float64) string {
	var ratios []float64
	for i := range min(len(e), len(c)) {
		if f(e[i]) > 0 {
			ratios = append(ratios, f(c[i])/f(e[i]))
		}
	}
	if len(ratios) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", median(ratios))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// renderTable is the markdown table of medians: throughput with the ratio
// Cairn/etcd and the ceiling, then latency, memory and disk side by side.
func renderTable(ws []workload, results map[key][]sample, o options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Medians of %d rounds (scale %g, %s, 1-minute load average %s before, %s after). Cairn/etcd is the median of the per-round ratios. Latencies in ms; server CPU is the members' user+system CPU during the run divided by the operations counted (lower is better); RSS is the server's peak (VmHWM) during the workload; disk is the data directory's allocated size after it (largest member for 3-member rows).\n\n",
		o.rounds, o.scale, o.took, o.loadBefore, o.loadAfter)
	if pin {
		fmt.Fprintf(&b, "Pinned: every server member on CPUs %s, the benchmark tool on CPUs %s (taskset).\n\n", serverCPUs, clientCPUs)
	}
	b.WriteString("| workload | etcd ops/s | Cairn ops/s | Cairn/etcd | ceiling ops/s | p50 etcd / Cairn | p99 etcd / Cairn | server CPU µs/op etcd / Cairn (Cairn/etcd) | peak RSS MiB etcd / Cairn | disk MiB etcd / Cairn |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	ops := func(s sample) float64 { return s.opsPerSec }
	p50 := func(s sample) float64 { return s.p50 * 1e3 }
	p99 := func(s sample) float64 { return s.p99 * 1e3 }
	rss := func(s sample) float64 { return mib(s.rss) }
	disk := func(s sample) float64 { return mib(s.disk) }
	cpu := func(s sample) float64 { return s.serverCPUPerOp() }
	for _, w := range ws {
		e, c := results[key{"etcd", w.name}], results[key{"Cairn", w.name}]
		// The ratio pairs each round's Cairn run with that round's etcd
		// run, seconds apart, so outside load that came and went between
		// rounds cancels out.
		ratio := pairedRatio(e, c, ops)
		if w.fixedRate {
			// The tool paces the requests, so throughput is equal by
			// construction; compare latency (lower is better).
			ratio = "p50 " + pairedRatio(e, c, p50) + ", p99 " + pairedRatio(e, c, p99) + " (latency)"
		}
		ceil := "–"
		if cs := results[key{"ceiling", w.name}]; len(cs) > 0 {
			ceil = fmt.Sprintf("%.0f", med(cs, ops))
		}
		lat50, lat99 := "–", "–"
		if !w.noLatency {
			lat50 = fmt.Sprintf("%.2f / %.2f", med(e, p50), med(c, p50))
			lat99 = fmt.Sprintf("%.2f / %.2f", med(e, p99), med(c, p99))
		}
		opsE, opsC := fmt.Sprintf("%.0f", med(e, ops)), fmt.Sprintf("%.0f", med(c, ops))
		if w.fixedRate {
			// What the tool prints as Requests/sec is events over the
			// whole run, including the tail it spends tallying them.
			opsE, opsC = "–", "–"
		}
		// Lower is better: the CPU the server spent per operation, paired
		// by round like the throughput ratio.
		cpuCol := fmt.Sprintf("%.1f / %.1f (%s)", med(e, cpu), med(c, cpu), pairedRatio(e, c, cpu))
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %.0f / %.0f | %.1f / %.1f |\n",
			w.name, opsE, opsC, ratio, ceil, lat50, lat99, cpuCol,
			med(e, rss), med(c, rss), med(e, disk), med(c, disk))
	}
	b.WriteString("\n")
	for _, w := range ws {
		fmt.Fprintf(&b, "- **%s**: %s.\n", w.name, w.describe)
	}
	b.WriteString("\nCPU per operation (µs, medians): user+system CPU of the benchmark tool and of the server's members during the run, divided by the operations counted. On a machine whose cores the client shares, a server can reach a rate R only if (client + server) × R ≤ the cores' time.\n\n")
	b.WriteString("| workload | client vs etcd / Cairn / ceiling | server etcd / Cairn / ceiling |\n|---|--:|--:|\n")
	perOp := func(ss []sample, f func(sample) float64) string {
		if len(ss) == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f", med(ss, f))
	}
	client := func(s sample) float64 {
		if s.ops == 0 {
			return 0
		}
		return s.clientCPU / s.ops * 1e6
	}
	for _, w := range ws {
		e, c, n := results[key{"etcd", w.name}], results[key{"Cairn", w.name}], results[key{"ceiling", w.name}]
		fmt.Fprintf(&b, "| %s | %s / %s / %s | %s / %s / %s |\n", w.name,
			perOp(e, client), perOp(c, client), perOp(n, client), perOp(e, cpu), perOp(c, cpu), perOp(n, cpu))
	}
	return b.String()
}
