// Command sidebyside benchmarks Cairn against upstream etcd on this machine
// and prints one markdown table.
//
//	cd bench && go run ./cmd/sidebyside -rounds 3
//
// It builds Cairn (../cmd/cairn), etcd's benchmark tool (bench/tools/benchmark,
// its own module) and the do-nothing ceiling server (bench/cmd/noopkv); it
// takes etcd from ../bin/etcd when that reports the pinned version and
// builds bench/cmd/etcd otherwise. Then, for each round, it starts etcd,
// Cairn and the ceiling on fresh data directories and runs every workload
// against each in turn, one target under load at a time, the order
// alternating between rounds. The table holds the median of the rounds and
// the median of the per-round ratios Cairn/etcd. Every process it starts
// is stopped by PID, also on ^C.
//
// With -large (or -only "1M keys") it also runs the large-store workload
// (largestore.go): a million keys of 1 KiB loaded into one member, then
// its memory, disk, restart time and the cost of listing every key with
// one Range and with RangeStream, in a table of its own.
//
// With -kube (or -only kube) it also runs the Kubernetes-shaped workload
// (kube.go): kube-apiserver, as tests/kube builds it, on three members of
// etcd and then of Cairn, driven by bench/cmd/kubeload through client-go;
// the apiserver's latency per verb and the stores' CPU, memory and disk,
// in tables of their own.
//
// It is a tool for people, not a test: CI never runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// etcdVersion is the etcd release Cairn is compared with; bench/go.mod
// pins go.etcd.io/etcd/server/v3 at the same version.
const etcdVersion = "3.7.3"

type options struct {
	rounds        int
	scale         float64
	only          string
	repo          string
	etcd          string
	benchmark     string
	snapshotCount int
	keep          bool
	out           string
	large         bool
	pprof         bool
	kube          bool
	kubeBin       string
	kubeWorkers   int

	// Filled in by run for the table's caption.
	loadBefore, loadAfter string
	took                  time.Duration
}

