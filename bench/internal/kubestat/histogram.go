// Package kubestat holds the pure parts of the Kubernetes-shaped workload
// of the side-by-side benchmark: reading a Prometheus histogram out of
// kube-apiserver's /metrics text, the delta between two scrapes, quantiles
// from cumulative buckets (as PromQL's histogram_quantile computes them),
// exact percentiles of client-side samples, and the result that
// bench/cmd/kubeload writes and bench/cmd/sidebyside reads.
//
// It imports nothing from Kubernetes, so sidebyside stays free of
// client-go.
package kubestat

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// RequestDuration is the apiserver histogram the workload reports.
const RequestDuration = "apiserver_request_duration_seconds"

// A Histogram is one series of a Prometheus histogram: its labels (le
// excluded), its bucket upper bounds in ascending order (the last +Inf)
// and the cumulative count of each bucket.
type Histogram struct {
	Labels map[string]string
	Bounds []float64
	Counts []float64
	Sum    float64
}

// Count is the number of observations (the +Inf bucket).
func (h *Histogram) Count() float64 {
	if h == nil || len(h.Counts) == 0 {
		return 0
	}
	return h.Counts[len(h.Counts)-1]
}

// Scrape is every series of one histogram family in one scrape, keyed by
// the series' labels in canonical form (see labelKey).
type Scrape map[string]*Histogram

// Parse reads the text exposition format and returns the series of the
// histogram family name. Other families are skipped. Buckets may come in
// any order; they are sorted by bound.
func Parse(r io.Reader, name string) (Scrape, error) {
	s := Scrape{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	bucket, sum := name+"_bucket", name+"_sum"
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" || text[0] == '#' || !strings.HasPrefix(text, name) {
			continue
		}
		metric, labels, value, err := parseSample(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		switch metric {
		case bucket:
			le, ok := labels["le"]
			if !ok {
				return nil, fmt.Errorf("line %d: bucket without le", line)
			}
			bound, err := parseFloat(le)
			if err != nil {
				return nil, fmt.Errorf("line %d: le %q: %w", line, le, err)
			}
			delete(labels, "le")
			h := s.series(labels)
			h.Bounds = append(h.Bounds, bound)
			h.Counts = append(h.Counts, value)
		case sum:
			s.series(labels).Sum = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, h := range s {
		sortBuckets(h)
	}
	return s, nil
}

func (s Scrape) series(labels map[string]string) *Histogram {
	k := labelKey(labels)
	h := s[k]
	if h == nil {
		h = &Histogram{Labels: labels}
		s[k] = h
	}
	return h
}

func sortBuckets(h *Histogram) {
	idx := make([]int, len(h.Bounds))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case h.Bounds[a] < h.Bounds[b]:
			return -1
		case h.Bounds[a] > h.Bounds[b]:
			return 1
		}
		return 0
	})
	bounds, counts := make([]float64, len(idx)), make([]float64, len(idx))
	for i, j := range idx {
		bounds[i], counts[i] = h.Bounds[j], h.Counts[j]
	}
	h.Bounds, h.Counts = bounds, counts
}

// labelKey is labels as name="value" pairs sorted by name.
func labelKey(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(&b, "%s=%q,", k, labels[k])
	}
	return b.String()
}

// parseSample splits `name{a="x",b="y"} 12 [timestamp]`.
func parseSample(line string) (string, map[string]string, float64, error) {
	labels := map[string]string{}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", nil, 0, fmt.Errorf("no value in %q", line)
	}
	name, rest := line[:i], line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return "", nil, 0, fmt.Errorf("malformed labels in %q", line)
			}
			lname := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return "", nil, 0, fmt.Errorf("unterminated label value in %q", line)
			}
			labels[lname] = v.String()
		}
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", nil, 0, fmt.Errorf("no value in %q", line)
	}
	v, err := parseFloat(f[0])
	if err != nil {
		return "", nil, 0, fmt.Errorf("value in %q: %w", line, err)
	}
	return name, labels, v, nil
}

func parseFloat(s string) (float64, error) {
	switch s {
	case "+Inf", "Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}

// Sub is the observations made between prev and s: each series of s less
// the same series in prev. A series missing from prev (first observed in
// between) counts whole; so does one whose count went down (the process
// restarted between the scrapes) or whose buckets differ.
func (s Scrape) Sub(prev Scrape) Scrape {
	d := Scrape{}
	for k, h := range s {
		p := prev[k]
		out := &Histogram{Labels: h.Labels, Bounds: slices.Clone(h.Bounds), Counts: slices.Clone(h.Counts), Sum: h.Sum}
		if p != nil && slices.Equal(p.Bounds, h.Bounds) && p.Count() <= h.Count() {
			for i := range out.Counts {
				out.Counts[i] -= p.Counts[i]
			}
			out.Sum -= p.Sum
		}
		if out.Count() > 0 {
			d[k] = out
		}
	}
	return d
}

// GroupBy sums the series for which keep returns true by the value of
// label (for example "verb"). Series with other bucket bounds than the
// first one seen for a group are skipped (a histogram family has one set).
func (s Scrape) GroupBy(label string, keep func(labels map[string]string) bool) map[string]*Histogram {
	out := map[string]*Histogram{}
	for _, k := range slices.Sorted(maps.Keys(s)) {
		h := s[k]
		if keep != nil && !keep(h.Labels) {
			continue
		}
		g := h.Labels[label]
		acc := out[g]
		if acc == nil {
			out[g] = &Histogram{Labels: map[string]string{label: g}, Bounds: slices.Clone(h.Bounds), Counts: slices.Clone(h.Counts), Sum: h.Sum}
			continue
		}
		if !slices.Equal(acc.Bounds, h.Bounds) {
			continue
		}
		for i := range acc.Counts {
			acc.Counts[i] += h.Counts[i]
		}
		acc.Sum += h.Sum
	}
	return out
}

// Quantile is the q-quantile (0 ≤ q ≤ 1) of the observations, as
// Prometheus' histogram_quantile estimates it: linear interpolation inside
// the bucket the rank falls in, the first bucket starting at 0, and the
// upper bound of the last finite bucket when the rank falls in +Inf. It is
// NaN for an empty histogram.
func (h *Histogram) Quantile(q float64) float64 {
	n := len(h.Counts)
	if n == 0 || h.Count() == 0 || q < 0 || q > 1 {
		return math.NaN()
	}
	rank := q * h.Count()
	b := 0
	for b < n-1 && h.Counts[b] < rank {
		b++
	}
	if math.IsInf(h.Bounds[b], 1) {
		if b == 0 {
			return math.NaN()
		}
		return h.Bounds[b-1]
	}
	start, below := 0.0, 0.0
	if b > 0 {
		start, below = h.Bounds[b-1], h.Counts[b-1]
	} else if h.Bounds[0] <= 0 {
		return h.Bounds[0]
	}
	inBucket := h.Counts[b] - below
	if inBucket <= 0 {
		return h.Bounds[b]
	}
	return start + (h.Bounds[b]-start)*(rank-below)/inBucket
}
