package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/membership"
	"github.com/cairnkv/cairn/transport"
)

// The peer port serves the raft transport (under /raft/) and a few small
// member-to-member calls:
//
//	GET  /members              the member list and cluster ID (for a joining member)
//	POST /cairn/lease/renew    keep-alive forwarded to the leader
//	GET  /cairn/lease/ttl      TimeToLive forwarded to the leader
//
// Cluster-ID mismatches are refused with 412, as etcd's peer handlers do.
const clusterIDHeader = "X-Etcd-Cluster-ID"

func (s *Server) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/raft/", s.transport.Handler())
	mux.HandleFunc("/members", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(clusterIDHeader, fmt.Sprintf("%x", s.info.ClusterID))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.members.Members())
	})
	mux.HandleFunc("/cairn/lease/renew", s.peerCheck(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ttl, err := s.lessor.Renew(id)
		writeLeaseAnswer(w, ttl, 0, err)
	}))
	mux.HandleFunc("/cairn/lease/ttl", s.peerCheck(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		granted, remaining, err := s.lessor.TimeToLive(id)
		writeLeaseAnswer(w, remaining, granted, err)
	}))
	mux.HandleFunc("/cairn/hashkv", s.serveHashKV)
	mux.HandleFunc("/cairn/member/removed", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.URL.Query().Get("id"), 16, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if s.members.IsRemoved(id) {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/cairn/member/promote", s.peerCheck(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.URL.Query().Get("id"), 10, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, err = s.PromoteMember(r.Context(), id)
		a := leaseAnswer{}
		if err != nil {
			a.Error = promoteErrorCode(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a)
	}))
	return mux
}

// promoteErrorCode names a promotion error so the member that forwarded
// the request can return the same one.
func promoteErrorCode(err error) string {
	for _, known := range []error{membership.ErrIDNotFound, membership.ErrNotLearner, membership.ErrLearnerNotReady, membership.ErrNotEnoughStarted} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return err.Error()
}

func promoteError(code string) error {
	for _, known := range []error{membership.ErrIDNotFound, membership.ErrNotLearner, membership.ErrLearnerNotReady, membership.ErrNotEnoughStarted} {
		if code == known.Error() {
			return known
		}
	}
	return errors.New(code)
}

func (s *Server) peerCheck(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get(clusterIDHeader); got != "" && got != fmt.Sprintf("%x", s.info.ClusterID) {
			http.Error(w, "cluster ID mismatch", http.StatusPreconditionFailed)
			return
		}
		h(w, r)
	}
}

type leaseAnswer struct {
	TTL      int64  `json:"ttl"`
	Granted  int64  `json:"granted"`
	NotFound bool   `json:"notFound,omitempty"`
	Error    string `json:"error,omitempty"`
}

func writeLeaseAnswer(w http.ResponseWriter, ttl, granted int64, err error) {
	a := leaseAnswer{TTL: ttl, Granted: granted}
	switch {
	case errors.Is(err, lease.ErrNotFound):
		a.NotFound = true
	case err != nil:
		a.Error = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

// errNoLeader is returned when a leader-only call finds no leader.
var errNoLeader = errors.New("server: no leader")

// callPeer sends a request to path on the first of urls that answers and
// decodes a JSON answer into out (when out is not nil). It returns the
// answer's status code.
func (s *Server) callPeer(ctx context.Context, method string, urls []string, path string, out any) (int, error) {
	var lastErr error = errNoLeader
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, method, u+path, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set(clusterIDHeader, fmt.Sprintf("%x", s.info.ClusterID))
		// Say who is calling, as the raft transport does on its streams.
		req.Header.Set(transport.HeaderFrom, strconv.FormatUint(s.info.MemberID, 16))
		resp, err := s.peerClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		if out != nil && resp.StatusCode == http.StatusOK {
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
		}
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		return resp.StatusCode, nil
	}
	return 0, lastErr
}

// askLeader calls a peer endpoint on the current leader.
func (s *Server) askLeader(ctx context.Context, path string, id string) (leaseAnswer, error) {
	var a leaseAnswer
	lead := s.node.Lead()
	m := s.members.Member(lead)
	if lead == 0 || m == nil {
		return a, errNoLeader
	}
	code, err := s.callPeer(ctx, http.MethodPost, m.PeerURLs, path+"?id="+id, &a)
	if err != nil {
		return a, err
	}
	if code != http.StatusOK {
		return a, fmt.Errorf("server: leader answered %s to %s", http.StatusText(code), path)
	}
	switch {
	case a.NotFound:
		return a, lease.ErrNotFound
	case a.Error != "":
		return a, promoteError(a.Error)
	}
	return a, nil
}

// RenewLease renews a lease on the leader (locally when this member leads).
func (s *Server) RenewLease(ctx context.Context, id int64) (int64, error) {
	if s.lessor.IsPrimary() {
		return s.lessor.Renew(id)
	}
	a, err := s.askLeader(ctx, "/cairn/lease/renew", strconv.FormatInt(id, 10))
	return a.TTL, err
}

// LeaseTimeToLive asks the leader, which alone knows deadlines.
func (s *Server) LeaseTimeToLive(ctx context.Context, id int64) (granted, remaining int64, err error) {
	if s.lessor.IsPrimary() || !s.lessor.Exists(id) {
		return s.lessor.TimeToLive(id)
	}
	a, err := s.askLeader(ctx, "/cairn/lease/ttl", strconv.FormatInt(id, 10))
	return a.Granted, a.TTL, err
}

// fetchCluster asks the members of a running cluster for its member list
// and ID, for a member joining with --initial-cluster-state existing.
func fetchCluster(urls []string, timeout time.Duration) (uint64, []*membership.Member, error) {
	c := &http.Client{Timeout: timeout}
	var lastErr error
	for _, u := range urls {
		resp, err := c.Get(u + "/members")
		if err != nil {
			lastErr = err
			continue
		}
		var ms []*membership.Member
		err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&ms)
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		id, err := strconv.ParseUint(resp.Header.Get(clusterIDHeader), 16, 64)
		if err != nil {
			lastErr = fmt.Errorf("bad cluster ID from %s: %w", u, err)
			continue
		}
		return id, ms, nil
	}
	return 0, nil, fmt.Errorf("server: could not get the member list of the cluster to join from %v: %w", urls, lastErr)
}

// servePeers serves the peer port on l until Stop.
func (s *Server) servePeers(l net.Listener) {
	defer s.wg.Done()
	hs := &http.Server{Handler: s.peerHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-s.stopc
		hs.Close()
	}()
	_ = hs.Serve(l)
}

// removalLoop stops this member once the cluster has removed it. A removed
// member may never apply its own removal (the leader stops sending it
// entries), so while it sees no leader it asks its peers, as etcd's
// members learn it from their peers' "member removed" answers.
func (s *Server) removalLoop() {
	defer s.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
		if s.node.Lead() != 0 && !s.members.IsRemoved(s.info.MemberID) {
			continue
		}
		if s.members.IsRemoved(s.info.MemberID) || s.peersSayRemoved() {
			s.lg.Warn("server: the member has been permanently removed from the cluster; stopping")
			go s.Stop()
			return
		}
	}
}

func (s *Server) peersSayRemoved() bool {
	path := fmt.Sprintf("/cairn/member/removed?id=%x", s.info.MemberID)
	for _, m := range s.members.Members() {
		if m.ID == s.info.MemberID {
			continue
		}
		if code, err := s.callPeer(context.Background(), http.MethodGet, m.PeerURLs, path, nil); err == nil && code == http.StatusGone {
			return true
		}
	}
	return false
}
