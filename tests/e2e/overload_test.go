package e2e

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// The overload tests put one member under what a misbehaving or merely
// enthusiastic client does (many watchers, connection churn, a stream
// nobody reads, a hundred megabytes of requests in flight) while another
// client keeps making linearizable reads. They assert generous bounds
// (a read within 5 s, RSS within +200 MiB of where it started) and log
// the measured figures, which docs/ROBUSTNESS.md reports.

const (
	overloadReadBound = 5 * time.Second
	overloadRSSBound  = 200 << 10 // KiB
	pendingRSSBound   = 1 << 20   // KiB, for 200 MiB of puts
)

// readProbe makes a linearizable Get through its own client every 20 ms
// until stopped, recording the latencies.
type readProbe struct {
	cli   *clientv3.Client
	stopc chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	lat   []time.Duration
	errs  int
	first error
}

func startReadProbe(t *testing.T, m *testcluster.Member) *readProbe {
	p := &readProbe{cli: m.Client(t), stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stopc:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 4*overloadReadBound)
			start := time.Now()
			_, err := p.cli.Get(ctx, "probe")
			took := time.Since(start)
			cancel()
			p.mu.Lock()
			if err != nil {
				p.errs++
				if p.first == nil {
					p.first = err
				}
			}
			p.lat = append(p.lat, took)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *readProbe) stop() {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
}

// check stops the probe, logs its figures and fails the test if a read
// failed or took longer than the bound.
func (p *readProbe) check(t *testing.T, what string, bound time.Duration) {
	t.Helper()
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lat) == 0 {
		t.Fatalf("%s: the probe made no read", what)
	}
	s := slices.Clone(p.lat)
	slices.Sort(s)
	q := func(f float64) time.Duration {
		return s[min(len(s)-1, int(f*float64(len(s))))].Round(100 * time.Microsecond)
	}
	t.Logf("%s: linearizable reads by another client: %d, p50 %v, p99 %v, max %v, %d failed", what, len(s), q(0.5), q(0.99), s[len(s)-1].Round(100*time.Microsecond), p.errs)
	if p.errs > 0 {
		t.Errorf("%s: %d probe reads failed, first: %v", what, p.errs, p.first)
	}
	if s[len(s)-1] > bound {
		t.Errorf("%s: a linearizable read took %v (bound %v)", what, s[len(s)-1], bound)
	}
}

// checkMemory logs the member's RSS and peak against the baseline and
// fails if the peak grew past bound KiB.
func checkMemory(t *testing.T, m *testcluster.Member, what string, baseRSS, bound int64) {
	t.Helper()
	rss, hwm := testcluster.ProcStatusKiB(t, m.PID(), "VmRSS"), testcluster.ProcStatusKiB(t, m.PID(), "VmHWM")
	t.Logf("%s: server RSS %d MiB before, %d MiB after, peak (VmHWM) %d MiB", what, baseRSS>>10, rss>>10, hwm>>10)
	if hwm-baseRSS > bound {
		t.Errorf("%s: peak RSS %d MiB is more than %d MiB over the %d MiB before", what, hwm>>10, bound>>10, baseRSS>>10)
	}
}

