package kubestat

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// scrapeText is a cut-down kube-apiserver /metrics: two series of the
// request histogram (buckets deliberately out of order in one), another
// family sharing the prefix, comments and a series with an escaped quote.
const scrapeText = `# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1",le="0.005"} 10
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1",le="0.025"} 90
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1",le="+Inf"} 100
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} 1.5
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} 100
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="POST",version="v1",le="+Inf"} 4
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="POST",version="v1",le="0.005"} 4
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="POST",version="v1",le="0.025"} 4
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="coordination.k8s.io",resource="le\"ases",scope="namespace",subresource="",verb="PUT",version="v1",le="0.005"} 7
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="coordination.k8s.io",resource="le\"ases",scope="namespace",subresource="",verb="PUT",version="v1",le="0.025"} 7
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="coordination.k8s.io",resource="le\"ases",scope="namespace",subresource="",verb="PUT",version="v1",le="+Inf"} 7
apiserver_request_duration_seconds_total_something{verb="POST"} 3
apiserver_request_total{verb="POST"} 3
`

func TestParseAndGroup(t *testing.T) {
	s, err := Parse(strings.NewReader(scrapeText), RequestDuration)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 3 {
		t.Fatalf("%d series, want 3: %v", len(s), s)
	}
	var leases *Histogram
	for _, h := range s {
		if h.Labels["resource"] == `le"ases` {
			leases = h
		}
	}
	if leases == nil || leases.Count() != 7 || leases.Labels["le"] != "" {
		t.Fatalf("escaped label series: %+v", leases)
	}
	byVerb := s.GroupBy("verb", func(l map[string]string) bool { return l["group"] == "" })
	post := byVerb["POST"]
	if post == nil || post.Count() != 104 || len(byVerb) != 1 {
		t.Fatalf("grouped: %+v", byVerb)
	}
	if want := []float64{0.005, 0.025, math.Inf(1)}; !equal(post.Bounds, want) {
		t.Fatalf("bounds %v, want %v (sorted)", post.Bounds, want)
	}
	if want := []float64{14, 94, 104}; !equal(post.Counts, want) {
		t.Fatalf("counts %v, want %v", post.Counts, want)
	}
}