// loadAvg is the 1-minute load average, to show whether something else
// was using the machine's cores during the run.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every workload once against each target")
	flag.Float64Var(&o.scale, "scale", 1, "multiply every workload's request count by this")
	flag.BoolVar(&pin, "pin", false, "run the servers on -server-cpus and the benchmark tool on -client-cpus (taskset), so the ratio shows each server's cost rather than how much CPU it left the client")
	flag.StringVar(&serverCPUs, "server-cpus", "", "with -pin, the CPUs (taskset -c list) every server member runs on; default 1")
	flag.StringVar(&clientCPUs, "client-cpus", "", "with -pin, the CPUs the benchmark tool runs on; default 0")
	flag.StringVar(&o.only, "only", "", "comma-separated workload names (substrings) to run, or exact names separated by | (names hold commas); empty runs all")
	flag.StringVar(&o.repo, "repo", "..", "the Cairn repository root")
	flag.StringVar(&o.etcd, "etcd", "", "etcd binary; empty: <repo>/bin/etcd if it is v"+etcdVersion+", else build bench/cmd/etcd")
	flag.StringVar(&o.benchmark, "benchmark", "", "etcd benchmark tool binary; empty: build bench/tools/benchmark")
	flag.IntVar(&o.snapshotCount, "snapshot-count", 10000, "--snapshot-count for both servers")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data dirs, logs, benchmark output)")
	flag.StringVar(&o.out, "out", "", "also write the table to this file")
	flag.BoolVar(&o.large, "large", false, "also run the large-store workload ("+largeName+", minutes per target); -only can also select it by name")
	flag.BoolVar(&o.kube, "kube", false, "also run the Kubernetes-shaped workload ("+kubeName+": kube-apiserver "+kubeVersion+" on 3 members, driven by bench/cmd/kubeload; a minute or more per target at -scale 0.25); -only kube selects it alone")
	flag.StringVar(&o.kubeBin, "kube-bin", "", "directory holding kube-apiserver "+kubeVersion+"; empty: run ../tests/kube/install.sh (builds it once, then cached)")
	flag.IntVar(&o.kubeWorkers, "kube-workers", 16, "requests the Kubernetes workload keeps in flight")
	flag.BoolVar(&o.pprof, "pprof", false, "start the large-store members with --enable-pprof and save heap profiles after each phase (use with -keep)")
	flag.Parse()
	if pin {
		if serverCPUs == "" {
			serverCPUs = "1"
		}
		if clientCPUs == "" {
			clientCPUs = "0"
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, o)
	killAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	benchDir, err := os.Getwd()
	if err != nil {
		return err
	}
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "cmd", "cairn")); err != nil {
		return fmt.Errorf("-repo %s is not the Cairn repository (run from bench/, or pass -repo): %w", repo, err)
	}
	tmp, err := os.MkdirTemp("", "cairn-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	selected := func(name string) bool {
		if o.only == "" {
			return true
		}
		// Row names hold commas: with a "|" in -only, it separates
		// exact names instead.
		if strings.Contains(o.only, "|") {
			return slices.Contains(strings.Split(o.only, "|"), name)
		}
		return slices.ContainsFunc(strings.Split(o.only, ","), func(s string) bool { return strings.Contains(name, strings.TrimSpace(s)) })
	}
	var ws []workload
	for _, w := range workloads() {
		if selected(w.name) {
			ws = append(ws, w)
		}
	}
	// The large store and the Kubernetes workload take minutes per
	// target: only on request.
	large := o.large || (o.only != "" && selected(largeName))
	o.kube = o.kube || (o.only != "" && selected(kubeName))
	if len(ws) == 0 && !large && !o.kube {
		return fmt.Errorf("-only %q matches no workload", o.only)
	}

	bins, err := buildAll(ctx, o, repo, benchDir, tmp)
	if err != nil {
		return err
	}
	targets := []target{
		{name: "etcd", bin: bins.etcd},
		{name: "Cairn", bin: bins.cairn},
	}
	ceiling := target{name: "ceiling", bin: bins.noopkv, noop: true}

	results := map[key][]sample{}
	largeResults := map[string][]largeSample{}
	kubeResults := map[string][]kubeSample{}
	began := time.Now()
	o.loadBefore = loadAvg()
	for r := range o.rounds {
		dir := filepath.Join(tmp, fmt.Sprintf("round%d", r+1))
		if len(ws) > 0 {
			if err := runRound(ctx, o, bins.benchmark, []target{targets[0], targets[1], ceiling}, ws, r, dir, results); err != nil {
				return err
			}
		}
		if large {
			if err := runLargeRound(ctx, o, targets, r, dir, largeResults); err != nil {
				return err
			}
		}
		if o.kube {
			if err := runKubeRound(ctx, o, bins, targets, r, dir, kubeResults); err != nil {
				return err
			}
		}
	}
	o.loadAfter = loadAvg()
	o.took = time.Since(began).Round(time.Second)
	fmt.Fprintf(os.Stderr, "done in %s\n", o.took)

	var table string
	if len(ws) > 0 {
		table = renderTable(ws, results, o)
	}
	if large {
		if table != "" {
			table += "\n"
		}
		table += renderLarge(largeResults, o)
	}
	if o.kube {
		if table != "" {
			table += "\n"
		}
		table += renderKube(kubeResults, o)
	}
	fmt.Print(table)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(table), 0o644)
	}
	return nil
}

type binaries struct{ cairn, etcd, benchmark, noopkv, kubeload, kubeAPIServer string }

