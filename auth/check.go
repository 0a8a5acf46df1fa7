package auth

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// LeaseKeys lists the keys attached to a lease, nil when the lease does
// not exist.
type LeaseKeys func(id int64) [][]byte

// The checks below are made where etcd makes them: reads by the API
// before it serves them, writes again by the apply loop when their entry
// is applied (and so against the auth state of that log position).

// CheckPut: write on the key; write on every key already attached to the
// lease it attaches (a user who could not revoke that lease may not add
// keys to it); read on the key for prev_kv.
func (s *Store) CheckPut(ai Info, r *pb.PutRequest, leaseKeys LeaseKeys) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkPut(ai, r, leaseKeys)
}

func (s *Store) checkPut(ai Info, r *pb.PutRequest, leaseKeys LeaseKeys) error {
	if err := s.check(ai, Write, r.Key, nil); err != nil {
		return err
	}
	if r.Lease != 0 && leaseKeys != nil {
		if err := s.checkLeaseKeys(ai, leaseKeys(r.Lease), Write); err != nil {
			return err
		}
	}
	if r.PrevKv {
		return s.check(ai, Read, r.Key, nil)
	}
	return nil
}

// CheckDeleteRange: write on the range; read on it for prev_kv.
func (s *Store) CheckDeleteRange(ai Info, r *pb.DeleteRangeRequest) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkDeleteRange(ai, r)
}

func (s *Store) checkDeleteRange(ai Info, r *pb.DeleteRangeRequest) error {
	if err := s.check(ai, Write, r.Key, r.RangeEnd); err != nil {
		return err
	}
	if r.PrevKv {
		return s.check(ai, Read, r.Key, r.RangeEnd)
	}
	return nil
}

// CheckTxn: read on every compared range, and every request of both
// branches (nested transactions included) as if made alone.
func (s *Store) CheckTxn(ai Info, r *pb.TxnRequest, leaseKeys LeaseKeys) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkTxn(ai, r, leaseKeys)
}

func (s *Store) checkTxn(ai Info, r *pb.TxnRequest, leaseKeys LeaseKeys) error {
	for _, c := range r.Compare {
		if err := s.check(ai, Read, c.Key, c.RangeEnd); err != nil {
			return err
		}
	}
	branches := [][]*pb.RequestOp{r.Success, r.Failure}
	if failpoint.Enabled(failpoint.AuthSkipTxnElse) {
		branches = branches[:1]
	}
	for _, ops := range branches {
		for _, op := range ops {
			var err error
			switch v := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				if v.RequestRange != nil {
					err = s.check(ai, Read, v.RequestRange.Key, v.RequestRange.RangeEnd)
				}
			case *pb.RequestOp_RequestPut:
				if v.RequestPut != nil {
					err = s.checkPut(ai, v.RequestPut, leaseKeys)
				}
			case *pb.RequestOp_RequestDeleteRange:
				if d := v.RequestDeleteRange; d != nil {
					// etcd checks prev_kv's read before the write here.
					if d.PrevKv {
						err = s.check(ai, Read, d.Key, d.RangeEnd)
					}
					if err == nil {
						err = s.check(ai, Write, d.Key, d.RangeEnd)
					}
				}
			case *pb.RequestOp_RequestTxn:
				if v.RequestTxn != nil {
					err = s.checkTxn(ai, v.RequestTxn, leaseKeys)
				}
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckLeaseKeys: a root user may do anything with a lease; anyone else
// needs typ on every key attached to it (write to revoke or renew it,
// read to list its keys).
func (s *Store) CheckLeaseKeys(ai Info, keys [][]byte, typ Type) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkLeaseKeys(ai, keys, typ)
}

func (s *Store) checkLeaseKeys(ai Info, keys [][]byte, typ Type) error {
	if s.isAdmin(ai) == nil {
		return nil
	}
	for _, k := range keys {
		if err := s.check(ai, typ, k, nil); err != nil {
			return err
		}
	}
	return nil
}
