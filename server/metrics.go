package server

import (
	"time"

	"go.etcd.io/etcd/api/v3/version"

	"github.com/cairnkv/cairn/metrics"
)

// slowApply is etcd's threshold for etcd_server_slow_apply_total and its
// "apply request took too long" warning.
const slowApply = 100 * time.Millisecond

// registerMetrics adds the gauges read at scrape time from state the
// member keeps anyway.
func (s *Server) registerMetrics() {
	m := s.metrics
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m.Gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", func() float64 { return b2f(s.node.Lead() != 0) })
	m.Gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", func() float64 { return b2f(s.node.Lead() == s.info.MemberID) })
	m.Gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.", func() float64 { return b2f(s.IsLearner()) })
	m.Gauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.", func() float64 { return float64(s.node.CommitIndex()) })
	m.Gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.", func() float64 { return float64(s.store.AppliedIndex()) })
	m.Gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.", func() float64 { return float64(s.pendingProposals.Load()) })
	m.Gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.", func() float64 { return float64(s.cfg.QuotaBackendBytes) })
	m.Gauge("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.", func() float64 { onDisk, _ := s.eng.Size(); return float64(onDisk) })
	m.Gauge("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.", func() float64 { _, live := s.eng.Size(); return float64(live) })
	m.Gauge("etcd_debugging_mvcc_current_revision", "The current revision of store.", func() float64 { return float64(s.store.Rev()) })
	m.Gauge("etcd_server_id", "Cairn: this member's ID (the label of etcd's etcd_server_id).", func() float64 { return float64(s.info.MemberID) })
	m.Info("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", "server_version", version.Version)
	m.Info("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label with current cluster version", "cluster_version", version.Cluster(version.Version))
	m.Counter("cairn_audit_lines_dropped_total", "Audit log lines dropped because the audit writer could not keep up.", func() float64 { return float64(s.audit.Dropped()) })
}

// observeApply records an applied entry's duration, counting it slow
// past etcd's 100 ms.
func (s *Server) observeApply(start time.Time) {
	d := time.Since(start)
	s.metrics.ApplyDuration.Observe(d.Seconds())
	if d > slowApply {
		s.metrics.SlowApply.Inc()
	}
}

// peerObserver feeds the transport's events to the peer metrics.
type peerObserver struct{ m *metrics.Metrics }

func (o peerObserver) Sent(to uint64, n int) {
	o.m.PeerSentBytes.WithLabelValues(metrics.ID(to)).Add(float64(n))
}

func (o peerObserver) Received(from uint64, n int) {
	o.m.PeerRecvBytes.WithLabelValues(metrics.ID(from)).Add(float64(n))
}

func (o peerObserver) SendFailed(to uint64) {
	o.m.PeerSentFailures.WithLabelValues(metrics.ID(to)).Inc()
}

func (o peerObserver) ReceiveFailed(from uint64) {
	o.m.PeerRecvFailures.WithLabelValues(metrics.ID(from)).Inc()
}

func (o peerObserver) RoundTrip(to uint64, d time.Duration) {
	o.m.PeerRoundTrip.WithLabelValues(metrics.ID(to)).Observe(d.Seconds())
}
