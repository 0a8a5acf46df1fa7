package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A workload is one run of etcd's benchmark tool against a fresh-enough
// server: the same arguments for every target, so a row of the table
// compares like with like.
type workload struct {
	// name is the table's row label and the -only selector.
	name string
	// describe says in words what the row measures (printed under the table).
	describe string
	// members is 1, or 3 for a cluster started for this workload alone.
	members int
	// conns and clients are the benchmark tool's --conns and --clients.
	conns, clients int
	// args are the benchmark subcommand and its flags; total is appended as
	// --total (or --put-total for watch) after scaling.
	args  []string
	total int
	// totalFlag names the flag total is passed as.
	totalFlag string
	// setup writes the keys the workload reads, before it runs.
	setup func(ctx context.Context, c *clientv3.Client) error
	// ceiling is set when the do-nothing server can answer the workload.
	ceiling bool
	// noLatency is set when the tool's latencies do not mean request
	// latency (watch times the handling of each event in a batch).
	noLatency bool
	// tls runs the row with mutual TLS on client and peer URLs, the same
	// certificates for every target.
	tls bool
	// auth runs the row with auth on, as a user whose role grants
	// read-write on every key (not root, whose requests skip the
	// permission lookup).
	auth bool
	// background, when set, runs beside the benchmark tool for the whole
	// run (another load the row measures the tool's requests under).
	background func(ctx context.Context, cl *cluster)
	// fixedRate is set when the tool paces the requests (watch-latency's
	// --put-rate), so throughput is the same for every target and the
	// ratio column compares latencies instead.
	fixedRate bool
}

const valSize = 256

var value = strings.Repeat("v", valSize)

// workloads returns the table's rows in the order they run. Totals are for
// scale 1 and are chosen so that one target's pass takes well under a
// minute on 2 cores.
func workloads() []workload {
	return []workload{
		{
			name:     "put, 1 client",
			describe: "one client on one connection, sequential 8-byte keys, 256-byte values: the latency of one fsync'd write",
			members:  1, conns: 1, clients: 1,
			args:  []string{"put", "--key-size=8", "--val-size=256", "--sequential-keys", "--key-space-size=100000"},
			total: 1500, ceiling: true,
		},
		{
			name:     "put, 100 clients",
			describe: "100 clients over 10 connections, random keys in a 100,000-key space, 256-byte values: group commit",
			members:  1, conns: 10, clients: 100,
			args:  []string{"put", "--key-size=8", "--val-size=256", "--key-space-size=100000"},
			total: 20000, ceiling: true,
		},
		{
			name:     "range 1 key, linearizable",
			describe: "100 clients over 10 connections read one 256-byte key with a ReadIndex round each",
			members:  1, conns: 10, clients: 100,
			args:  []string{"range", "bench-key", "--consistency=l"},
			total: 40000, setup: putKeys("bench-key", 1), ceiling: true,
		},
		{
			name:     "range 1 key, serializable",
			describe: "as above, served from the local store without ReadIndex",
			members:  1, conns: 10, clients: 100,
			args:  []string{"range", "bench-key", "--consistency=s"},
			total: 40000, setup: putKeys("bench-key", 1), ceiling: true,
		},
		{
			name:     "txn-put, 100 clients",
			describe: "100 clients over 10 connections, each request a Txn with one Put, random keys in a 100,000-key space",
			members:  1, conns: 10, clients: 100,
			args:  []string{"txn-put", "--key-size=8", "--val-size=256", "--txn-ops=1", "--key-space-size=100000"},
			total: 20000, ceiling: true,
		},
		{
			name:     "range 1,000 keys",
			describe: "100 clients over 10 connections, each a linearizable Range over 1,000 keys of 256 bytes (about 270 KB a response)",
			members:  1, conns: 10, clients: 100,
			args:  []string{"range", "bench-range/", "bench-range0", "--consistency=l"},
			total: 3000, setup: putKeys("bench-range/", 1000),
		},
		{
			name:     "watch fan-out",
			describe: "1,000 watchers (10 streams × 100) on one key, then puts to it; ops/s counts events delivered",
			members:  1, conns: 10, clients: 10,
			args:      []string{"watch", "--streams=10", "--watch-per-stream=100", "--watched-key-total=1"},
			total:     2000,
			totalFlag: "--put-total",
			noLatency: true,
		},
		{
			name:     "watch latency",
			describe: "1,000 watchers (10 streams × 100) on one key, 100 puts/s of 256-byte values to it (etcd benchmark `watch-latency`); latency is from a put's response to each watcher receiving its event (0 when the event comes first), so the ratio column compares latencies (lower is better) rather than the paced throughput",
			members:  1, conns: 10, clients: 10,
			args:      []string{"watch-latency", "--streams=10", "--watchers-per-stream=100", "--put-rate=100", "--key-size=8", "--val-size=256"},
			total:     500,
			totalFlag: "--put-total",
			fixedRate: true,
		},
		{
			name:     "lease keep-alive",
			describe: "100 clients over 10 connections, each grants a lease then renews it with KeepAliveOnce (etcd benchmark `lease-keepalive`; a new LeaseKeepAlive stream per renewal)",
			members:  1, conns: 10, clients: 100,
			args:  []string{"lease-keepalive"},
			total: 20000,
		},
		{
			name:     "put, 100 clients, TLS",
			describe: "as put, 100 clients, with mutual TLS: https client and peer URLs, --client-cert-auth, the benchmark presenting a client certificate (ECDSA P-256, TLS 1.3)",
			members:  1, conns: 10, clients: 100,
			args:  []string{"put", "--key-size=8", "--val-size=256", "--key-space-size=100000"},
			total: 20000, tls: true,
		},
		{
			name:     "range, TLS",
			describe: "as range 1 key, linearizable, with mutual TLS as above",
			members:  1, conns: 10, clients: 100,
			args:  []string{"range", "bench-key", "--consistency=l"},
			total: 40000, setup: putKeys("bench-key", 1), tls: true,
		},
		{
			name:     "put, 100 clients, auth on",
			describe: "as put, 100 clients, with auth on: the benchmark authenticates as a user holding a role that grants read-write on every key (simple tokens; each request's token resolved and its permission checked)",
			members:  1, conns: 10, clients: 100,
			args:  []string{"put", "--key-size=8", "--val-size=256", "--key-space-size=100000"},
			total: 20000, auth: true,
		},
		{
			name:     "range, auth on",
			describe: "as range 1 key, linearizable, with auth on as above",
			members:  1, conns: 10, clients: 100,
			args:  []string{"range", "bench-key", "--consistency=l"},
			total: 40000, setup: putKeys("bench-key", 1), auth: true,
		},
		{
			name:     "put, 1 client, Authenticate flood",
			describe: "as put, 1 client, with auth on, while 16 other clients call Authenticate (bcrypt cost 10) back to back: password checks must not hold up writes",
			members:  1, conns: 1, clients: 1,
			args:  []string{"put", "--key-size=8", "--val-size=256", "--sequential-keys", "--key-space-size=100000"},
			total: 1500, auth: true, background: authenticateFlood(16),
		},
		{
			name:     "put, 100 clients, metrics scraped",
			describe: "as put, 100 clients, while /metrics is scraped every second (as Prometheus would, at a short interval): compare with put, 100 clients for what recording and serving metrics cost",
			members:  1, conns: 10, clients: 100,
			args:  []string{"put", "--key-size=8", "--val-size=256", "--key-space-size=100000"},
			total: 20000, background: scrapeEvery(time.Second),
		},
		{
			name:     "put, 100 clients, 3 members",
			describe: "as put, 100 clients, against a 3-member cluster on loopback, clients spread over all three endpoints",
			members:  3, conns: 10, clients: 100,
			args:  []string{"put", "--key-size=8", "--val-size=256", "--key-space-size=100000"},
			total: 10000,
		},
	}
}

