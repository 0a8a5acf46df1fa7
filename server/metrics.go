package server

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/reflect/protoreflect"

	"go.etcd.io/etcd/api/v3/version"

	"github.com/cairnkv/cairn/apply"
	"github.com/cairnkv/cairn/metrics"
	"github.com/cairnkv/cairn/storage"
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
	m.Info("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", "server_id", metrics.ID(s.info.MemberID))
	m.Info("etcd_server_go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.", "server_go_version", runtime.Version())
	m.Gauge("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store.", func() float64 { return float64(s.store.CompactRev()) })

	m.Counter("cairn_wal_bytes_written_total", "The total number of bytes written to the write-ahead log.", func() float64 { return float64(s.node.WALBytes()) })
	// etcd's name for the same figure (a gauge in etcd).
	m.Gauge("etcd_disk_wal_write_bytes_total", "Total number of bytes written in WAL.", func() float64 { return float64(s.node.WALBytes()) })
	m.Gauge("etcd_debugging_auth_revision", "The current revision of auth store.", func() float64 { return float64(s.auth.Revision()) })
	m.Gauge("os_fd_used", "The number of used file descriptors.", func() float64 { return float64(fdUsed()) })
	m.Gauge("os_fd_limit", "The file descriptor limit.", func() float64 { return float64(fdLimit()) })
	if sr, ok := s.eng.(storage.StatsReporter); ok {
		m.Engine(func() metrics.EngineStats {
			st := sr.Stats()
			return metrics.EngineStats{CompactionDebt: st.CompactionDebt, CacheHits: st.CacheHits, CacheMisses: st.CacheMisses,
				FilterUseful: st.FilterUseful, FilterMissed: st.FilterMissed}
		})
	}
	m.Watch(func() metrics.WatchStats {
		w := s.store.WatchStats()
		return metrics.WatchStats{Streams: w.Streams, Watchers: w.Watchers, Slow: w.Slow, Batching: w.Batching, Events: w.Events}
	})
	s.store.SetCompactionObserver(compactionObserver{s.metrics})
	m.Info("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", "server_version", version.Version)
	m.Info("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label with current cluster version", "cluster_version", version.Cluster(version.Version))
	m.Counter("cairn_audit_lines_dropped_total", "Audit log lines dropped because the audit writer could not keep up.", func() float64 { return float64(s.audit.Dropped()) })
}

// observeApply records an applied entry's duration under its request's
// name, counting it slow past etcd's 100 ms and logging it then with the
// request's type and key (never its value). Alarms raised and cleared
// are logged here too: the applier has no logger.
func (s *Server) observeApply(req *pb.InternalRaftRequest, res *apply.Result, start time.Time) {
	d := time.Since(start)
	op := opName(req)
	ok := res == nil || res.Err == nil
	s.applyObserver(op, ok).Observe(d.Seconds())
	if d > slowApply {
		s.metrics.SlowApply.Inc()
		s.lg.Warn("apply request took too long", "took", d, "expected-duration", slowApply, "request", op, "key", requestKey(req))
	}
	if a := req.GetAlarm(); a != nil && ok && a.GetAction() != pb.AlarmRequest_GET {
		if a.GetAction() == pb.AlarmRequest_ACTIVATE {
			s.lg.Warn("alarm raised", "alarm", a.GetAlarm().String(), "from", fmt.Sprintf("%x", a.GetMemberID()))
		} else {
			s.lg.Warn("alarm disarmed", "alarm", a.GetAlarm().String(), "from", fmt.Sprintf("%x", a.GetMemberID()))
		}
	}
}

// slowFsync is etcd's threshold for its "slow fdatasync" warning.
const slowFsync = time.Second

// observeWALSync records a WAL fsync, warning when it was slow.
func (s *Server) observeWALSync(d time.Duration) {
	s.metrics.WALFsync.Observe(d.Seconds())
	if d > slowFsync {
		s.lg.Warn("slow fdatasync", "took", d, "expected-duration", slowFsync)
	}
}

// applyObserver is the apply-duration histogram of op and outcome,
// looked up in the vector once: the apply loop is its only caller, so
// the cache needs no lock and no applied entry pays a vector lookup.
func (s *Server) applyObserver(op string, ok bool) prometheus.Observer {
	k := applyKey{op, ok}
	o, found := s.applyObs[k]
	if !found {
		if s.applyObs == nil {
			s.applyObs = map[applyKey]prometheus.Observer{}
		}
		o = s.metrics.ApplyDuration.WithLabelValues("v3", op, strconv.FormatBool(ok))
		s.applyObs[k] = o
	}
	return o
}

