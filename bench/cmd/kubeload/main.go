// Command kubeload is the load program of the side-by-side benchmark's
// Kubernetes-shaped workload (sidebyside -only kube): it drives a
// kube-apiserver through client-go the way controllers and kubelets do,
// in phases, and writes what it measured as JSON (kubestat.Result).
//
//	kubeload -server https://127.0.0.1:6443 -token TOKEN -scale 0.05 -out result.json
//
// Phases, at -scale 1 (namespaces scale with -scale; what is in each does
// not):
//
//   - create: 100 namespaces, each with its default service account, 50
//     config maps, 50 secrets and 100 pods: 20,000 objects.
//   - update: a status patch on every pod (strategic merge on pods/status,
//     as a kubelet sends), and every config map updated twice at once by
//     two workers, each a read-modify-write (Get, then Update carrying the
//     resourceVersion read, retried on 409 Conflict: client-go's
//     retry.RetryOnConflict, the client side of GuaranteedUpdate).
//   - list: pods, config maps and secrets listed across all namespaces in
//     pages of 500 (limit and continue), three times each with
//     resourceVersion "" (a consistent read), "0" (any, from the watch
//     cache) and an exact resourceVersion; and every namespace's own list
//     of each, in the three modes.
//   - watch: 300 informer-style watchers (a list with resourceVersion "0"
//     then a watch from its resourceVersion with bookmarks; one in 30 on
//     the pods of all namespaces, the rest on one namespace's pods), then a
//     label patch on every pod; it waits until every watcher has seen every
//     change it should (or a minute has passed).
//   - events: 20 core/v1 Events per namespace about its pods, half then
//     patched as the event recorder patches a repeated event (count and
//     lastTimestamp); kube-apiserver stores each with a lease of
//     --event-ttl.
//   - delete: every pod, config map, secret and service account one by
//     one, each namespace's events with one DeleteCollection, then the
//     namespaces.
//
// Around each phase it scrapes kube-apiserver's /metrics; the result
// holds p50 and p99 per verb of apiserver_request_duration_seconds (the
// workload's resources only) for each phase and for the whole run, and the
// latency of each operation as the load program saw it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cairnkv/cairn/bench/internal/kubestat"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

type config struct {
	server, token, out string
	scale              float64
	workers            int
}

// sizes are the workload's counts at a scale.
type sizes struct {
	namespaces                          int
	configMaps, secrets, pods           int // per namespace
	events                              int // per namespace
	watchers                            int
	listRepeats                         int
	watchWait                           time.Duration
	configMapBytes, secretBytes, podEnv int
}

func sizesAt(scale float64) sizes {
	return sizes{
		namespaces:     max(1, int(math.Round(100*scale))),
		configMaps:     50,
		secrets:        50,
		pods:           100,
		events:         20,
		watchers:       max(3, int(math.Round(300*scale))),
		listRepeats:    3,
		watchWait:      time.Minute,
		configMapBytes: 1024,
		secretBytes:    256,
		podEnv:         4,
	}
}

func main() {
	var c config
	flag.StringVar(&c.server, "server", "", "kube-apiserver URL (https://127.0.0.1:PORT); its certificate is not verified")
	flag.StringVar(&c.token, "token", "", "bearer token of a user that may do everything")
	flag.Float64Var(&c.scale, "scale", 1, "1 is 100 namespaces of 200 objects (20,000) and 300 watchers; 0.05 is 5 namespaces and 15 watchers")
	flag.IntVar(&c.workers, "workers", 16, "requests in flight (a worker pool)")
	flag.StringVar(&c.out, "out", "", "write the result (JSON) here; default stdout")
	flag.Parse()
	if c.server == "" || c.token == "" {
		fmt.Fprintln(os.Stderr, "kubeload: -server and -token are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeload:", err)
		os.Exit(1)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeload:", err)
		os.Exit(1)
	}
	b = append(b, '\n')
	if c.out == "" {
		_, err = os.Stdout.Write(b)
	} else {
		err = os.WriteFile(c.out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeload:", err)
		os.Exit(1)
	}
}

// restConfig is client-go's configuration for the run: protobuf (what
// Kubernetes' own components use for built-in types), no client-side
// rate limit (QPS -1: client-go's default of 5/s would be the bottleneck),
// no overall timeout (watches last the phase; each request has its own
// context deadline).
func restConfig(c config) *rest.Config {
	return &rest.Config{
		Host:            c.server,
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             -1,
		ContentConfig: rest.ContentConfig{
			ContentType:        "application/vnd.kubernetes.protobuf",
			AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json",
		},
		UserAgent: "kubeload",
	}
}

// load is one run's state shared by the phases.
type load struct {
	cs      *kubernetes.Clientset
	sz      sizes
	workers int
	rec     *recorder
	res     *kubestat.Result
	nsNames []string
}

func run(ctx context.Context, c config) (*kubestat.Result, error) {
	cs, err := kubernetes.NewForConfig(restConfig(c))
	if err != nil {
		return nil, err
	}
	sz := sizesAt(c.scale)
	l := &load{cs: cs, sz: sz, workers: max(1, c.workers), rec: newRecorder(), res: &kubestat.Result{
		Scale:      c.scale,
		Namespaces: sz.namespaces,
		Objects:    sz.namespaces * (sz.configMaps + sz.secrets + sz.pods),
		Events:     sz.namespaces * sz.events,
		Workers:    max(1, c.workers),
		Watchers:   sz.watchers,
	}}
	for i := range sz.namespaces {
		l.nsNames = append(l.nsNames, fmt.Sprintf("kubeload-%03d", i))
	}
	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"create", l.create},
		{"update", l.update},
		{"list", l.list},
		{"watch", l.watch},
		{"events", l.events},
		{"delete", l.delete},
	}
	first, err := l.scrape(ctx)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	began := time.Now()
	prev := first
	for _, p := range phases {
		start := time.Now()
		reqs, errs := l.rec.totals()
		if err := p.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		took := time.Since(start)
		cur, err := l.scrape(ctx)
		if err != nil {
			return nil, fmt.Errorf("scrape /metrics after %s: %w", p.name, err)
		}
		reqs2, errs2 := l.rec.totals()
		ph := kubestat.Phase{
			Name:     p.name,
			Seconds:  took.Seconds(),
			Requests: reqs2 - reqs,
			Errors:   errs2 - errs,
			Verbs:    verbLatencies(cur.Sub(prev)),
		}
		l.res.Phases = append(l.res.Phases, ph)
		fmt.Fprintf(os.Stderr, "kubeload: %-6s %6.1fs %7d requests (%d failed)", p.name, took.Seconds(), ph.Requests, ph.Errors)
		for _, v := range ph.Verbs {
			fmt.Fprintf(os.Stderr, "  %s %.0f p50 %.1fms p99 %.1fms", v.Name, v.Count, v.P50*1e3, v.P99*1e3)
		}
		fmt.Fprintln(os.Stderr)
		prev = cur
	}
	l.res.Seconds = time.Since(began).Seconds()
	l.res.Verbs = verbLatencies(prev.Sub(first))
	l.res.Client = l.rec.latencies()
	_, l.res.Errors = l.rec.totals()
	l.res.Conflicts = l.rec.conflicts.Load()
	if l.res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "kubeload: %d requests failed; first: %v\n", l.res.Errors, l.rec.firstError())
	}
	return l.res, nil
}
