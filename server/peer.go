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

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/membership"
	"github.com/cairnkv/cairn/raftnode"
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
		if !s.lessor.IsPrimary() {
			// Not (or not yet) the leader's lessor: its remaining TTLs
			// are not deadlines. The caller asks the next leader.
			writeLeaseAnswer(w, 0, 0, lease.ErrNotPrimary)
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
		_, err = s.promoteAsLeader(r.Context(), id)
		a := leaseAnswer{}
		if err != nil {
			a.Error, a.Retry = peerErrorCode(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a)
	}))
	return mux
}

// peerErrors are the errors a leader's answer can name, so the member
// that forwarded the request returns the same one to its client.
var peerErrors = []error{
	membership.ErrIDNotFound, membership.ErrNotLearner, membership.ErrLearnerNotReady, membership.ErrNotEnoughStarted,
	rpctypes.ErrGRPCTimeout, rpctypes.ErrGRPCTimeoutDueToLeaderFail, rpctypes.ErrGRPCTimeoutDueToConnectionLost,
	rpctypes.ErrGRPCRequestTooLarge, rpctypes.ErrGRPCNoSpace, rpctypes.ErrGRPCUnhealthy,
}

// peerErrorCode names err for a peer's answer, and says whether the
// asker should try again on the next leader: this member was not the
// leader (any more), had no leader, or was stopping.
func peerErrorCode(err error) (code string, retry bool) {
	for _, e := range []error{raftnode.ErrNotLeader, lease.ErrNotPrimary, rpctypes.ErrGRPCNoLeader, rpctypes.ErrGRPCNotLeader, rpctypes.ErrGRPCLeaderChanged, rpctypes.ErrGRPCStopped} {
		if errors.Is(err, e) {
			return err.Error(), true
		}
	}
	for _, known := range peerErrors {
		if errors.Is(err, known) {
			return known.Error(), false
		}
	}
	return err.Error(), false
}

// peerError is the error a peer's answer names. One it does not know
// becomes etcd's request timeout rather than an internal message: the
// leader failed to do what was asked, and the client may retry.
func peerError(code string) error {
	for _, known := range peerErrors {
		if code == known.Error() {
			return known
		}
	}
	return rpctypes.ErrGRPCTimeout
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

// leaseAnswer is a peer's JSON answer to a forwarded call.
type leaseAnswer struct {
	TTL      int64  `json:"ttl"`
	Granted  int64  `json:"granted"`
	NotFound bool   `json:"notFound,omitempty"`
	Error    string `json:"error,omitempty"`
	// Retry says the member asked could not answer for the leader (it
	// is not, or not yet, the leader): ask the next one.
	Retry bool `json:"retry,omitempty"`
}

func writeLeaseAnswer(w http.ResponseWriter, ttl, granted int64, err error) {
	a := leaseAnswer{TTL: ttl, Granted: granted}
	switch {
	case errors.Is(err, lease.ErrNotFound):
		a.NotFound = true
	case err != nil:
		a.Error, a.Retry = peerErrorCode(err)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

// callPeer sends a request to path on the first of urls that answers and
// decodes a JSON answer into out (when out is not nil). It returns the
// answer's status code.
func (s *Server) callPeer(ctx context.Context, method string, urls []string, path string, out any) (int, error) {
	var lastErr error = errors.New("no peer URLs")
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

// RenewLease renews a lease on the leader (locally when this member
// leads), waiting for a new leader while there is none.
func (s *Server) RenewLease(ctx context.Context, id int64) (int64, error) {
	if ttl, err := s.lessor.Renew(id); !errors.Is(err, lease.ErrNotPrimary) {
		return ttl, err
	}
	var ttl int64
	err := s.forwardToLeader(ctx, func(ctx context.Context, leader *membership.Member) error {
		if leader.ID == s.info.MemberID {
			// Elected, but the lessor may not be primary yet.
			t, err := s.lessor.Renew(id)
			if errors.Is(err, lease.ErrNotPrimary) {
				return errRetry
			}
			ttl = t
			return err
		}
		a, err := s.askLeaderOnce(ctx, leader, "/cairn/lease/renew?id="+strconv.FormatInt(id, 10))
		ttl = a.TTL
		return err
	})
	return ttl, err
}

// LeaseTimeToLive asks the leader, which alone knows deadlines, waiting
// for a new leader while there is none.
func (s *Server) LeaseTimeToLive(ctx context.Context, id int64) (granted, remaining int64, err error) {
	if !s.lessor.Exists(id) {
		return s.lessor.TimeToLive(id)
	}
	if s.lessor.IsPrimary() {
		return s.lessor.TimeToLive(id)
	}
	err = s.forwardToLeader(ctx, func(ctx context.Context, leader *membership.Member) error {
		if leader.ID == s.info.MemberID {
			if !s.lessor.IsPrimary() {
				return errRetry
			}
			var err error
			granted, remaining, err = s.lessor.TimeToLive(id)
			return err
		}
		a, err := s.askLeaderOnce(ctx, leader, "/cairn/lease/ttl?id="+strconv.FormatInt(id, 10))
		granted, remaining = a.Granted, a.TTL
		return err
	})
	return granted, remaining, err
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
