// Package metrics owns the member's Prometheus metrics: etcd's names,
// types, labels and buckets, so that the etcd mixin's dashboards and
// alerts work unchanged, plus Cairn's own under the "cairn_" prefix.
//
// It holds a registry per member (several members may share a process in
// tests) and the collectors the other packages feed. State the member
// already keeps (leader, indexes, sizes) is read at scrape time by
// functions the server registers, so nothing on a hot path takes a lock
// for metrics; events (an fsync, a message sent, an RPC) update atomic
// counters and histograms. It never decides anything and never reads
// storage itself.
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one member's metrics.
type Metrics struct {
	reg *prometheus.Registry

	LeaderChanges   prometheus.Counter
	ProposalsFailed prometheus.Counter
	SlowApply       prometheus.Counter
	SlowReadIndexes prometheus.Counter
	ReadIndexFailed prometheus.Counter
	LearnerPromotes prometheus.Counter
	HeartbeatFailed prometheus.Counter
	// ApplyDuration is labelled version ("v3"), op (the request's name,
	// as etcd's InternalRaftRequest field: Put, Txn, LeaseGrant, ...)
	// and success.
	ApplyDuration    *prometheus.HistogramVec
	SnapshotApplying prometheus.Gauge
	WALFsync         prometheus.Histogram
	BackendCommit    prometheus.Histogram
	PeerRoundTrip    *prometheus.HistogramVec
	PeerSentBytes    *prometheus.CounterVec
	PeerRecvBytes    *prometheus.CounterVec
	PeerSentFailures *prometheus.CounterVec
	PeerRecvFailures *prometheus.CounterVec
	ClientSentBytes  prometheus.Counter
	ClientRecvBytes  prometheus.Counter
	MVCCPut          prometheus.Counter
	MVCCDelete       prometheus.Counter
	MVCCRange        prometheus.Counter
	MVCCTxn          prometheus.Counter
	LeaseGranted     prometheus.Counter
	LeaseRevoked     prometheus.Counter
	LeaseRenewed     prometheus.Counter
	// BackendSnapshot is the time a Maintenance.Snapshot stream took;
	// SnapshotDBSave the time a member took to receive and save a
	// snapshot sent by the leader.
	BackendSnapshot  prometheus.Histogram
	SnapshotDBSave   prometheus.Histogram
	ActivePeers      *prometheus.GaugeVec   // Local, Remote
	PeerDisconnects  *prometheus.CounterVec // Local, Remote
	SnapSendOK       *prometheus.CounterVec // To
	SnapSendFailed   *prometheus.CounterVec
	SnapSendInflight *prometheus.GaugeVec
	SnapSendTime     *prometheus.HistogramVec
	SnapRecvOK       *prometheus.CounterVec // From
	SnapRecvFailed   *prometheus.CounterVec
	SnapRecvInflight *prometheus.GaugeVec
	SnapRecvTime     *prometheus.HistogramVec
	// Compaction of old revisions (etcd_debugging_mvcc_db_compaction_*).
	CompactionPause prometheus.Histogram // ms, one batch
	CompactionTotal prometheus.Histogram // ms, one compaction
	CompactionLast  prometheus.Gauge     // unix seconds
	CompactionKeys  prometheus.Counter

	grpc *grpcMetrics
}

