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

	LeaderChanges    prometheus.Counter
	ProposalsFailed  prometheus.Counter
	SlowApply        prometheus.Counter
	SlowReadIndexes  prometheus.Counter
	ReadIndexFailed  prometheus.Counter
	LearnerPromotes  prometheus.Counter
	HeartbeatFailed  prometheus.Counter
	ApplyDuration    prometheus.Histogram
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
	SnapshotSaves    prometheus.Histogram

	grpc *grpcMetrics
}

// etcd's buckets.
var (
	diskBuckets = prometheus.ExponentialBuckets(0.001, 2, 14) // 1 ms .. 8 s
	rttBuckets  = prometheus.ExponentialBuckets(0.0001, 2, 16)
	applyBucket = prometheus.ExponentialBuckets(0.0001, 2, 20)
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
		ApplyDuration:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cairn_server_apply_duration_seconds", Help: "The latency of applying one committed entry (Cairn's counterpart of etcd_server_apply_duration_seconds, without its labels).", Buckets: applyBucket}),
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
		SnapshotSaves:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_snap_db_save_total_duration_seconds", Help: "The total latency distributions of v3 snapshot save", Buckets: prometheus.ExponentialBuckets(0.1, 2, 10)}),
	}
	m.grpc = newGRPCMetrics(extensive)
	m.reg.MustRegister(
		m.LeaderChanges, m.ProposalsFailed, m.SlowApply, m.SlowReadIndexes, m.ReadIndexFailed, m.LearnerPromotes,
		m.HeartbeatFailed, m.ApplyDuration, m.WALFsync, m.BackendCommit, m.PeerRoundTrip, m.PeerSentBytes,
		m.PeerRecvBytes, m.PeerSentFailures, m.PeerRecvFailures, m.ClientSentBytes, m.ClientRecvBytes,
		m.MVCCPut, m.MVCCDelete, m.MVCCRange, m.MVCCTxn, m.LeaseGranted, m.LeaseRevoked,
		m.LeaseRenewed, m.SnapshotSaves,
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
