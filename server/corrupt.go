package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The corruption check: the leader periodically (--corrupt-check-time)
// hashes its store at its current revision and asks every follower for
// its hash at the same revision (GET /cairn/hashkv on the peer port; the
// follower waits until it has applied that revision). A follower whose
// hash differs while its compaction revision is the same has diverged:
// the leader raises a CORRUPT alarm for it through the log. While any
// CORRUPT alarm is raised, every member refuses client requests with
// etcd's "corrupt cluster" error, as etcd does, so a diverged store is
// never served.

type hashAnswer struct {
	Hash       uint32 `json:"hash"`
	Revision   int64  `json:"revision"`
	CompactRev int64  `json:"compactRevision"`
	Error      string `json:"error,omitempty"`
}

func (s *Server) serveHashKV(w http.ResponseWriter, r *http.Request) {
	rev, err := strconv.ParseInt(r.URL.Query().Get("rev"), 10, 64)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var a hashAnswer
	// Wait (briefly) until this member has the revision.
	deadline := time.Now().Add(5 * time.Second)
	for s.store.Rev() < rev && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	a.Hash, a.Revision, a.CompactRev, err = s.store.HashKV(rev)
	if err != nil {
		a.Error = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

// corruptCheckLoop runs the check every interval while this member leads.
func (s *Server) corruptCheckLoop(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
		if s.node.Lead() != s.info.MemberID {
			continue
		}
		if err := s.checkHashes(); err != nil {
			s.lg.Warn("server: corruption check", "err", err)
		}
	}
}

// checkHashes compares every follower's hash with this member's.
func (s *Server) checkHashes() error {
	hash, rev, compact, err := s.store.HashKV(0)
	if err != nil {
		return err
	}
	for _, m := range s.members.Members() {
		if m.ID == s.info.MemberID {
			continue
		}
		a, err := s.askHash(m.PeerURLs, rev)
		if err != nil || a.Error != "" || a.CompactRev != compact || a.Revision != rev {
			continue // unreachable, behind or compacted differently: no verdict
		}
		if a.Hash != hash {
			s.lg.Error("server: member's store diverged; raising CORRUPT", "member", fmt.Sprintf("%x", m.ID),
				"revision", rev, "hash", a.Hash, "leader-hash", hash)
			ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
			_, err := s.Propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
				Action: pb.AlarmRequest_ACTIVATE, MemberID: m.ID, Alarm: pb.AlarmType_CORRUPT,
			}})
			cancel()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) askHash(urls []string, rev int64) (hashAnswer, error) {
	var a hashAnswer
	_, err := s.callPeer(context.Background(), http.MethodGet, urls, fmt.Sprintf("/cairn/hashkv?rev=%d", rev), &a)
	return a, err
}