func buildAll(ctx context.Context, o options, repo, benchDir, tmp string) (binaries, error) {
	b := binaries{
		cairn:     filepath.Join(tmp, "cairn"),
		noopkv:    filepath.Join(tmp, "noopkv"),
		etcd:      o.etcd,
		benchmark: o.benchmark,
	}
	steps := []struct {
		dir  string
		args []string
	}{
		{repo, []string{"build", "-o", b.cairn, "./cmd/cairn"}},
		{benchDir, []string{"build", "-o", b.noopkv, "./cmd/noopkv"}},
	}
	if b.benchmark == "" {
		b.benchmark = filepath.Join(tmp, "benchmark")
		steps = append(steps, struct {
			dir  string
			args []string
		}{filepath.Join(benchDir, "tools", "benchmark"), []string{"build", "-o", b.benchmark, "go.etcd.io/etcd/v3/tools/benchmark"}})
	}
	if o.kube {
		b.kubeload = filepath.Join(tmp, "kubeload")
		steps = append(steps, struct {
			dir  string
			args []string
		}{benchDir, []string{"build", "-o", b.kubeload, "./cmd/kubeload"}})
		var err error
		if b.kubeAPIServer, err = kubeAPIServer(ctx, o, repo); err != nil {
			return b, err
		}
	}
	if b.etcd == "" {
		b.etcd = filepath.Join(repo, "bin", "etcd")
		if out, err := exec.CommandContext(ctx, b.etcd, "--version").Output(); err != nil || !strings.Contains(string(out), "etcd Version: "+etcdVersion+"\n") {
			b.etcd = filepath.Join(tmp, "etcd")
			steps = append(steps, struct {
				dir  string
				args []string
			}{benchDir, []string{"build", "-o", b.etcd, "./cmd/etcd"}})
		}
	}
	for _, s := range steps {
		fmt.Fprintf(os.Stderr, "(cd %s && go %s)\n", s.dir, strings.Join(s.args, " "))
		cmd := exec.CommandContext(ctx, "go", s.args...)
		cmd.Dir = s.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return b, fmt.Errorf("go %s in %s: %w", strings.Join(s.args, " "), s.dir, err)
		}
	}
	return b, nil
}

