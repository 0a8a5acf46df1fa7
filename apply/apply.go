// Package apply is the state machine: it takes one committed Raft entry at
// a time, in log order, and turns it into changes to the multi-version
// store and the lease set, all committed in one engine batch together
// with the entry's index.
//
// Apply must be deterministic: every member applies the same entries to
// the same state and must reach the same state. So it reads no clock, no
// randomness and no local configuration that could differ between
// members; everything it needs is in the entry (for example a lease ID is
// chosen by the proposer, not here). It never talks to the network.
package apply

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/membership"
	"github.com/cairnkv/cairn/mvcc"
)

// Errors the state machine returns besides those of mvcc and lease.
var (
	ErrKeyNotFound = errors.New("apply: key not found")
	ErrNoSpace     = errors.New("apply: database space exceeded")
)

// Result is the outcome of one applied request.
type Result struct {
	// Resp is the response proto (PutResponse, TxnResponse, ...).
	Resp any
	Err  error
	// Physical, for a compaction, closes when the space is reclaimed.
	Physical <-chan struct{}
}

// Applier applies entries to the store.
type Applier struct {
	store   *mvcc.Store
	lessor  *lease.Lessor
	alarms  *Alarms
	members *membership.Cluster
	auth    *auth.Store

	// OnCommit, if set, is told how long each entry's engine batch took
	// to commit (metrics). Set it before the first Apply.
	OnCommit func(time.Duration)
}

// New returns an Applier over the store, leases, alarms, member list and
// auth state. members and as may be nil for tests that apply no
// membership or auth entries (nil as: every request is allowed).
func New(store *mvcc.Store, lessor *lease.Lessor, alarms *Alarms, members *membership.Cluster, as *auth.Store) *Applier {
	return &Applier{store: store, lessor: lessor, alarms: alarms, members: members, auth: as}
}

// Apply applies req, the entry at Raft index. An error return means the
// store could not be written (the member must stop); request-level
// failures are in Result.Err.
func (a *Applier) Apply(index uint64, req *pb.InternalRaftRequest) (*Result, error) {
	t := a.store.Write()
	if a.auth != nil && auth.IsAuthRequest(req) {
		return a.applyAuth(t, index, req)
	}
	var res *Result
	if err := a.checkAuth(t, req); err != nil {
		res = &Result{Err: err}
	} else {
		res = a.dispatch(t, req)
	}
	if res.Err != nil {
		// A failed request leaves no trace. Requests are checked before
		// they write, but a transaction can still fail half-way (a put
		// with ignore_value after a delete of its key in the same
		// branch); every member reaches the same failure on the same
		// state, so dropping the writes is deterministic.
		t.Abort()
		if err := a.ApplyNoop(index); err != nil {
			return nil, err
		}
		return res, nil
	}
	if err := a.end(t, index); err != nil {
		return nil, fmt.Errorf("apply: commit entry %d: %w", index, err)
	}
	return res, nil
}

// end commits t at index, timing it for OnCommit.
func (a *Applier) end(t *mvcc.TxnWrite, index uint64) error {
	if a.OnCommit == nil {
		return t.End(index)
	}
	start := time.Now()
	err := t.End(index)
	a.OnCommit(time.Since(start))
	return err
}

// applyAuth applies an auth entry; the auth state in memory changes once
// the batch is committed.
func (a *Applier) applyAuth(t *mvcc.TxnWrite, index uint64, req *pb.InternalRaftRequest) (*Result, error) {
	resp, commit, err := a.auth.Apply(t.Batch(), index, req)
	if err != nil {
		t.Abort()
		if err := a.ApplyNoop(index); err != nil {
			return nil, err
		}
		return &Result{Err: err}, nil
	}
	if err := a.end(t, index); err != nil {
		return nil, fmt.Errorf("apply: commit entry %d: %w", index, err)
	}
	if commit != nil {
		commit()
	}
	return &Result{Resp: resp}, nil
}

// checkAuth makes etcd's apply-time permission checks of a write, as the
// user and auth revision the proposer put in the entry's header.
func (a *Applier) checkAuth(t *mvcc.TxnWrite, req *pb.InternalRaftRequest) error {
	if a.auth == nil || !a.auth.Enabled() {
		return nil
	}
	var ai auth.Info
	if req.Header != nil {
		ai = auth.Info{User: req.Header.Username, Revision: req.Header.AuthRevision}
	}
	leaseKeys := func(id int64) [][]byte {
		if !a.lessor.Exists(id) {
			return nil
		}
		keys, err := a.lessor.Keys(t.Batch(), id)
		if err != nil {
			// Unreadable: refuse rather than allow.
			return [][]byte{nil}
		}
		return keys
	}
	switch {
	case req.Put != nil:
		return a.auth.CheckPut(ai, req.Put, leaseKeys)
	case req.DeleteRange != nil:
		return a.auth.CheckDeleteRange(ai, req.DeleteRange)
	case req.Txn != nil:
		return a.auth.CheckTxn(ai, req.Txn, leaseKeys)
	case req.LeaseRevoke != nil:
		return a.auth.CheckLeaseKeys(ai, leaseKeys(req.LeaseRevoke.ID), auth.Write)
	}
	return nil
}

// ApplyNoop records that index was applied without changing anything
// (an empty entry, or one for another layer such as a membership change).
func (a *Applier) ApplyNoop(index uint64) error {
	return a.store.Write().End(index)
}

