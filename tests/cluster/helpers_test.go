package cluster

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// testTimeout bounds each test's requests, far above what any needs, so a
// hung server fails the test rather than the whole package's -timeout.
const testTimeout = 90 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// clientOf is a client of the given members alone, closed when t ends.
func clientOf(t *testing.T, ms ...*testcluster.Member) *clientv3.Client {
	t.Helper()
	eps := make([]string, len(ms))
	for i, m := range ms {
		eps[i] = m.Endpoint()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// others are the members of c but the ones at the given indexes.
func others(c *testcluster.Cluster, except ...int) []*testcluster.Member {
	var out []*testcluster.Member
	for i, m := range c.Members {
		if !slices.Contains(except, i) {
			out = append(out, m)
		}
	}
	return out
}

// load writes fresh keys under prefix from several goroutines until
// stopped, and remembers every write the cluster acknowledged. Failed
// writes are expected while a member dies or an election runs; they may
// or may not have taken effect, so they are only counted.
type load struct {
	prefix string
	cli    *clientv3.Client

	mu     sync.Mutex
	acked  map[string]string
	failed int
	last   error

	stopc chan struct{}
	wg    sync.WaitGroup
}

func startLoad(t *testing.T, cli *clientv3.Client, prefix string, workers int) *load {
	l := &load{prefix: prefix, cli: cli, acked: make(map[string]string), stopc: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() { l.work(w) })
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) work(w int) {
	for seq := 0; ; seq++ {
		select {
		case <-l.stopc:
			return
		default:
		}
		k := fmt.Sprintf("%s%02d/%06d", l.prefix, w, seq)
		v := fmt.Sprintf("v%d.%d", w, seq)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := l.cli.Put(ctx, k, v)
		cancel()
		l.mu.Lock()
		if err == nil {
			l.acked[k] = v
		} else {
			l.failed++
			l.last = err
		}
		l.mu.Unlock()
		if err != nil {
			select {
			case <-l.stopc:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// stop ends the load and waits for its writers; it may be called twice.
func (l *load) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitMore waits until n more writes than now are acknowledged.
func (l *load) waitMore(t *testing.T, n int, within time.Duration) {
	t.Helper()
	start := l.count()
	deadline := time.Now().Add(within)
	for l.count() < start+n {
		if time.Now().After(deadline) {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("load: only %d of %d more writes acknowledged within %v (%d failed, last: %v)", len(l.acked)-start, n, within, l.failed, l.last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *load) snapshot() (acked map[string]string, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.acked), l.failed
}

// checkAcked fails the test unless a linearizable read of the prefix
// through cli holds every acknowledged write with its value.
func checkAcked(t *testing.T, ctx context.Context, cli *clientv3.Client, prefix string, acked map[string]string) {
	t.Helper()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("final read of %q: %v", prefix, err)
	}
	got := kvMap(resp.Kvs)
	var missing []string
	for k, v := range acked {
		if got[k] != v {
			missing = append(missing, fmt.Sprintf("%s=%s (read %q)", k, v, got[k]))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("%d of %d acknowledged writes lost, e.g. %s", len(missing), len(acked), strings.Join(missing[:min(len(missing), 10)], ", "))
	}
	t.Logf("all %d acknowledged writes present (%d keys under %q)", len(acked), len(got), prefix)
}

func kvMap(kvs []*mvccpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = string(kv.Value)
	}
	return m
}

// putN writes n keys prefix%06d through cli with the given number of
// concurrent writers, failing the test on any error.
func putN(t *testing.T, ctx context.Context, cli *clientv3.Client, prefix string, n, writers int) {
	t.Helper()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if _, err := cli.Put(ctx, fmt.Sprintf("%s%06d", prefix, i), fmt.Sprint(i)); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, fmt.Errorf("put %s%06d: %w", prefix, i, err))
					mu.Unlock()
					next.Store(int64(n)) // the others stop too
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// untilHealthy retries a membership change the leader refuses with
// "unhealthy cluster" until it has been connected to its peers long
// enough (etcd's rule, a few seconds after a start), for at most 20 s.
func untilHealthy(t *testing.T, change func() error) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		err := change()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "unhealthy cluster") {
			t.Fatal(err)
		}
	}
}
