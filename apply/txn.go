package apply

import (
	"bytes"
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/mvcc"
)

// Ranger is what a transaction reads through: a write transaction (which
// sees its own writes) or a read view pinned at one revision.
type Ranger interface {
	Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error)
}

// txn follows etcd: every comparison on the chosen path, nested ones
// included, is evaluated against the state before the transaction writes
// anything; then every request on the path is checked (future or
// compacted revisions, unknown leases, ignore_value on a missing key), so
// a transaction either fails whole with an error or runs whole.
func (a *Applier) txn(t *mvcc.TxnWrite, rt *pb.TxnRequest) (*pb.TxnResponse, error) {
	path := comparePath(t, rt)
	if _, err := a.checkOps(t, rt, path); err != nil {
		return nil, err
	}
	resp, _, err := a.runTxn(t, t, rt, path)
	if err != nil {
		return nil, err
	}
	setTxnRev(resp, t.Rev())
	return resp, nil
}

// ReadTxn runs a transaction that has no writes against a view pinned at
// revision rev.
func ReadTxn(view Ranger, rev int64, rt *pb.TxnRequest) (*pb.TxnResponse, error) {
	a := &Applier{}
	path := comparePath(view, rt)
	if _, err := a.checkOps(view, rt, path); err != nil {
		return nil, err
	}
	resp, _, err := a.runTxn(view, nil, rt, path)
	if err != nil {
		return nil, err
	}
	setTxnRev(resp, rev)
	return resp, nil
}

// setTxnRev sets the outer header's revision. Like etcd, the responses
// inside a transaction keep the revision each one saw when it ran (a
// range before the transaction's first write sees the old revision) and
// carry nothing else; a nested transaction's header stays empty.
func setTxnRev(resp *pb.TxnResponse, rev int64) {
	resp.Header = &pb.ResponseHeader{Revision: rev}
}

func comparePath(r Ranger, rt *pb.TxnRequest) []bool {
	ok := compareAll(r, rt.Compare)
	path := []bool{ok}
	ops := rt.Success
	if !ok {
		ops = rt.Failure
	}
	for _, op := range ops {
		if n := op.GetRequestTxn(); n != nil {
			path = append(path, comparePath(r, n)...)
		}
	}
	return path
}

func compareAll(r Ranger, cs []*pb.Compare) bool {
	for _, c := range cs {
		if !compareOne(r, c) {
			return false
		}
	}
	return true
}

func compareOne(r Ranger, c *pb.Compare) bool {
	rr, err := r.Range(context.Background(), &pb.RangeRequest{Key: c.Key, RangeEnd: c.RangeEnd})
	if err != nil {
		return false
	}
	if len(rr.Kvs) == 0 {
		if c.Target == pb.Compare_VALUE {
			// A value cannot be compared on a missing key.
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, kv := range rr.Kvs {
		if !compareKV(c, kv) {
			return false
		}
	}
	return true
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var res int
	switch c.Target {
	case pb.Compare_VALUE:
		res = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		res = cmpInt(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		res = cmpInt(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		res = cmpInt(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		res = cmpInt(kv.Lease, c.GetLease())
	}
	// As in etcd, an unknown target compares equal and an unknown result
	// holds.
	switch c.Result {
	case pb.Compare_EQUAL:
		return res == 0
	case pb.Compare_NOT_EQUAL:
		return res != 0
	case pb.Compare_GREATER:
		return res > 0
	case pb.Compare_LESS:
		return res < 0
	}
	return true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkOps validates the requests on path before anything is written,
// returning how many path entries the transaction used.
func (a *Applier) checkOps(r Ranger, rt *pb.TxnRequest, path []bool) (int, error) {
	ops := rt.Success
	if !path[0] {
		ops = rt.Failure
	}
	used := 1
	for _, op := range ops {
		switch v := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if v.RequestRange == nil {
				continue
			}
			if _, err := r.Range(context.Background(), &pb.RangeRequest{
				Key: v.RequestRange.Key, Revision: v.RequestRange.Revision, CountOnly: true,
			}); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestPut:
			p := v.RequestPut
			if p == nil {
				continue
			}
			if p.Lease != 0 && a.lessor != nil && !a.lessor.Exists(p.Lease) {
				return 0, lease.ErrNotFound
			}
			if p.IgnoreValue || p.IgnoreLease {
				rr, err := r.Range(context.Background(), &pb.RangeRequest{Key: p.Key})
				if err != nil {
					return 0, err
				}
				if len(rr.Kvs) == 0 {
					return 0, ErrKeyNotFound
				}
			}
		case *pb.RequestOp_RequestTxn:
			if v.RequestTxn == nil {
				continue
			}
			n, err := a.checkOps(r, v.RequestTxn, path[used:])
			if err != nil {
				return 0, err
			}
			used += n
		}
	}
	return used, nil
}

// runTxn executes the chosen branches; tw is nil for a read-only txn.
func (a *Applier) runTxn(r Ranger, tw *mvcc.TxnWrite, rt *pb.TxnRequest, path []bool) (*pb.TxnResponse, int, error) {
	ops := rt.Success
	if !path[0] {
		ops = rt.Failure
	}
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: path[0], Responses: make([]*pb.ResponseOp, 0, len(ops))}
	used := 1
	for _, op := range ops {
		var out *pb.ResponseOp
		switch v := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := r.Range(context.Background(), v.RequestRange)
			if err != nil {
				return nil, 0, err
			}
			out = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rr}}
		case *pb.RequestOp_RequestPut:
			if tw == nil {
				return nil, 0, errReadOnly
			}
			pr, err := a.doPut(tw, v.RequestPut)
			if err != nil {
				return nil, 0, err
			}
			out = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: pr}}
		case *pb.RequestOp_RequestDeleteRange:
			if tw == nil {
				return nil, 0, errReadOnly
			}
			dr, err := a.deleteRange(tw, v.RequestDeleteRange)
			if err != nil {
				return nil, 0, err
			}
			out = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}}
		case *pb.RequestOp_RequestTxn:
			tr, n, err := a.runTxn(r, tw, v.RequestTxn, path[used:])
			if err != nil {
				return nil, 0, err
			}
			used += n
			out = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}}
		default:
			continue
		}
		resp.Responses = append(resp.Responses, out)
	}
	return resp, used, nil
}

var errReadOnly = errors.New("apply: write in a read-only transaction")

// IsReadOnly reports whether rt has no write on any branch, so it can be
// served without going through the log.
func IsReadOnly(rt *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{rt.Success, rt.Failure} {
		for _, op := range ops {
			switch v := op.Request.(type) {
			case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
				return false
			case *pb.RequestOp_RequestTxn:
				if v.RequestTxn != nil && !IsReadOnly(v.RequestTxn) {
					return false
				}
			}
		}
	}
	return true
}

// HasPut reports whether rt puts a key on any branch.
func HasPut(rt *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{rt.Success, rt.Failure} {
		for _, op := range ops {
			switch v := op.Request.(type) {
			case *pb.RequestOp_RequestPut:
				return true
			case *pb.RequestOp_RequestTxn:
				if v.RequestTxn != nil && HasPut(v.RequestTxn) {
					return true
				}
			}
		}
	}
	return false
}