func (a *Applier) dispatch(t *mvcc.TxnWrite, req *pb.InternalRaftRequest) *Result {
	switch {
	case req.Put != nil:
		if a.alarms.NoSpace() {
			return &Result{Err: ErrNoSpace}
		}
		resp, err := a.put(t, req.Put)
		return &Result{Resp: resp, Err: err}
	case req.DeleteRange != nil:
		resp, err := a.deleteRange(t, req.DeleteRange)
		return &Result{Resp: resp, Err: err}
	case req.Txn != nil:
		if a.alarms.NoSpace() && HasPut(req.Txn) {
			return &Result{Err: ErrNoSpace}
		}
		resp, err := a.txn(t, req.Txn)
		return &Result{Resp: resp, Err: err}
	case req.Compaction != nil:
		ch, err := t.Compact(req.Compaction.Revision)
		return &Result{Resp: &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: t.Rev()}}, Err: err, Physical: ch}
	case req.LeaseGrant != nil:
		if a.alarms.NoSpace() {
			return &Result{Err: ErrNoSpace}
		}
		le, err := a.lessor.Grant(t.Batch(), req.LeaseGrant.ID, req.LeaseGrant.TTL)
		if err != nil {
			return &Result{Err: err}
		}
		return &Result{Resp: &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: t.Rev()}, ID: le.ID, TTL: le.TTL}}
	case req.LeaseRevoke != nil:
		err := a.revoke(t, req.LeaseRevoke.ID)
		return &Result{Resp: &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: t.Rev()}}, Err: err}
	case req.ClusterMemberAttrSet != nil:
		r := req.ClusterMemberAttrSet
		err := a.members.SetAttributes(t.Batch(), r.GetMember_ID(), r.GetMemberAttributes().GetName(), r.GetMemberAttributes().GetClientUrls())
		return &Result{Err: err}
	case req.DowngradeInfoSet != nil:
		r := req.DowngradeInfoSet
		return &Result{Err: a.members.SetDowngrade(t.Batch(), membership.Downgrade{Enabled: r.GetEnabled(), Target: r.GetVer()})}
	case req.Alarm != nil:
		resp, err := a.alarms.apply(t.Batch(), req.Alarm)
		if resp != nil {
			resp.Header = &pb.ResponseHeader{Revision: t.Rev()}
		}
		return &Result{Resp: resp, Err: err}
	default:
		return &Result{Err: fmt.Errorf("apply: unsupported request %v", req)}
	}
}

func (a *Applier) put(t *mvcc.TxnWrite, p *pb.PutRequest) (*pb.PutResponse, error) {
	if err := a.checkPut(t, p); err != nil {
		return nil, err
	}
	return a.doPut(t, p)
}

func (a *Applier) checkPut(t *mvcc.TxnWrite, p *pb.PutRequest) error {
	if p.Lease != 0 && !a.lessor.Exists(p.Lease) {
		return lease.ErrNotFound
	}
	if p.IgnoreValue || p.IgnoreLease {
		prev, err := a.get(t, p.Key)
		if err != nil {
			return err
		}
		if prev == nil {
			return ErrKeyNotFound
		}
	}
	return nil
}

func (a *Applier) get(t *mvcc.TxnWrite, key []byte) (*mvccpb.KeyValue, error) {
	rr, err := t.Range(context.Background(), &pb.RangeRequest{Key: key})
	if err != nil || len(rr.Kvs) == 0 {
		return nil, err
	}
	return rr.Kvs[0], nil
}

func (a *Applier) doPut(t *mvcc.TxnWrite, p *pb.PutRequest) (*pb.PutResponse, error) {
	val, leaseID := p.Value, p.Lease
	if p.IgnoreValue || p.IgnoreLease {
		prev, err := a.get(t, p.Key)
		if err != nil {
			return nil, err
		}
		if prev == nil {
			return nil, ErrKeyNotFound
		}
		if p.IgnoreValue {
			val = prev.Value
		}
		if p.IgnoreLease {
			leaseID = prev.Lease
		}
	}
	prev, err := t.Put(p.Key, val, leaseID)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.Lease != 0 && prev.Lease != leaseID {
		if err := a.lessor.Detach(t.Batch(), prev.Lease, p.Key); err != nil {
			return nil, err
		}
	}
	if leaseID != 0 && (prev == nil || prev.Lease != leaseID) {
		if err := a.lessor.Attach(t.Batch(), leaseID, p.Key); err != nil {
			return nil, err
		}
	}
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{Revision: t.Rev()}}
	if p.PrevKv {
		resp.PrevKv = prev
	}
	return resp, nil
}

func (a *Applier) deleteRange(t *mvcc.TxnWrite, d *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	deleted, err := t.DeleteRange(d.Key, d.RangeEnd)
	if err != nil {
		return nil, err
	}
	for _, kv := range deleted {
		if kv.Lease != 0 {
			if err := a.lessor.Detach(t.Batch(), kv.Lease, kv.Key); err != nil {
				return nil, err
			}
		}
	}
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{Revision: t.Rev()}, Deleted: int64(len(deleted))}
	if d.PrevKv {
		resp.PrevKvs = deleted
	}
	return resp, nil
}

func (a *Applier) revoke(t *mvcc.TxnWrite, id int64) error {
	keys, err := a.lessor.Revoke(t.Batch(), id)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := t.DeleteRange(k, nil); err != nil {
			return err
		}
	}
	return nil
}
