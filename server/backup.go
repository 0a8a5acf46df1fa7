package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cairnkv/cairn/backup"
)

// newBackups makes the scheduler of --backup-dir (nil when unset). It
// reaches the store only through writeBackup.
func (s *Server) newBackups() (*backup.Scheduler, error) {
	cfg := s.cfg
	if cfg.BackupDir == "" {
		return nil, nil
	}
	format := cfg.SnapshotFormat
	if format == "" {
		format = "etcd"
	}
	sch, err := backup.New(backup.Config{
		Dir: cfg.BackupDir, Interval: cfg.BackupInterval, Retention: cfg.BackupRetention,
		LeaderOnly: cfg.BackupOnLeaderOnly,
		IsLeader:   func() bool { return s.node.Lead() == s.info.MemberID },
		Format:     format,
		Source:     s.writeBackup,
		Logger:     s.lg,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return sch, nil
}

// runBackups runs the scheduler until the member stops. It is one of
// the member's goroutines, so shutdown waits for an attempt in progress
// before closing the store.
func (s *Server) runBackups(sch *backup.Scheduler) {
	defer s.wg.Done()
	ctx, cancel := s.stopContext()
	defer cancel()
	sch.Run(ctx)
}

// writeBackup is the backups' Source: the snapshot Maintenance.Snapshot
// sends, in --snapshot-format. Cairn's format streams straight from a
// point-in-time view of the store; etcd's is a bbolt file, built under
// member/snap by SnapshotFile and then copied.
func (s *Server) writeBackup(ctx context.Context, w io.Writer) (int64, error) {
	if s.cfg.SnapshotFormat == "cairn" {
		return s.store.WriteSnapshot(w)
	}
	start := time.Now()
	path, rev, remove, err := s.SnapshotFile()
	if err != nil {
		return 0, err
	}
	defer remove()
	s.lg.Debug("backup: snapshot written, copying it", "revision", rev, "took", time.Since(start))
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return 0, err
	}
	return rev, nil
}

// registerBackupMetrics adds the cairn_backup_* figures, read at scrape
// time from the scheduler.
func (s *Server) registerBackupMetrics(sch *backup.Scheduler) {
	m := s.metrics
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	m.Gauge("cairn_backup_last_success_timestamp_seconds", "Unix time the latest successful scheduled backup ended (0: none since the member started).",
		func() float64 { return unix(sch.Stats().LastSuccess) })
	m.Gauge("cairn_backup_last_failure_timestamp_seconds", "Unix time the latest failed scheduled backup ended (0: none since the member started).",
		func() float64 { return unix(sch.Stats().LastFailure) })
	m.Gauge("cairn_backup_duration_seconds", "How long the latest scheduled backup attempt took, successful or not.",
		func() float64 { return sch.Stats().LastDuration.Seconds() })
	m.Gauge("cairn_backup_size_bytes", "Size of the latest successful scheduled backup.",
		func() float64 { return float64(sch.Stats().LastSize) })
	m.Gauge("cairn_backup_last_revision", "Store revision held by the latest successful scheduled backup.",
		func() float64 { return float64(sch.Stats().LastRevision) })
	m.Counter("cairn_backup_successes_total", "Scheduled backups written and verified.",
		func() float64 { return float64(sch.Stats().Successes) })
	m.Counter("cairn_backup_failures_total", "Scheduled backup attempts that failed (each is retried at the next interval).",
		func() float64 { return float64(sch.Stats().Failures) })
}