func dialRaw(t *testing.T, m *testcluster.Member, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(m.Endpoint(), "http://"), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// watchersOn opens streams Watch streams on conns (round robin) with
// perStream watchers each on the prefix, creating them all before
// reading any answer, and waits for every creation.
func watchersOn(t *testing.T, ctx context.Context, conns []*grpc.ClientConn, streams, perStream int, prefix string) []pb.Watch_WatchClient {
	t.Helper()
	wss := make([]pb.Watch_WatchClient, streams)
	for i := range wss {
		ws, err := pb.NewWatchClient(conns[i%len(conns)]).Watch(ctx, grpc.MaxCallRecvMsgSize(math.MaxInt32))
		if err != nil {
			t.Fatal(err)
		}
		wss[i] = ws
	}
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for _, ws := range wss {
		wg.Go(func() {
			go func() {
				for range perStream {
					req := &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
						Key: []byte(prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(prefix))}}}
					if err := ws.Send(req); err != nil {
						return
					}
				}
			}()
			for created := 0; created < perStream; created++ {
				resp, err := ws.Recv()
				if err != nil {
					errs <- fmt.Errorf("after %d creations: %w", created, err)
					return
				}
				if !resp.Created || resp.Canceled {
					errs <- fmt.Errorf("create response %+v", resp)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return wss
}

// countEvents reads from every stream until each watcher on it has seen
// every one of the revisions (first..last), exactly once and in order.
func countEvents(t *testing.T, wss []pb.Watch_WatchClient, perStream int, first, last int64) int {
	t.Helper()
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(wss))
	want := int(last - first + 1)
	for _, ws := range wss {
		wg.Go(func() {
			next := map[int64]int64{}
			done := 0
			for done < perStream {
				resp, err := ws.Recv()
				if err != nil {
					errs <- err
					return
				}
				for _, ev := range resp.Events {
					n, ok := next[resp.WatchId]
					if !ok {
						n = first
					}
					if ev.Kv.ModRevision != n {
						errs <- fmt.Errorf("watch %d: event at revision %d, want %d", resp.WatchId, ev.Kv.ModRevision, n)
						return
					}
					next[resp.WatchId] = n + 1
					total.Add(1)
					if n == last {
						done++
					}
				}
			}
			if len(next) != perStream {
				errs <- fmt.Errorf("%d watchers had events, want %d", len(next), perStream)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if got := int(total.Load()); got != want*perStream*len(wss) {
		t.Fatalf("%d events, want %d", got, want*perStream*len(wss))
	}
	return int(total.Load())
}

// TestOverloadTenThousandWatchers: 10,000 watchers on one stream, then
// 10,000 more spread over 100 streams on 10 connections, all on one
// prefix; 10 puts make 200,000 events. Every watcher gets every event in
// order, and another client's reads stay fast.
func TestOverloadTenThousandWatchers(t *testing.T) {
	m, cli, ctx := start(t)
	base := testcluster.ProcStatusKiB(t, m.PID(), "VmRSS")
	probe := startReadProbe(t, m)

	began := time.Now()
	one := watchersOn(t, ctx, []*grpc.ClientConn{dialRaw(t, m)}, 1, 10_000, "w/")
	oneTook := time.Since(began)
	var conns []*grpc.ClientConn
	for range 10 {
		conns = append(conns, dialRaw(t, m))
	}
	began = time.Now()
	spread := watchersOn(t, ctx, conns, 100, 100, "w/")
	spreadTook := time.Since(began)

	first := rev(t, ctx, cli) + 1
	for i := range 10 {
		put(t, ctx, cli, fmt.Sprintf("w/%d", i), "v")
	}
	last := first + 9
	began = time.Now()
	n := countEvents(t, one, 10_000, first, last) + countEvents(t, spread, 100, first, last)
	t.Logf("10,000 watchers created on one stream in %v, 10,000 on 100 streams in %v; %d events delivered in %v",
		oneTook.Round(time.Millisecond), spreadTook.Round(time.Millisecond), n, time.Since(began).Round(time.Millisecond))
	probe.check(t, "20,000 watchers", overloadReadBound)
	checkMemory(t, m, "20,000 watchers", base, overloadRSSBound)
}

// TestOverloadUnreadWatchStreams: six watch streams that never read, on
// connections with gRPC's smallest windows, while 32 MiB are written
// under their prefix. Writers and other readers are not held up, the
// server does not buffer the backlog without bound (six copies would be
// 192 MiB; measured, each unread stream costs about 5 MiB over the
// store's own growth), and once read every stream has every event, in
// order.
func TestOverloadUnreadWatchStreams(t *testing.T) {
	const unreadStreams = 6
	m, cli, ctx := start(t)
	base := testcluster.ProcStatusKiB(t, m.PID(), "VmRSS")
	firstRev := rev(t, ctx, cli) + 1
	var wss []pb.Watch_WatchClient
	for range unreadStreams {
		ws := slowWatchStream(t, ctx, m)
		createWatch(t, ws, &pb.WatchCreateRequest{Key: []byte("u/"), RangeEnd: []byte("u0"), StartRevision: firstRev})
		wss = append(wss, ws)
	}
	probe := startReadProbe(t, m)
	const puts, size = 256, 128 << 10
	val := strings.Repeat("u", size)
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		fail atomic.Value
	)
	began := time.Now()
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= puts {
					return
				}
				if _, err := cli.Put(ctx, fmt.Sprintf("u/%04d", i), val); err != nil {
					fail.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := fail.Load().(error); err != nil {
		t.Fatalf("put while watchers do not read: %v", err)
	}
	t.Logf("%d puts of %d KiB (%d MiB) in %v while %d watch streams were not read", puts, size>>10, puts*size>>20, time.Since(began).Round(time.Millisecond), unreadStreams)
	probe.check(t, "unread watch streams", overloadReadBound)
	checkMemory(t, m, "unread watch streams", base, overloadRSSBound)
	head := rev(t, ctx, cli)
	for i, ws := range wss {
		for r := firstRev; r <= head; {
			resp, err := ws.Recv()
			if err != nil {
				t.Fatalf("stream %d after revision %d: %v", i, r-1, err)
			}
			if resp.Canceled || resp.CompactRevision != 0 {
				t.Fatalf("stream %d canceled at %d: %+v", i, r, resp)
			}
			for _, ev := range resp.Events {
				if ev.Kv.ModRevision != r || len(ev.Kv.Value) != size {
					t.Fatalf("stream %d: event at %d (%d bytes), want %d", i, ev.Kv.ModRevision, len(ev.Kv.Value), r)
				}
				r++
			}
		}
	}
}

// TestOverloadConnectionChurn: 1,000 gRPC connections that each make a
// request and close, 25 at a time, and 1,000 TCP connections that close
// without a word. The server's open descriptors come back to where they
// were, and another client's reads stay fast.
func TestOverloadConnectionChurn(t *testing.T) {
	m, _, _ := start(t)
	pid := m.PID()
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Skipf("no /proc: %v", err)
		}
		return len(ents)
	}
	base, baseFDs := testcluster.ProcStatusKiB(t, pid, "VmRSS"), fds()
	probe := startReadProbe(t, m)
	addr := strings.TrimPrefix(m.Endpoint(), "http://")
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	began := time.Now()
	for range 25 {
		wg.Go(func() {
			for next.Add(1) <= 1000 {
				cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
				if err == nil {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err = cli.Get(ctx, "churn")
					cancel()
					cli.Close()
				}
				if err != nil {
					failed.Add(1)
				}
				if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
					c.Close()
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of 2,000 connections or their requests failed", n)
	}
	var nowFDs int
	deadline := time.Now().Add(10 * time.Second)
	for nowFDs = fds(); nowFDs > baseFDs+10 && time.Now().Before(deadline); nowFDs = fds() {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("1,000 client connections with a request and 1,000 bare TCP connections in %v; server descriptors %d before, %d after", took.Round(time.Millisecond), baseFDs, nowFDs)
	if nowFDs > baseFDs+10 {
		t.Errorf("the server holds %d descriptors, %d before the churn: connections leak", nowFDs, baseFDs)
	}
	probe.check(t, "connection churn", overloadReadBound)
	checkMemory(t, m, "connection churn", base, overloadRSSBound)
}

// TestOverloadPendingRequests: 100 clients each keep a 1 MiB put in
// flight, twice over: 100 MiB pending at once, 200 MiB in all. Another
// client's reads stay fast, memory stays bounded, and every acknowledged
// put reads back whole.
func TestOverloadPendingRequests(t *testing.T) {
	m, cli, ctx := start(t, "--quota-backend-bytes=4294967296")
	base := testcluster.ProcStatusKiB(t, m.PID(), "VmRSS")
	clis := make([]*clientv3.Client, 10)
	for i := range clis {
		clis[i] = m.Client(t)
	}
	probe := startReadProbe(t, m)
	const writers, rounds, size = 100, 2, 1 << 20
	valueOf := func(w, r int) string {
		return strings.Repeat(string(rune('a'+(w+r)%26)), size-8) + fmt.Sprintf("%04d%04d", w, r)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[string]int64{}
		fails []error
	)
	began := time.Now()
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				k := fmt.Sprintf("p/%03d/%d", w, r)
				resp, err := clis[w%len(clis)].Put(ctx, k, valueOf(w, r))
				mu.Lock()
				if err != nil {
					fails = append(fails, err)
				} else {
					acked[k] = resp.Header.Revision
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	// A linearizable read waits for the apply loop to reach its read
	// index, behind up to 100 MiB of puts: alone, 2.2 s at most here
	// (etcd 3.7.3: 1.3 s); beside the other e2e tests on two cores, 4.5 s.
	probe.check(t, "100 MiB of pending puts", 2*overloadReadBound)
	// Each put is held as its request, its raft entry (kept in raft's
	// in-memory log until the next snapshot, as etcd keeps it) and in the
	// engine's memtable: etcd 3.7.3 peaks at about 890 MiB here, Cairn at
	// about 790 MiB. The bound is for a leak, not for that.
	checkMemory(t, m, "100 MiB of pending puts", base, pendingRSSBound)
	t.Logf("%d puts of 1 MiB, %d in flight, in %v: %d acknowledged, %d failed", writers*rounds, writers, took.Round(time.Millisecond), len(acked), len(fails))
	if len(fails) > 0 {
		t.Errorf("%d puts failed, first: %v", len(fails), fails[0])
	}
	for w := range writers {
		for r := range rounds {
			k := fmt.Sprintf("p/%03d/%d", w, r)
			if _, ok := acked[k]; !ok {
				continue
			}
			resp := get(t, ctx, cli, k)
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != valueOf(w, r) || resp.Kvs[0].ModRevision != acked[k] {
				t.Fatalf("acknowledged put %s (revision %d) does not read back whole", k, acked[k])
			}
		}
	}
}

// sizeLimitResults is what a server answers past its size limits, for
// comparing Cairn with etcd.
type sizeLimitResults struct {
	overRequestBytes, overGRPCLimit, overClientRecv error
	streamsBlocked                                  error // a unary call past --max-concurrent-streams
	streamsFreed                                    error // the same once a stream closed
	otherConn                                       error // on another connection meanwhile
}

func sizeLimits(t *testing.T, m *testcluster.Member) sizeLimitResults {
	ctx := testContext(t)
	var r sizeLimitResults
	cli := m.Client(t)
	_, r.overRequestBytes = cli.Put(ctx, "big", strings.Repeat("x", 4096))
	_, r.overGRPCLimit = cli.Put(ctx, "huge", strings.Repeat("x", 2048+512*1024+1))
	for i := range 3 {
		put(t, ctx, cli, fmt.Sprintf("r/%d", i), strings.Repeat("r", 2000))
	}
	small, err := clientv3.New(clientv3.Config{Endpoints: []string{m.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), MaxCallRecvMsgSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	_, r.overClientRecv = small.Get(ctx, "r/", clientv3.WithPrefix())

	// --max-concurrent-streams=3: three open watch streams fill the
	// connection; a unary call (a stream too, in HTTP/2) waits for one.
	conn := dialRaw(t, m)
	kv := pb.NewKVClient(conn)
	if _, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("r/0")}); err != nil {
		t.Fatal(err)
	}
	var cancels []context.CancelFunc
	for range 3 {
		wctx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		ws, err := pb.NewWatchClient(conn).Watch(wctx)
		if err != nil {
			t.Fatal(err)
		}
		createWatch(t, ws, &pb.WatchCreateRequest{Key: []byte("r/")})
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	_, r.streamsBlocked = kv.Range(short, &pb.RangeRequest{Key: []byte("r/0")})
	cancel()
	_, r.otherConn = pb.NewKVClient(dialRaw(t, m)).Range(ctx, &pb.RangeRequest{Key: []byte("r/0")})
	cancels[0]()
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	_, r.streamsFreed = kv.Range(short, &pb.RangeRequest{Key: []byte("r/0")})
	cancel()
	for _, c := range cancels {
		c()
	}
	return r
}

// TestOverloadSizeLimitsAndStreamsMatchEtcd runs the same requests against
// Cairn and etcd 3.7.3 with --max-request-bytes=2048 and
// --max-concurrent-streams=3 and compares the answers: a request over
// --max-request-bytes is etcd's "etcdserver: request is too large", one
// over gRPC's receive limit (the request limit plus 512 KiB) is gRPC's
// ResourceExhausted with the same sizes, a response over the client's
// receive limit is the client's own ResourceExhausted, and past the
// stream limit a call waits on its connection (not on another) until a
// stream closes.
func TestOverloadSizeLimitsAndStreamsMatchEtcd(t *testing.T) {
	t.Parallel()
	flags := []string{"--max-request-bytes=2048", "--max-concurrent-streams=3"}
	got := sizeLimits(t, testcluster.NewMember(t, testcluster.Config{Flags: flags}))
	check := func(name string, err error, code codes.Code, msg *regexp.Regexp) {
		t.Helper()
		c, m := errCodeMsg(err)
		if err == nil || c != code || !msg.MatchString(m) {
			t.Errorf("%s: got %v %q (%v); want %v matching %q", name, c, m, err, code, msg)
		}
	}
	check("over --max-request-bytes", got.overRequestBytes, codes.InvalidArgument, regexp.MustCompile("^"+regexp.QuoteMeta(status.Convert(rpctypes.ErrGRPCRequestTooLarge).Message())+"$"))
	check("over the gRPC receive limit", got.overGRPCLimit, codes.ResourceExhausted, regexp.MustCompile(`^grpc: received message larger than max \(\d+ vs\. 526336\)$`))
	check("over the client's receive limit", got.overClientRecv, codes.ResourceExhausted, regexp.MustCompile(`^grpc: received message larger than max \(\d+ vs\. 4096\)$`))
	check("past --max-concurrent-streams", got.streamsBlocked, codes.DeadlineExceeded, regexp.MustCompile(`context deadline exceeded`))
	if got.otherConn != nil || got.streamsFreed != nil {
		t.Errorf("another connection: %v; the same once a stream closed: %v; want both served", got.otherConn, got.streamsFreed)
	}
	if testcluster.Reference() {
		return
	}
	ref := sizeLimits(t, testcluster.NewMember(t, testcluster.Config{Flags: flags, Binary: testcluster.EtcdBinary(t)}))
	for _, c := range []struct {
		name      string
		cairn, ed error
	}{
		{"over --max-request-bytes", got.overRequestBytes, ref.overRequestBytes},
		{"over the gRPC receive limit", got.overGRPCLimit, ref.overGRPCLimit},
		{"over the client's receive limit", got.overClientRecv, ref.overClientRecv},
		{"past --max-concurrent-streams", got.streamsBlocked, ref.streamsBlocked},
		{"another connection", got.otherConn, ref.otherConn},
		{"once a stream closed", got.streamsFreed, ref.streamsFreed},
	} {
		gc, gm := errCodeMsg(c.cairn)
		ec, em := errCodeMsg(c.ed)
		if c.name == "over the client's receive limit" {
			// The size is the response's, whose header IDs differ in length.
			re := regexp.MustCompile(`\(\d+ vs`)
			gm, em = re.ReplaceAllString(gm, "(N vs"), re.ReplaceAllString(em, "(N vs")
		}
		if (c.cairn == nil) != (c.ed == nil) || gc != ec || gm != em {
			t.Errorf("%s: Cairn %v %q; etcd %v %q", c.name, gc, gm, ec, em)
		} else {
			t.Logf("%s: %v %q, as etcd", c.name, gc, gm)
		}
	}
}