type applyKey struct {
	op string
	ok bool
}

// opName is the request's name as etcd labels etcd_server_apply_duration_seconds:
// the InternalRaftRequest field that is set.
func opName(r *pb.InternalRaftRequest) string {
	switch {
	case r.Put != nil:
		return "Put"
	case r.Txn != nil:
		return "Txn"
	case r.DeleteRange != nil:
		return "DeleteRange"
	case r.Range != nil:
		return "Range"
	case r.LeaseGrant != nil:
		return "LeaseGrant"
	case r.LeaseRevoke != nil:
		return "LeaseRevoke"
	case r.LeaseCheckpoint != nil:
		return "LeaseCheckpoint"
	case r.Compaction != nil:
		return "Compaction"
	case r.Alarm != nil:
		return "Alarm"
	}
	name := "unknown"
	r.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.Name() == "header" {
			return true
		}
		name = string(fd.Message().Name())
		name = strings.TrimSuffix(name, "Request")
		return false
	})
	return name
}

// requestKey is the key a request names, for the slow-apply log.
func requestKey(r *pb.InternalRaftRequest) string {
	switch {
	case r.Put != nil:
		return string(r.Put.Key)
	case r.DeleteRange != nil:
		return string(r.DeleteRange.Key)
	case r.Range != nil:
		return string(r.Range.Key)
	case r.Txn != nil:
		for _, ops := range [][]*pb.RequestOp{r.Txn.Success, r.Txn.Failure} {
			for _, op := range ops {
				switch {
				case op.GetRequestPut() != nil:
					return string(op.GetRequestPut().Key)
				case op.GetRequestDeleteRange() != nil:
					return string(op.GetRequestDeleteRange().Key)
				case op.GetRequestRange() != nil:
					return string(op.GetRequestRange().Key)
				}
			}
		}
	}
	return ""
}

// peerObserver feeds the transport's events to the peer metrics.
type peerObserver struct {
	m     *metrics.Metrics
	local string // this member's ID, the Local label
}

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

func (o peerObserver) Active(peer uint64, active bool) {
	g := o.m.ActivePeers.WithLabelValues(o.local, metrics.ID(peer))
	if active {
		g.Inc()
		return
	}
	g.Dec()
	o.m.PeerDisconnects.WithLabelValues(o.local, metrics.ID(peer)).Inc()
}

func (o peerObserver) SnapshotStarted(peer uint64, sending bool) {
	if sending {
		o.m.SnapSendInflight.WithLabelValues(metrics.ID(peer)).Inc()
	} else {
		o.m.SnapRecvInflight.WithLabelValues(metrics.ID(peer)).Inc()
	}
}

func (o peerObserver) SnapshotDone(peer uint64, sending, ok bool, d time.Duration) {
	id := metrics.ID(peer)
	switch {
	case sending && ok:
		o.m.SnapSendOK.WithLabelValues(id).Inc()
		o.m.SnapSendTime.WithLabelValues(id).Observe(d.Seconds())
	case sending:
		o.m.SnapSendFailed.WithLabelValues(id).Inc()
	case ok:
		o.m.SnapRecvOK.WithLabelValues(id).Inc()
		o.m.SnapRecvTime.WithLabelValues(id).Observe(d.Seconds())
		o.m.SnapshotDBSave.Observe(d.Seconds())
	default:
		o.m.SnapRecvFailed.WithLabelValues(id).Inc()
	}
	if sending {
		o.m.SnapSendInflight.WithLabelValues(id).Dec()
	} else {
		o.m.SnapRecvInflight.WithLabelValues(id).Dec()
	}
}

// compactionObserver feeds the compactor's progress to etcd's db
// compaction metrics (in milliseconds, as etcd's are).
type compactionObserver struct{ m *metrics.Metrics }

func (o compactionObserver) Batch(d time.Duration, entries int) {
	o.m.CompactionPause.Observe(float64(d) / float64(time.Millisecond))
	o.m.CompactionKeys.Add(float64(entries))
}

func (o compactionObserver) Done(_ int64, d time.Duration) {
	o.m.CompactionTotal.Observe(float64(d) / float64(time.Millisecond))
	o.m.CompactionLast.Set(float64(time.Now().Unix()))
}
