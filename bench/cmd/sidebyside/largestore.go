package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The large store is not a benchmark-tool workload: the harness itself
// loads one member with a million keys of 1 KiB, then measures what it
// costs to hold them, to come back after a crash, and to list them all at
// once. It takes minutes per target, so it runs only with -large or when
// -only names it.
const (
	largeName    = "1M keys"
	largeKeys    = 1_000_000
	largeValSize = 1024
	// largeBatch is puts per Txn: etcd's --max-txn-ops default, which
	// Cairn shares.
	largeBatch = 128
	// largeWorkers is how many Txns are in flight while loading, spread
	// over largeClients connections.
	largeWorkers = 16
	largeClients = 4
	largePrefix  = "bench-1m/"
	// largeChurn is how many single small puts follow the load. The load
	// is only about 7,800 Raft entries of 128 KiB, fewer than
	// --snapshot-count (10,000), and both servers keep 5,000 entries in
	// memory behind each snapshot: without the churn, "RSS" and "restart"
	// would measure a gigabyte of Raft log in memory and in the WAL rather
	// than the store. 15,000 more entries make both take two snapshots
	// and drop every load entry.
	largeChurn = 15_000
	// largeIdle is how long the member sits without requests after the
	// churn before its RSS is read again. The Go runtime returns freed
	// heap to the kernel gradually (its scavenger), so RSS right after the
	// churn still counts the load's garbage.
	largeIdle = 30 * time.Second
)

// listSample is one listing of every key.
type listSample struct {
	took     time.Duration
	peakRSS  int64 // VmHWM during the listing
	peakAnon int64 // highest RssAnon sampled every 10 ms during the listing
}

// largeSample is the large-store workload run once against one target.
type largeSample struct {
	load        time.Duration
	loadPeakRSS int64 // VmHWM while loading
	loadRSS     int64 // VmRSS right after the last load response
	churnRSS    int64 // VmRSS after largeChurn small puts
	idleRSS     int64 // VmRSS largeIdle later, with no requests meanwhile
	disk        int64 // data directory after loading and churning
	restart     time.Duration
	restartRSS  int64      // VmRSS right after the first Get after restart
	stream      listSample // RangeStream over every key
	all         listSample // one Range over every key
}

// largeKeyCount is the number of keys at the given scale.
func largeKeyCount(scale float64) int {
	return max(largeBatch, int(largeKeys*scale))
}

// runLarge starts one fresh member of t under dir and runs the large-store
// workload on it: load, restart after SIGKILL, list through RangeStream,
// then list with one Range. The stream goes first because its peak is the
// smaller: a Range first would leave the Go heap it grew resident, and the
// stream's reading would start from there.
func runLarge(ctx context.Context, o options, t target, dir string) (largeSample, error) {
	var s largeSample
	keys := largeKeyCount(o.scale)
	var extra []string
	if o.pprof {
		extra = append(extra, "--enable-pprof")
	}
	cl, err := start(ctx, t, 1, dir, o.snapshotCount, nil, extra...)
	if err != nil {
		return s, err
	}
	defer cl.stop()
	profile := func(phase string) {
		if o.pprof {
			saveHeapProfile(ctx, cl.endpoints[0], filepath.Join(dir, phase+".heap.pb.gz"))
		}
	}

	cl.resetPeakRSS()
	var cpu sync.WaitGroup
	if o.pprof {
		// A CPU profile of the first 30 s of the load.
		cpu.Go(func() {
			url := "http://" + cl.endpoints[0] + "/debug/pprof/profile?seconds=30"
			if err := fetch(ctx, url, filepath.Join(dir, "load.cpu.pb.gz")); err != nil {
				fmt.Fprintf(os.Stderr, "cpu profile: %v\n", err)
			}
		})
	}
	began := time.Now()
	err = loadLarge(ctx, cl.endpoints, keys, t.name)
	s.load = time.Since(began)
	s.loadPeakRSS = cl.peakRSS()
	s.loadRSS = cl.rss()
	cpu.Wait()
	if err != nil {
		return s, fmt.Errorf("load: %w", err)
	}
	profile("after-load")
	if err := churn(ctx, cl.endpoints, largeChurn); err != nil {
		return s, fmt.Errorf("churn: %w", err)
	}
	s.churnRSS = cl.rss()
	s.disk = cl.diskUsage()
	profile("after-churn")
	select {
	case <-time.After(largeIdle):
	case <-ctx.Done():
		return s, ctx.Err()
	}
	s.idleRSS = cl.rss()

	if s.restart, err = cl.crashRestart(ctx); err != nil {
		return s, err
	}
	s.restartRSS = cl.rss()
	profile("after-restart")

	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cl.endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		// One Range of every key is about 1.06 GB at scale 1.
		MaxCallRecvMsgSize: math.MaxInt32,
	})
	if err != nil {
		return s, err
	}
	defer c.Close()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	if s.stream, err = measureList(cl, keys, func() (int, error) {
		ch, err := c.GetStream(lctx, largePrefix, clientv3.WithPrefix())
		if err != nil {
			return 0, err
		}
		n := 0
		for r := range ch {
			if err := r.Err(); err != nil {
				return n, err
			}
			n += len(r.Kvs)
		}
		return n, nil
	}); err != nil {
		return s, fmt.Errorf("RangeStream: %w", err)
	}
	profile("after-stream")

	if s.all, err = measureList(cl, keys, func() (int, error) {
		resp, err := c.Get(lctx, largePrefix, clientv3.WithPrefix())
		if err != nil {
			return 0, err
		}
		return len(resp.Kvs), nil
	}); err != nil {
		return s, fmt.Errorf("Range: %w", err)
	}
	profile("after-range")
	return s, nil
}