func TestQuantile(t *testing.T) {
	h := &Histogram{Bounds: []float64{0.005, 0.025, 0.05, math.Inf(1)}, Counts: []float64{10, 90, 99, 100}}
	for _, c := range []struct{ q, want float64 }{
		{0, 0},
		{0.05, 0.0025},               // rank 5 of the first bucket's 10, from 0
		{0.5, 0.005 + 0.02*40/80},    // rank 50: 40 of 80 into (0.005, 0.025]
		{0.95, 0.025 + 0.025*5/9},    // rank 95: 5 of 9 into (0.025, 0.05]
		{0.99, 0.05},                 // rank 99: the top of (0.025, 0.05]
		{0.999, 0.05},                // in +Inf: the last finite bound
		{1, 0.05},                    // ditto
		{0.9, 0.005 + 0.02*80/80},    // rank 90: exactly the second bucket's top
		{0.1, 0.005 * 10 / 10},       // rank 10: the first bucket's top
		{0.11, 0.005 + 0.02*1.0/80.}, // rank 11: one into the second bucket
	} {
		if got := h.Quantile(c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := (&Histogram{Bounds: []float64{1, math.Inf(1)}, Counts: []float64{0, 0}}).Quantile(0.5); !math.IsNaN(got) {
		t.Errorf("empty histogram: %v, want NaN", got)
	}
}

func TestSub(t *testing.T) {
	before, err := Parse(strings.NewReader(scrapeText), RequestDuration)
	if err != nil {
		t.Fatal(err)
	}
	// The later scrape: 50 more pod creations (all ≤ 25 ms), the
	// configmap series unchanged and a new DELETE series.
	later := strings.NewReplacer(
		`le="0.025"} 90`, `le="0.025"} 140`,
		`le="+Inf"} 100`, `le="+Inf"} 150`,
		`le="0.005"} 10`, `le="0.005"} 30`,
		`subresource="",verb="POST",version="v1"} 1.5`, `subresource="",verb="POST",version="v1"} 2`,
	).Replace(scrapeText) + `apiserver_request_duration_seconds_bucket{group="",resource="pods",verb="DELETE",le="0.005"} 2
apiserver_request_duration_seconds_bucket{group="",resource="pods",verb="DELETE",le="0.025"} 3
apiserver_request_duration_seconds_bucket{group="",resource="pods",verb="DELETE",le="+Inf"} 3
`
	after, err := Parse(strings.NewReader(later), RequestDuration)
	if err != nil {
		t.Fatal(err)
	}
	d := after.Sub(before)
	if len(d) != 2 {
		t.Fatalf("delta has %d series, want 2 (unchanged ones dropped): %v", len(d), d)
	}
	byVerb := d.GroupBy("verb", nil)
	post := byVerb["POST"]
	if want := []float64{20, 50, 50}; post == nil || !equal(post.Counts, want) || math.Abs(post.Sum-0.5) > 1e-12 {
		t.Fatalf("POST delta %+v, want counts %v sum 0.5", post, want)
	}
	if del := byVerb["DELETE"]; del == nil || del.Count() != 3 {
		t.Fatalf("new series counts whole: %+v", del)
	}
	// A restart between scrapes (the pod series went down): that series
	// whole, the unchanged configmap series dropped.
	if r := before.Sub(after); r.GroupBy("verb", nil)["POST"].Count() != 100 {
		t.Fatalf("reset: %+v", r.GroupBy("verb", nil)["POST"])
	}
}

func TestLatenciesAndPercentile(t *testing.T) {
	byVerb := map[string]*Histogram{
		"WATCH":  {Bounds: []float64{1, math.Inf(1)}, Counts: []float64{0, 5}},
		"PATCH":  {Bounds: []float64{1, math.Inf(1)}, Counts: []float64{2, 2}},
		"POST":   {Bounds: []float64{1, math.Inf(1)}, Counts: []float64{4, 4}},
		"APPLY":  {Bounds: []float64{1, math.Inf(1)}, Counts: []float64{1, 1}},
		"DELETE": {Bounds: []float64{1, math.Inf(1)}, Counts: []float64{0, 0}},
	}
	ls := Latencies(byVerb)
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	if got := strings.Join(names, ","); got != "POST,PATCH,APPLY" {
		t.Fatalf("verbs %s, want POST,PATCH,APPLY (WATCH and empty dropped)", got)
	}
	if l, ok := Find(ls, "POST"); !ok || l.Count != 4 || l.P50 != 0.5 || l.P99 != 0.99 {
		t.Fatalf("POST %+v", l)
	}
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p := Percentile(ds, 0.5); p != 0.1 {
		t.Errorf("p50 %v, want 0.1", p)
	}
	if p := Percentile(ds, 0.99); p != 0.198 {
		t.Errorf("p99 %v, want 0.198", p)
	}
	if p := Percentile(ds[:1], 0.99); p != 0.001 {
		t.Errorf("p99 of one %v", p)
	}
	if !math.IsNaN(Percentile(nil, 0.5)) {
		t.Error("no samples: want NaN")
	}
}

func TestOpRank(t *testing.T) {
	ops := []string{"WATCH start", "DELETE pods", "LIST one namespace rv=0", "PATCH pods/status", "GET configmaps", "POST pods", "LIST all namespaces rv=0", "POST configmaps", "PUT configmaps (409)", "PUT configmaps"}
	slices.SortFunc(ops, OpRank)
	want := "POST configmaps|POST pods|GET configmaps|LIST all namespaces rv=0|LIST one namespace rv=0|PUT configmaps|PUT configmaps (409)|PATCH pods/status|DELETE pods|WATCH start"
	if got := strings.Join(ops, "|"); got != want {
		t.Fatalf("sorted\n%s\nwant\n%s", got, want)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsInf(a[i], 1) && math.IsInf(b[i], 1)) {
			return false
		}
	}
	return true
}
