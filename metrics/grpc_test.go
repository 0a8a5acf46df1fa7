package metrics

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The interceptor counts each RPC under its method and code, and each
// client version, from many goroutines at once (run with -race: the
// cached children must be safe to share).
func TestUnaryInterceptorCounts(t *testing.T) {
	m := New(true)
	info := &grpc.UnaryServerInfo{FullMethod: "/etcdserverpb.KV/Range"}
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	fail := func(context.Context, any) (any, error) { return nil, status.Error(codes.NotFound, "no") }
	v36 := metadata.NewIncomingContext(context.Background(), metadata.Pairs("client-api-version", "3.6"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = m.UnaryInterceptor(v36, nil, info, ok)
				_, _ = m.UnaryInterceptor(context.Background(), nil, info, fail)
			}
		})
	}
	wg.Wait()

	want := `
# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_code="NotFound",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 800
grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 800
# HELP etcd_server_client_requests_total The total number of client requests per client version.
# TYPE etcd_server_client_requests_total counter
etcd_server_client_requests_total{client_api_version="3.6",type="unary"} 800
etcd_server_client_requests_total{client_api_version="unknown",type="unary"} 800
# HELP grpc_server_started_total Total number of RPCs started on the server.
# TYPE grpc_server_started_total counter
grpc_server_started_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1600
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"grpc_server_handled_total", "etcd_server_client_requests_total", "grpc_server_started_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.grpc.handling); n != 1 {
		t.Fatalf("grpc_server_handling_seconds has %d series, want 1", n)
	}
}

// Groups read their source once per scrape and emit every series.
func TestGroupsReadOncePerScrape(t *testing.T) {
	m := New(false)
	reads := 0
	m.Engine(func() EngineStats {
		reads++
		return EngineStats{CompactionDebt: 7, CacheHits: 3, CacheMisses: 1, FilterUseful: 2, FilterMissed: 2}
	})
	want := `
# HELP cairn_engine_block_cache_hit_ratio The share of block cache lookups that hit since start (0 before any lookup).
# TYPE cairn_engine_block_cache_hit_ratio gauge
cairn_engine_block_cache_hit_ratio 0.75
# HELP cairn_engine_bloom_filter_checked_total Bloom filter checks, useful or not.
# TYPE cairn_engine_bloom_filter_checked_total counter
cairn_engine_bloom_filter_checked_total 4
# HELP cairn_engine_compaction_debt_bytes The storage engine's estimate of the bytes its compactions must still rewrite.
# TYPE cairn_engine_compaction_debt_bytes gauge
cairn_engine_compaction_debt_bytes 7
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"cairn_engine_block_cache_hit_ratio", "cairn_engine_bloom_filter_checked_total", "cairn_engine_compaction_debt_bytes"); err != nil {
		t.Fatal(err)
	}
	if reads != 1 {
		t.Fatalf("one scrape read the engine %d times", reads)
	}
}
