package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// autoCompactor implements --auto-compaction-mode/-retention like etcd:
//
//   - periodic: keep about retention of history. The member samples its
//     revision every retention/10 (every hour at most), and compacts to
//     the revision sampled a retention ago.
//   - revision: every 5 minutes, compact to the current revision minus
//     retention.
//
// Compactions go through the log like a client's Compact.
type autoCompactor struct {
	s         *Server
	periodic  bool
	retention time.Duration // periodic
	keep      int64         // revision
	interval  time.Duration
}

func newAutoCompactor(s *Server, mode, retention string) (*autoCompactor, error) {
	if retention == "" || retention == "0" {
		return nil, nil
	}
	ac := &autoCompactor{s: s}
	switch mode {
	case "", "periodic":
		ac.periodic = true
		d, err := time.ParseDuration(retention)
		if err != nil {
			h, herr := strconv.ParseInt(retention, 10, 64)
			if herr != nil {
				return nil, fmt.Errorf("server: invalid --auto-compaction-retention %q: %w", retention, err)
			}
			d = time.Duration(h) * time.Hour
		}
		if d <= 0 {
			return nil, nil
		}
		ac.retention = d
		ac.interval = min(d/10, time.Hour)
		if ac.interval <= 0 {
			ac.interval = d
		}
	case "revision":
		n, err := strconv.ParseInt(retention, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("server: invalid --auto-compaction-retention %q for revision mode", retention)
		}
		if n == 0 {
			return nil, nil
		}
		ac.keep = n
		ac.interval = 5 * time.Minute
	default:
		return nil, fmt.Errorf("server: unknown --auto-compaction-mode %q (periodic or revision)", mode)
	}
	return ac, nil
}

func (ac *autoCompactor) run() {
	s := ac.s
	defer s.wg.Done()
	t := time.NewTicker(ac.interval)
	defer t.Stop()
	type sample struct {
		at  time.Time
		rev int64
	}
	var samples []sample
	for {
		select {
		case <-s.stopc:
			return
		case now := <-t.C:
			if s.node.Lead() != s.info.MemberID {
				continue
			}
			var target int64
			if ac.periodic {
				samples = append(samples, sample{now, s.store.Rev()})
				for len(samples) > 0 && now.Sub(samples[0].at) >= ac.retention {
					target = samples[0].rev
					samples = samples[1:]
				}
			} else {
				target = s.store.Rev() - ac.keep
			}
			if target <= s.store.CompactRev() || target <= 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
			res, err := s.Propose(ctx, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: target}})
			cancel()
			if err == nil && res.Err != nil {
				err = res.Err
			}
			if err != nil {
				s.lg.Warn("server: auto compaction failed", "revision", target, "err", err)
			} else {
				s.lg.Info("server: auto compaction", "revision", target)
			}
		}
	}
}
