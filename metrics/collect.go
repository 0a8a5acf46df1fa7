package metrics

import "github.com/prometheus/client_golang/prometheus"

// A group is several metrics read together at scrape time from one call
// (one engine metrics read, one pass over the watch hub under its lock),
// so a scrape costs the source one read however many series it feeds.
type group struct {
	descs []*prometheus.Desc
	types []prometheus.ValueType
	read  func() []float64
}

func (g *group) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range g.descs {
		ch <- d
	}
}

func (g *group) Collect(ch chan<- prometheus.Metric) {
	vals := g.read()
	for i, d := range g.descs {
		ch <- prometheus.MustNewConstMetric(d, g.types[i], vals[i])
	}
}

// EngineStats are the storage engine's figures Cairn exports.
type EngineStats struct {
	// CompactionDebt is the engine's estimate of the bytes its own
	// compactions must still rewrite to reach a healthy shape.
	CompactionDebt uint64
	// Block cache lookups that hit and missed.
	CacheHits, CacheMisses int64
	// Bloom filter checks that spared a block read (useful) and those
	// that did not.
	FilterUseful, FilterMissed int64
}

// Engine registers the cairn_engine_* metrics, read from f at scrape time.
func (m *Metrics) Engine(f func() EngineStats) {
	g := &group{
		descs: []*prometheus.Desc{
			prometheus.NewDesc("cairn_engine_compaction_debt_bytes", "The storage engine's estimate of the bytes its compactions must still rewrite.", nil, nil),
			prometheus.NewDesc("cairn_engine_block_cache_hits_total", "Block cache lookups that found the block.", nil, nil),
			prometheus.NewDesc("cairn_engine_block_cache_misses_total", "Block cache lookups that had to read the block.", nil, nil),
			prometheus.NewDesc("cairn_engine_block_cache_hit_ratio", "The share of block cache lookups that hit since start (0 before any lookup).", nil, nil),
			prometheus.NewDesc("cairn_engine_bloom_filter_useful_total", "Bloom filter checks that spared a block read.", nil, nil),
			prometheus.NewDesc("cairn_engine_bloom_filter_checked_total", "Bloom filter checks, useful or not.", nil, nil),
		},
		types: []prometheus.ValueType{prometheus.GaugeValue, prometheus.CounterValue, prometheus.CounterValue,
			prometheus.GaugeValue, prometheus.CounterValue, prometheus.CounterValue},
		read: func() []float64 {
			s := f()
			ratio := 0.0
			if n := s.CacheHits + s.CacheMisses; n > 0 {
				ratio = float64(s.CacheHits) / float64(n)
			}
			return []float64{float64(s.CompactionDebt), float64(s.CacheHits), float64(s.CacheMisses), ratio,
				float64(s.FilterUseful), float64(s.FilterUseful + s.FilterMissed)}
		},
	}
	m.reg.MustRegister(g)
}

// WatchStats are the watch hub's counts.
type WatchStats struct {
	Streams, Watchers, Slow, Batching int
	Events                            int64
}

// Watch registers etcd's watch metrics and cairn_watch_batching, read
// from f at scrape time.
func (m *Metrics) Watch(f func() WatchStats) {
	g := &group{
		descs: []*prometheus.Desc{
			prometheus.NewDesc("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.", nil, nil),
			prometheus.NewDesc("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", nil, nil),
			prometheus.NewDesc("etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.", nil, nil),
			prometheus.NewDesc("etcd_debugging_mvcc_events_total", "Total number of events sent by this member.", nil, nil),
			prometheus.NewDesc("cairn_watch_batching", "The number of watch streams in batching mode: their client cannot keep up, so they get fewer, fuller responses.", nil, nil),
		},
		types: []prometheus.ValueType{prometheus.GaugeValue, prometheus.GaugeValue, prometheus.GaugeValue,
			prometheus.CounterValue, prometheus.GaugeValue},
		read: func() []float64 {
			s := f()
			return []float64{float64(s.Streams), float64(s.Watchers), float64(s.Slow), float64(s.Events), float64(s.Batching)}
		},
	}
	m.reg.MustRegister(g)
}