// runRound runs every workload once against each target. The machine may
// be shared, so the targets of one workload run back to back, seconds
// apart, in an order that alternates between rounds: a burst of outside
// load then hurts both sides of a comparison rather than one. All targets
// are up at once but only one is under load at a time. Single-member
// workloads share one fresh member per target (later rows see the keys
// earlier rows wrote, the same for every target); each multi-member
// workload gets fresh clusters.
func runRound(ctx context.Context, o options, benchmark string, targets []target, ws []workload, round int, dir string, results map[key][]sample) error {
	order := slices.Clone(targets)
	if round%2 == 1 {
		slices.Reverse(order)
	}
	clusters := map[string]*cluster{}
	stopAll := func() {
		for name, cl := range clusters {
			cl.stop()
			delete(clusters, name)
		}
	}
	defer stopAll()
	members, tlsRow, authRow := 0, false, false
	var pki *benchPKI
	for _, w := range ws {
		if w.tls && pki == nil {
			var err error
			if pki, err = newBenchPKI(filepath.Join(dir, "pki")); err != nil {
				return err
			}
		}
		if len(clusters) == 0 || members != w.members || w.members > 1 || tlsRow != w.tls || authRow != w.auth {
			stopAll()
			for _, t := range order {
				if t.noop && (w.members > 1 || !w.ceiling) {
					continue
				}
				sub := filepath.Join(dir, fmt.Sprintf("%s-%dm-%s", t.name, w.members, slug(w.name)))
				if err := os.MkdirAll(sub, 0o755); err != nil {
					return err
				}
				var p *benchPKI
				if w.tls {
					p = pki
				}
				cl, err := start(ctx, t, w.members, sub, o.snapshotCount, p)
				if err != nil {
					return err
				}
				clusters[t.name] = cl
				if w.auth {
					if err := cl.enableAuth(ctx); err != nil {
						return fmt.Errorf("%s: %w", t.name, err)
					}
				}
			}
			members, tlsRow, authRow = w.members, w.tls, w.auth
		}
		for _, t := range order {
			cl := clusters[t.name]
			if cl == nil || (t.noop && !w.ceiling) {
				continue
			}
			s, err := runWorkload(ctx, benchmark, cl, w, o.scale, filepath.Join(dir, t.name+"-out"))
			if err != nil {
				return fmt.Errorf("%s, %s, round %d: %w", t.name, w.name, round+1, err)
			}
			fmt.Fprintf(os.Stderr, "round %d  %-8s %-30s %9.0f ops/s  p50 %7.2f ms  p99 %7.2f ms  rss %6.1f MiB  disk %7.1f MiB  cpu server %5.1fs (%5.1f µs/op) client %5.1fs\n",
				round+1, t.name, w.name, s.opsPerSec, s.p50*1e3, s.p99*1e3, mib(s.rss), mib(s.disk), s.serverCPU, s.serverCPUPerOp(), s.clientCPU)
			results[key{t.name, w.name}] = append(results[key{t.name, w.name}], s)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// runLargeRound runs the large-store workload against each target in
// turn, alternating the order between rounds like runRound. Only one
// target's member is up at a time: each holds a gigabyte or more.
func runLargeRound(ctx context.Context, o options, targets []target, round int, dir string, results map[string][]largeSample) error {
	order := slices.Clone(targets)
	if round%2 == 1 {
		slices.Reverse(order)
	}
	for _, t := range order {
		sub := filepath.Join(dir, t.name+"-"+slug(largeName))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		s, err := runLarge(ctx, o, t, sub)
		if err != nil {
			return fmt.Errorf("%s, %s, round %d: %w", t.name, largeName, round+1, err)
		}
		fmt.Fprintf(os.Stderr, "round %d  %-8s %s: load %.1fs (peak RSS %.0f, RSS %.0f, after churn %.0f, idle %.0f MiB, disk %.0f MiB), restart %.2fs (RSS %.0f MiB), Range %.2fs (peak RSS %.0f, anon %.0f MiB), RangeStream %.2fs (peak RSS %.0f, anon %.0f MiB)\n",
			round+1, t.name, largeName, s.load.Seconds(), mib(s.loadPeakRSS), mib(s.loadRSS), mib(s.churnRSS), mib(s.idleRSS), mib(s.disk), s.restart.Seconds(), mib(s.restartRSS),
			s.all.took.Seconds(), mib(s.all.peakRSS), mib(s.all.peakAnon), s.stream.took.Seconds(), mib(s.stream.peakRSS), mib(s.stream.peakAnon))
		results[t.name] = append(results[t.name], s)
		if !o.keep {
			// A gigabyte or two per target; the next one needs the room.
			_ = os.RemoveAll(filepath.Join(sub, "m0.data"))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func slug(name string) string { return strings.NewReplacer(" ", "", ",", "").Replace(name) }

func runWorkload(ctx context.Context, benchmark string, cl *cluster, w workload, scale float64, outDir string) (sample, error) {
	if w.setup != nil {
		if err := setup(ctx, cl, w); err != nil {
			return sample{}, fmt.Errorf("setup: %w", err)
		}
	}
	cl.resetPeakRSS()
	cpuBefore := cl.cpuSeconds()
	stopBackground := func() {}
	if w.background != nil {
		bctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); w.background(bctx, cl) }()
		stopBackground = func() { cancel(); <-done }
	}
	cmd := pinnedContext(ctx, clientCPUs, benchmark, w.benchArgs(cl.endpoints, scale, cl.pki)...)
	out, err := cmd.CombinedOutput()
	stopBackground()
	serverCPU := cl.cpuSeconds() - cpuBefore
	if err := os.MkdirAll(outDir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(outDir, slug(w.name)+".txt"), out, 0o644)
	}
	if err != nil {
		return sample{}, fmt.Errorf("benchmark %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, tail(out, 2000))
	}
	s, err := parseReport(string(out))
	if err != nil {
		return sample{}, fmt.Errorf("benchmark %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, tail(out, 2000))
	}
	s.rss = cl.peakRSS()
	s.disk = cl.diskUsage()
	s.serverCPU = serverCPU
	s.clientCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return s, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