// benchArgs is the benchmark tool's command line for w at the given scale,
// with pki's client certificate for a TLS row.
func (w workload) benchArgs(endpoints []string, scale float64, pki *benchPKI) []string {
	total := max(1, int(float64(w.total)*scale))
	flag := w.totalFlag
	if flag == "" {
		flag = "--total"
	}
	args := []string{
		"--endpoints=" + strings.Join(endpoints, ","),
		"--conns=" + strconv.Itoa(w.conns),
		"--clients=" + strconv.Itoa(w.clients),
		"--precise",
	}
	if pki != nil {
		args = append(args, pki.benchFlags()...)
	}
	if w.auth {
		args = append(args, "--user="+benchUser+":"+benchPassword)
	}
	args = append(args, w.args...)
	return append(args, flag+"="+strconv.Itoa(total))
}

// authenticateFlood calls Authenticate from n clients in a loop until ctx
// ends.
func authenticateFlood(n int) func(context.Context, *cluster) {
	return func(ctx context.Context, cl *cluster) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				cfg := cl.clientConfig()
				cfg.Username, cfg.Password = "", ""
				c, err := clientv3.New(cfg)
				if err != nil {
					return
				}
				defer c.Close()
				for ctx.Err() == nil {
					_, _ = c.Authenticate(ctx, benchUser, benchPassword)
				}
			})
		}
		wg.Wait()
	}
}

// scrapeEvery reads every member's /metrics once per interval until ctx
// ends, the body read to the end as Prometheus reads it.
func scrapeEvery(interval time.Duration) func(context.Context, *cluster) {
	return func(ctx context.Context, cl *cluster) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			for _, ep := range cl.endpoints {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/metrics", nil)
				if err != nil {
					return
				}
				if resp, err := http.DefaultClient.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
}

// putKeys writes n keys (or the single key prefix when n is 1) with
// 256-byte values. Keys sort in the order written, so "prefix" up to the
// prefix with its last byte incremented is exactly the n keys.
func putKeys(prefix string, n int) func(context.Context, *clientv3.Client) error {
	return func(ctx context.Context, c *clientv3.Client) error {
		if n == 1 {
			_, err := c.Put(ctx, prefix, value)
			return err
		}
		for i := 0; i < n; i += 100 {
			var ops []clientv3.Op
			for j := i; j < min(n, i+100); j++ {
				ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%06d", prefix, j), value))
			}
			if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
				return fmt.Errorf("put %s keys %d..: %w", prefix, i, err)
			}
		}
		return nil
	}
}