// etcd's buckets.
var (
	diskBuckets = prometheus.ExponentialBuckets(0.001, 2, 14) // 1 ms .. 8 s
	rttBuckets  = prometheus.ExponentialBuckets(0.0001, 2, 16)
	applyBucket = prometheus.ExponentialBuckets(0.0001, 2, 20)
	snapBuckets = prometheus.ExponentialBuckets(0.1, 2, 10)
)

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// New makes a member's metrics; extensive adds the per-method gRPC
// latency histograms (etcd's --metrics extensive).
func New(extensive bool) *Metrics {
	m := &Metrics{
		reg:              prometheus.NewRegistry(),
		LeaderChanges:    counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen."),
		ProposalsFailed:  counter("etcd_server_proposals_failed_total", "The total number of failed proposals seen."),
		SlowApply:        counter("etcd_server_slow_apply_total", "The total number of slow apply requests (likely overloaded from slow disk)."),
		SlowReadIndexes:  counter("etcd_server_slow_read_indexes_total", "The total number of pending read indexes not in sync with leader's or timed out read index requests."),
		ReadIndexFailed:  counter("etcd_server_read_indexes_failed_total", "The total number of failed read indexes seen."),
		LearnerPromotes:  counter("etcd_server_learner_promote_successes", "The total number of successful learner promotions while this member is leader."),
		HeartbeatFailed:  counter("etcd_server_heartbeat_send_failures_total", "The total number of leader heartbeat send failures (likely overloaded from slow disk)."),
		ApplyDuration:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etcd_server_apply_duration_seconds", Help: "The latency distributions of v2 apply called by backend.", Buckets: applyBucket}, []string{"version", "op", "success"}),
		SnapshotApplying: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_snapshot_apply_in_progress_total", Help: "1 if the server is applying the incoming snapshot. 0 if none."}),
		WALFsync:         prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_wal_fsync_duration_seconds", Help: "The latency distributions of fsync called by WAL.", Buckets: diskBuckets}),
		BackendCommit:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_backend_commit_duration_seconds", Help: "The latency distributions of commit called by backend.", Buckets: diskBuckets}),
		PeerRoundTrip:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etcd_network_peer_round_trip_time_seconds", Help: "Round-Trip-Time histogram between peers", Buckets: rttBuckets}, []string{"To"}),
		PeerSentBytes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_peer_sent_bytes_total", Help: "The total number of bytes sent to peers."}, []string{"To"}),
		PeerRecvBytes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_peer_received_bytes_total", Help: "The total number of bytes received from peers."}, []string{"From"}),
		PeerSentFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_peer_sent_failures_total", Help: "The total number of send failures from peers."}, []string{"To"}),
		PeerRecvFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_peer_received_failures_total", Help: "The total number of receive failures from peers."}, []string{"From"}),
		ClientSentBytes:  counter("etcd_network_client_grpc_sent_bytes_total", "The total number of bytes sent to grpc clients."),
		ClientRecvBytes:  counter("etcd_network_client_grpc_received_bytes_total", "The total number of bytes received from grpc clients."),
		MVCCPut:          counter("etcd_mvcc_put_total", "Total number of puts seen by this member."),
		MVCCDelete:       counter("etcd_mvcc_delete_total", "Total number of deletes seen by this member."),
		MVCCRange:        counter("etcd_mvcc_range_total", "Total number of ranges seen by this member."),
		MVCCTxn:          counter("etcd_mvcc_txn_total", "Total number of txns seen by this member."),
		LeaseGranted:     counter("etcd_debugging_lease_granted_total", "The total number of granted leases."),
		LeaseRevoked:     counter("etcd_debugging_lease_revoked_total", "The total number of revoked leases."),
		LeaseRenewed:     counter("etcd_debugging_lease_renewed_total", "The number of renewed leases seen by the leader."),
		BackendSnapshot:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_backend_snapshot_duration_seconds", Help: "The latency distribution of backend snapshots.", Buckets: prometheus.ExponentialBuckets(.01, 2, 17)}),
		SnapshotDBSave:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_snap_db_save_total_duration_seconds", Help: "The total latency distributions of v3 snapshot save", Buckets: snapBuckets}),
		ActivePeers:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_network_active_peers", Help: "The current number of active peer connections."}, []string{"Local", "Remote"}),
		PeerDisconnects:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_disconnected_peers_total", Help: "The total number of disconnected peers."}, []string{"Local", "Remote"}),
		SnapSendOK:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_snapshot_send_success", Help: "Total number of successful snapshot sends"}, []string{"To"}),
		SnapSendFailed:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_snapshot_send_failures", Help: "Total number of snapshot send failures"}, []string{"To"}),
		SnapSendInflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_network_snapshot_send_inflights_total", Help: "Total number of inflight snapshot sends"}, []string{"To"}),
		SnapSendTime:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etcd_network_snapshot_send_total_duration_seconds", Help: "Total latency distributions of v3 snapshot sends", Buckets: snapBuckets}, []string{"To"}),
		SnapRecvOK:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_snapshot_receive_success", Help: "Total number of successful snapshot receives"}, []string{"From"}),
		SnapRecvFailed:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_snapshot_receive_failures", Help: "Total number of snapshot receive failures"}, []string{"From"}),
		SnapRecvInflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_network_snapshot_receive_inflights_total", Help: "Total number of inflight snapshot receives"}, []string{"From"}),
		SnapRecvTime:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etcd_network_snapshot_receive_total_duration_seconds", Help: "Total latency distributions of v3 snapshot receives", Buckets: snapBuckets}, []string{"From"}),
		CompactionPause:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds", Help: "Bucketed histogram of db compaction pause duration.", Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
		CompactionTotal:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds", Help: "Bucketed histogram of db compaction total duration.", Buckets: prometheus.ExponentialBuckets(100, 2, 14)}),
		CompactionLast:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_debugging_mvcc_db_compaction_last", Help: "The unix time of the last db compaction. Resets to 0 on start."}),
		CompactionKeys:   counter("etcd_debugging_mvcc_db_compaction_keys_total", "Total number of db keys compacted."),
	}
	m.grpc = newGRPCMetrics(extensive)
	m.reg.MustRegister(
		m.LeaderChanges, m.ProposalsFailed, m.SlowApply, m.SlowReadIndexes, m.ReadIndexFailed, m.LearnerPromotes,
		m.HeartbeatFailed, m.ApplyDuration, m.WALFsync, m.BackendCommit, m.PeerRoundTrip, m.PeerSentBytes,
		m.PeerRecvBytes, m.PeerSentFailures, m.PeerRecvFailures, m.ClientSentBytes, m.ClientRecvBytes,
		m.MVCCPut, m.MVCCDelete, m.MVCCRange, m.MVCCTxn, m.LeaseGranted, m.LeaseRevoked,
		m.LeaseRenewed, m.SnapshotApplying, m.BackendSnapshot, m.SnapshotDBSave, m.ActivePeers, m.PeerDisconnects,
		m.SnapSendOK, m.SnapSendFailed, m.SnapSendInflight, m.SnapSendTime,
		m.SnapRecvOK, m.SnapRecvFailed, m.SnapRecvInflight, m.SnapRecvTime,
		m.CompactionPause, m.CompactionTotal, m.CompactionLast, m.CompactionKeys,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	m.grpc.register(m.reg)
	return m
}

// Gauge registers a gauge read at scrape time from f (state the member
// keeps anyway: nothing on a hot path updates it).
func (m *Metrics) Gauge(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Counter registers a counter read at scrape time from f.
func (m *Metrics) Counter(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// Info registers a gauge of value 1 with one label, as etcd's
// etcd_server_version{server_version="3.7.3"}.
func (m *Metrics) Info(name, help, label, value string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{label})
	g.WithLabelValues(value).Set(1)
	m.reg.MustRegister(g)
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the member's registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ID formats a member ID as etcd labels it (hex, no padding).
func ID(id uint64) string { return strconv.FormatUint(id, 16) }
