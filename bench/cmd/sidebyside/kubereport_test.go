package main

import (
	"strings"
	"testing"

	"github.com/cairnkv/cairn/bench/internal/kubestat"
)

func kubeFixture(postP99, cpu float64, rss int64, withPatch bool) kubeSample {
	res := kubestat.Result{
		Scale: 0.05, Namespaces: 5, Objects: 1000, Events: 100, Watchers: 15, Workers: 16, Seconds: 30,
		WatchEvents: 600, WatchExpected: 600,
		Phases: []kubestat.Phase{{Name: "create", Seconds: 10}, {Name: "delete", Seconds: 5}},
		Verbs:  []kubestat.Latency{{Name: "POST", Count: 1010, P50: 0.004, P99: postP99}},
		Client: []kubestat.Latency{{Name: "POST pods", Count: 500, P50: 0.003, P99: 0.02}},
	}
	if withPatch {
		res.Verbs = append(res.Verbs, kubestat.Latency{Name: "PATCH", Count: 500, P50: 0.003, P99: 0.01})
	}
	return kubeSample{res: res, storeCPU: cpu, storeRSS: rss << 20, disk: 64 << 20, apiCPU: 20, apiRSS: 400 << 20, loadCPU: 5}
}

func TestRenderKube(t *testing.T) {
	results := map[string][]kubeSample{
		// Two rounds; the per-round p99 ratios for POST are 0.5 and 2.0
		// (median 1.25, not met); CPU 0.5 and 0.7 (0.6, met); RSS 0.25
		// both (met). PATCH only in etcd's samples.
		"etcd":  {kubeFixture(0.020, 10, 200, true), kubeFixture(0.010, 10, 200, true)},
		"Cairn": {kubeFixture(0.010, 5, 50, false), kubeFixture(0.020, 7, 50, false)},
	}
	o := options{rounds: 2, scale: 0.05, took: 0, loadBefore: "1.0", loadAfter: "2.0"}
	out := renderKube(results, o)
	for _, want := range []string{
		"medians of 2 rounds (scale 0.05: 5 namespaces, 1000 config maps, secrets and pods, 100 events, 15 watchers; 16 requests in flight",
		"| POST | 1010 | 4.0 / 4.0 | 1.00× | 15.0 / 15.0 | 1.25× | **not met** (≤ 1.00×) |",
		"| PATCH | 500 | 3.0 / – | – | 10.0 / – | – | – |",
		"| store CPU, s | 10.0 | 6.0 | 0.60× | met (≤ 0.60×) |",
		"| store peak RSS, MiB | 200 | 50 | 0.25× | met (≤ 0.50×) |",
		"| store disk after, MiB | 64 | 64 | 1.00× | – |",
		"| … create, s | 10.0 | 10.0 | 1.00× | – |",
		"| … update, s | – | – | – | – |",
		"| watch events received | 600 | 600 | 1.00× | – |",
		"| POST pods | 500 | 3.0 / 3.0 | 20.0 / 20.0 | 1.00× |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Index(out, "| POST |") > strings.Index(out, "| PATCH |") {
		t.Errorf("POST should come before PATCH:\n%s", out)
	}
}
