package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/bench/internal/kubestat"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// requestTimeout bounds each request.
const requestTimeout = time.Minute

// pool runs fn(ctx, i) for i in [0, n) on workers goroutines and returns
// the first error that is not a request's (a request's failure is counted
// by the recorder and the run goes on).
func (l *load) pool(ctx context.Context, n int, fn func(ctx context.Context, i int)) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(l.workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(ctx, i)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// recorder keeps the latency of every request by operation name, and
// counts failures.
type recorder struct {
	mu        sync.Mutex
	samples   map[string][]time.Duration
	requests  int64
	errors    int64
	first     error
	conflicts atomic.Int64
}

func newRecorder() *recorder { return &recorder{samples: map[string][]time.Duration{}} }

// do times one request. op names it in the client-side table, for example
// "PATCH pods/status" or `LIST one namespace rv=""`.
func (r *recorder) do(ctx context.Context, op string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	r.observe(op, time.Since(start), err)
	return err
}

// observe records one request that took d and returned err.
func (r *recorder) observe(op string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if apierrors.IsConflict(err) {
		// A 409 on a read-modify-write: the caller reads again and
		// retries (an error only if its retries run out).
		r.conflicts.Add(1)
		r.samples[op+" (409)"] = append(r.samples[op+" (409)"], d)
		return
	}
	if err != nil {
		r.errors++
		if r.first == nil {
			r.first = fmt.Errorf("%s: %w", op, err)
		}
		return
	}
	r.samples[op] = append(r.samples[op], d)
}

// fail counts an error found outside a request (retries that ran out).
func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors++
	if r.first == nil {
		r.first = err
	}
}

func (r *recorder) totals() (requests, errors int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.errors
}

func (r *recorder) firstError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// latencies is the exact p50 and p99 of every operation, by name.
func (r *recorder) latencies() []kubestat.Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []kubestat.Latency
	for op, ds := range r.samples {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		out = append(out, kubestat.Latency{Name: op, Count: float64(len(ds)), P50: kubestat.Percentile(ds, 0.5), P99: kubestat.Percentile(ds, 0.99)})
	}
	slices.SortFunc(out, func(a, b kubestat.Latency) int { return kubestat.OpRank(a.Name, b.Name) })
	return out
}

// resources are the workload's resources: the latency table counts only
// these, not the apiserver's own requests (its leases, flow-control and
// RBAC bootstrap objects).
var resources = map[string]bool{"namespaces": true, "serviceaccounts": true, "configmaps": true, "secrets": true, "pods": true, "events": true}

// scrape reads the apiserver's request-duration histogram.
func (l *load) scrape(ctx context.Context) (kubestat.Scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	b, err := l.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return kubestat.Parse(bytes.NewReader(b), kubestat.RequestDuration)
}

// verbLatencies is p50/p99 per verb of the workload's core-group
// resources in a scrape delta.
func verbLatencies(d kubestat.Scrape) []kubestat.Latency {
	return kubestat.Latencies(d.GroupBy("verb", func(labels map[string]string) bool {
		return labels["group"] == "" && resources[labels["resource"]]
	}))
}