// measureList times list, which returns how many keys it saw, and the
// server's peak memory meanwhile.
func measureList(cl *cluster, want int, list func() (int, error)) (listSample, error) {
	var ls listSample
	cl.resetPeakRSS()
	stop := sampleAnon(cl.procs[0].Process.Pid)
	began := time.Now()
	n, err := list()
	ls.took = time.Since(began)
	ls.peakAnon = stop()
	ls.peakRSS = cl.peakRSS()
	if err != nil {
		return ls, err
	}
	if n != want {
		return ls, fmt.Errorf("listed %d keys, want %d", n, want)
	}
	return ls, nil
}

// sampleAnon samples pid's anonymous resident memory (RssAnon: heap and
// stacks, not mapped files) every 10 ms until the returned function is
// called, which returns the highest value seen. VmHWM alone would also
// count the pages of a memory-mapped database (etcd's bbolt) that a
// listing touches, which the kernel can drop at will.
func sampleAnon(pid int) (stop func() int64) {
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var hi int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := procStatus(pid, "RssAnon"); err == nil {
				hi = max(hi, v)
			}
			select {
			case <-done:
				peak <- hi
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 { close(done); return <-peak }
}

// loadLarge writes keys keys of largeValSize random bytes (incompressible,
// so neither store's compression flatters it) in Txns of largeBatch puts,
// largeWorkers at a time.
func loadLarge(ctx context.Context, endpoints []string, keys int, who string) error {
	var clients []*clientv3.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range largeClients {
		c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		clients = append(clients, c)
	}
	batches := (keys + largeBatch - 1) / largeBatch
	var next, done atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for w := range largeWorkers {
		wg.Go(func() {
			c := clients[w%len(clients)]
			buf := make([]byte, largeBatch*largeValSize)
			for {
				b := int(next.Add(1) - 1)
				if b >= batches || ctx.Err() != nil {
					return
				}
				// The same values for every target: seeded by batch.
				rng := rand.New(rand.NewPCG(uint64(b), 0x1a26e))
				var ops []clientv3.Op
				for i := b * largeBatch; i < min(keys, (b+1)*largeBatch); i++ {
					v := buf[(i-b*largeBatch)*largeValSize:][:largeValSize]
					for j := 0; j < len(v); j += 8 {
						u := rng.Uint64()
						for k := range 8 {
							v[j+k] = byte(u >> (8 * k))
						}
					}
					ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%07d", largePrefix, i), string(v)))
				}
				var err error
				for attempt := range 5 {
					tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
					_, err = c.Txn(tctx).Then(ops...).Commit()
					tcancel()
					if err == nil || ctx.Err() != nil {
						break
					}
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
				if err != nil {
					cancel(fmt.Errorf("txn of keys %d..: %w", b*largeBatch, err))
					return
				}
				done.Add(int64(len(ops)))
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			return context.Cause(ctx)
		case <-tick.C:
			fmt.Fprintf(os.Stderr, "  loading %s: %d of %d keys\n", who, done.Load(), keys)
		}
	}
}

// churn writes n single puts of 256-byte values over 1,000 keys outside
// the listed prefix, 50 at a time.
func churn(ctx context.Context, endpoints []string, n int) error {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer c.Close()
	var next atomic.Int64
	errs := make(chan error, 50)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := c.Put(tctx, fmt.Sprintf("bench-churn/%03d", i%1000), value)
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// saveHeapProfile fetches the server's heap profile (in-use and
// cumulative allocations; compare two with `go tool pprof -base`) into
// path, and the same as text with runtime.MemStats at its end (heap in
// use, idle, released to the OS) into path with .txt appended. It asks
// for a GC first (gc=1), so in-use is what is live now rather than at
// the last GC; that perturbs the next phase, one more reason not to quote
// a -pprof run's numbers. Both
// servers serve /debug/pprof/ on the client URL with --enable-pprof. A
// failure is reported, not fatal.
func saveHeapProfile(ctx context.Context, endpoint, path string) {
	for _, q := range []struct{ query, path string }{{"?gc=1", path}, {"?debug=1", path + ".txt"}} {
		if err := fetch(ctx, "http://"+endpoint+"/debug/pprof/heap"+q.query, q.path); err != nil {
			fmt.Fprintf(os.Stderr, "heap profile %s: %v\n", q.path, err)
		}
	}
}

func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// renderLarge is the large-store table: one row per measurement, the
// median of the rounds for each target and the median of the per-round
// ratios Cairn/etcd, with the goal where the issue sets one.
func renderLarge(results map[string][]largeSample, o options) string {
	keys := largeKeyCount(o.scale)
	sec := func(d time.Duration) float64 { return d.Seconds() }
	rows := []struct {
		label  string
		f      func(largeSample) float64
		format string
		goal   string
	}{
		{"load time, s", func(s largeSample) float64 { return sec(s.load) }, "%.1f", ""},
		{"load rate, keys/s", func(s largeSample) float64 { return float64(keys) / sec(s.load) }, "%.0f", ""},
		{"peak RSS while loading, MiB", func(s largeSample) float64 { return mib(s.loadPeakRSS) }, "%.0f", "≤ 0.5×"},
		{"RSS right after loading, MiB", func(s largeSample) float64 { return mib(s.loadRSS) }, "%.0f", ""},
		{"RSS after 15,000 more puts, MiB", func(s largeSample) float64 { return mib(s.churnRSS) }, "%.0f", ""},
		{"RSS after 30 s idle, MiB", func(s largeSample) float64 { return mib(s.idleRSS) }, "%.0f", "≤ 0.5×"},
		{"disk, MiB", func(s largeSample) float64 { return mib(s.disk) }, "%.0f", ""},
		{"restart after SIGKILL, s", func(s largeSample) float64 { return sec(s.restart) }, "%.2f", "≤ 0.5×"},
		{"RSS after restart, MiB", func(s largeSample) float64 { return mib(s.restartRSS) }, "%.0f", "≤ 0.5×"},
		{"list all, one Range: time, s", func(s largeSample) float64 { return sec(s.all.took) }, "%.2f", ""},
		{"list all, one Range: peak RSS, MiB", func(s largeSample) float64 { return mib(s.all.peakRSS) }, "%.0f", "≤ 0.25×"},
		{"list all, one Range: peak anon RSS, MiB", func(s largeSample) float64 { return mib(s.all.peakAnon) }, "%.0f", "≤ 0.25×"},
		{"list all, RangeStream: time, s", func(s largeSample) float64 { return sec(s.stream.took) }, "%.2f", ""},
		{"list all, RangeStream: peak RSS, MiB", func(s largeSample) float64 { return mib(s.stream.peakRSS) }, "%.0f", ""},
		{"list all, RangeStream: peak anon RSS, MiB", func(s largeSample) float64 { return mib(s.stream.peakAnon) }, "%.0f", ""},
	}
	e, c := results["etcd"], results["Cairn"]
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d keys × %d B of random bytes in one member, loaded in Txns of %d puts, %d in flight, then %d single puts of 256 B so that both servers drop the load from their in-memory Raft logs, then %s without requests. Medians of %d rounds (scale %g; the whole run took %s, 1-minute load average %s before, %s after); Cairn/etcd is the median of the per-round ratios (lower is better on every row but the load rate). RSS rows are VmRSS/VmHWM (anon: RssAnon sampled every 10 ms).\n\n",
		largeName, keys, largeValSize, largeBatch, largeWorkers, largeChurn, largeIdle, len(e), o.scale, o.took, o.loadBefore, o.loadAfter)
	b.WriteString("| 1M keys | etcd | Cairn | Cairn/etcd | goal |\n|---|--:|--:|--:|--:|\n")
	for _, r := range rows {
		var xe, xc []float64
		var ratios []float64
		for i := range max(len(e), len(c)) {
			if i < len(e) {
				xe = append(xe, r.f(e[i]))
			}
			if i < len(c) {
				xc = append(xc, r.f(c[i]))
			}
			if i < len(e) && i < len(c) && r.f(e[i]) > 0 {
				ratios = append(ratios, r.f(c[i])/r.f(e[i]))
			}
		}
		ratio := "–"
		if len(ratios) > 0 {
			ratio = fmt.Sprintf("%.2f×", median(ratios))
		}
		goal := r.goal
		if goal == "" {
			goal = "–"
		}
		fmt.Fprintf(&b, "| %s | "+r.format+" | "+r.format+" | %s | %s |\n", r.label, median(xe), median(xc), ratio, goal)
	}
	b.WriteString("\n")
	return b.String()
}
