package api

import (
	"bytes"
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The reference below is etcd 3.7.3's request validation
// (server/etcdserver/api/v3rpc/key.go: checkTxnRequest, checkRequestOp,
// checkIntervals), rewritten without its interval tree. In etcd a
// delete's range_end is an ordinary upper bound: "" is +infinity but
// "\x00" is just a short key, so a from-key delete ("\x00") overlaps
// nothing.

func etcdCheckTxn(r *pb.TxnRequest, maxTxnOps int) error {
	opc := max(len(r.Compare), len(r.Success), len(r.Failure))
	if opc > maxTxnOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, u := range ops {
			if err := etcdCheckOp(u, maxTxnOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func etcdCheckOp(u *pb.RequestOp, maxTxnOps int) error {
	switch uv := u.Request.(type) {
	case *pb.RequestOp_RequestRange:
		return checkRange(uv.RequestRange) // identical to etcd's checkRangeRequest
	case *pb.RequestOp_RequestPut:
		return checkPut(uv.RequestPut) // identical to etcd's checkPutRequest
	case *pb.RequestOp_RequestDeleteRange:
		if len(uv.RequestDeleteRange.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
		return nil
	case *pb.RequestOp_RequestTxn:
		return etcdCheckTxn(uv.RequestTxn, maxTxnOps)
	default:
		return rpctypes.ErrGRPCKeyNotFound
	}
}

type etcdInterval struct{ begin, end []byte } // end nil: +infinity

func (iv etcdInterval) containsPoint(k []byte) bool {
	return bytes.Compare(iv.begin, k) <= 0 && (iv.end == nil || bytes.Compare(k, iv.end) < 0)
}

func etcdCheckIntervals(reqs []*pb.RequestOp) (map[string]bool, []etcdInterval, error) {
	var dels []etcdInterval
	for _, req := range reqs {
		d := req.GetRequestDeleteRange()
		if d == nil {
			continue
		}
		if len(d.RangeEnd) != 0 {
			dels = append(dels, etcdInterval{d.Key, d.RangeEnd})
		} else {
			dels = append(dels, etcdInterval{d.Key, append(bytes.Clone(d.Key), 0)})
		}
	}
	deleted := func(k string) bool {
		for _, iv := range dels {
			if iv.containsPoint([]byte(k)) {
				return true
			}
		}
		return false
	}
	puts := map[string]bool{}
	for _, req := range reqs {
		tv := req.GetRequestTxn()
		if tv == nil {
			continue
		}
		putsThen, delsThen, err := etcdCheckIntervals(tv.Success)
		if err != nil {
			return nil, dels, err
		}
		putsElse, delsElse, err := etcdCheckIntervals(tv.Failure)
		if err != nil {
			return nil, dels, err
		}
		for k := range putsThen {
			if puts[k] || deleted(k) {
				return nil, dels, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = true
		}
		for k := range putsElse {
			if puts[k] && !putsThen[k] {
				return nil, dels, rpctypes.ErrGRPCDuplicateKey
			}
			if deleted(k) {
				return nil, dels, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = true
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}
	for _, req := range reqs {
		p := req.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.Key)
		if puts[k] || deleted(k) {
			return nil, dels, rpctypes.ErrGRPCDuplicateKey
		}
		puts[k] = true
	}
	return puts, dels, nil
}

// validateLikeHandler runs the checks of the KV.Txn handler, in its order.
func validateLikeHandler(r *pb.TxnRequest, maxOps int, check func(*pb.TxnRequest, int) error, intervals func([]*pb.RequestOp) error) error {
	if err := check(r, maxOps); err != nil {
		return err
	}
	if err := intervals(r.Success); err != nil {
		return err
	}
	return intervals(r.Failure)
}

// hasFromKeyDelete reports whether any delete in r has range_end "\x00",
// where Cairn knowingly differs from etcd (see
// TestTxnFromKeyDeleteDoesNotConflictLikeEtcd).
func hasFromKeyDelete(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if d := op.GetRequestDeleteRange(); d != nil && len(d.RangeEnd) == 1 && d.RangeEnd[0] == 0 {
				return true
			}
			if n := op.GetRequestTxn(); n != nil && hasFromKeyDelete(n) {
				return true
			}
		}
	}
	return false
}

var validationErrors = []error{
	rpctypes.ErrGRPCEmptyKey, rpctypes.ErrGRPCInvalidSortOption, rpctypes.ErrGRPCValueProvided,
	rpctypes.ErrGRPCLeaseProvided, rpctypes.ErrGRPCTooManyOps, rpctypes.ErrGRPCKeyNotFound,
	rpctypes.ErrGRPCDuplicateKey,
}

// txnBuilder turns fuzz bytes into a nested transaction over a small key
// alphabet, so that overlapping puts and deletes are common.
type txnBuilder struct{ data []byte }

var fuzzKeys = [][]byte{nil, []byte("a"), []byte("b"), []byte("a\x00"), {0}, {0xff}, []byte("ab"), []byte("c")}

func (b *txnBuilder) next() int {
	if len(b.data) == 0 {
		return 0
	}
	c := b.data[0]
	b.data = b.data[1:]
	return int(c)
}

func (b *txnBuilder) key() []byte { return fuzzKeys[b.next()%len(fuzzKeys)] }

func (b *txnBuilder) txn(depth int) *pb.TxnRequest {
	r := &pb.TxnRequest{}
	for range b.next() % 3 {
		r.Compare = append(r.Compare, &pb.Compare{Key: b.key(), RangeEnd: b.key()})
	}
	r.Success = b.ops(depth)
	r.Failure = b.ops(depth)
	return r
}

func (b *txnBuilder) ops(depth int) []*pb.RequestOp {
	var ops []*pb.RequestOp
	for range b.next() % 5 {
		switch op := b.next(); op % 7 {
		case 0, 1:
			p := &pb.PutRequest{Key: b.key()}
			if f := b.next(); f&1 != 0 {
				p.IgnoreValue = true
			} else if f&2 != 0 {
				p.Value = []byte("v")
			}
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: p}})
		case 2, 3:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{
				RequestDeleteRange: &pb.DeleteRangeRequest{Key: b.key(), RangeEnd: b.key()}}})
		case 4:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestRange{
				RequestRange: &pb.RangeRequest{Key: b.key(), SortOrder: pb.RangeRequest_SortOrder(b.next() % 4)}}})
		case 5:
			if depth < 4 {
				ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: b.txn(depth + 1)}})
			}
		default:
			ops = append(ops, &pb.RequestOp{}) // no request set
		}
	}
	return ops
}

// FuzzTxnValidation feeds the Txn handler's validation (checkTxn, then
// checkIntervals on each branch) arbitrary nested transactions: decoded
// from the wire format, or built from the bytes over a small key alphabet.
// It must never panic, must answer with one of etcd's validation errors,
// and must accept and refuse what etcd 3.7 does.
func FuzzTxnValidation(f *testing.F) {
	seeds := []*pb.TxnRequest{
		{Success: []*pb.RequestOp{putReq("a"), putReq("b")}},
		{Success: []*pb.RequestOp{putReq("a"), putReq("a")}},
		{Success: []*pb.RequestOp{delReq("a", "c"), putReq("b")}},
		{Success: []*pb.RequestOp{txnReq(&pb.TxnRequest{Success: []*pb.RequestOp{putReq("a")}, Failure: []*pb.RequestOp{putReq("a")}})}},
		{Success: []*pb.RequestOp{txnReq(&pb.TxnRequest{Success: []*pb.RequestOp{putReq("a")}}), delReq("a", "")}},
		{Success: []*pb.RequestOp{txnReq(&pb.TxnRequest{Success: []*pb.RequestOp{putReq("a")}}), txnReq(&pb.TxnRequest{Success: []*pb.RequestOp{delReq("a", "")}})}},
		{Compare: []*pb.Compare{{Key: nil}}},
		{Success: []*pb.RequestOp{{}}},
		{Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), SortTarget: 9}}}}},
	}
	for _, s := range seeds {
		data, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0))
	}
	f.Add([]byte{2, 4, 5, 2, 1, 1, 5, 3, 0, 1, 1, 0, 2, 1, 2, 3}, uint8(1))
	f.Add([]byte{0, 3, 2, 1, 2, 3, 5, 1, 2, 0, 2, 4, 5}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		var r *pb.TxnRequest
		if mode%2 == 0 {
			r = &pb.TxnRequest{}
			if err := proto.Unmarshal(data, r); err != nil {
				return
			}
		} else {
			r = (&txnBuilder{data: data}).txn(0)
		}
		maxOps := []int{128, 4, 2, 1, 0}[int(mode/2)%5]

		got := validateLikeHandler(r, maxOps, checkTxn, checkIntervals)
		if got != nil {
			if _, ok := status.FromError(got); !ok {
				t.Fatalf("validation error %v is not a gRPC status", got)
			}
			known := false
			for _, e := range validationErrors {
				known = known || errors.Is(got, e)
			}
			if !known {
				t.Fatalf("validation error %v is not one of etcd's", got)
			}
		}
		// Wire-decoded requests never hold nil messages; etcd's code
		// assumes so, and so may the reference.
		want := validateLikeHandler(r, maxOps, etcdCheckTxn, func(ops []*pb.RequestOp) error {
			_, _, err := etcdCheckIntervals(ops)
			return err
		})
		if !errors.Is(got, want) && !(errors.Is(want, rpctypes.ErrGRPCDuplicateKey) != errors.Is(got, rpctypes.ErrGRPCDuplicateKey) && hasFromKeyDelete(r)) {
			t.Fatalf("Cairn says %v, etcd says %v for %v", got, want, r)
		}
	})
}

func putReq(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k)}}}
}

func delReq(k, end string) *pb.RequestOp {
	d := &pb.DeleteRangeRequest{Key: []byte(k)}
	if end != "" {
		d.RangeEnd = []byte(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: d}}
}

func txnReq(r *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
}

// checkTxn must refuse, not crash on, requests holding nil messages (which
// in-process callers can build even though the wire format cannot).
func TestCheckTxnNilMessages(t *testing.T) {
	for _, op := range []*pb.RequestOp{
		{},
		{Request: &pb.RequestOp_RequestRange{}},
		{Request: &pb.RequestOp_RequestPut{}},
		{Request: &pb.RequestOp_RequestDeleteRange{}},
		{Request: &pb.RequestOp_RequestTxn{}},
	} {
		r := &pb.TxnRequest{Success: []*pb.RequestOp{op}}
		if err := checkTxn(r, 128); err == nil {
			t.Errorf("checkTxn accepted %v", op)
		}
		_ = checkIntervals(r.Success) // must not panic
	}
}

// etcd accepts a transaction that deletes from a key onwards (range_end
// "\x00") and puts a key in that range: its duplicate-key check treats
// "\x00" as an ordinary upper bound, so the delete overlaps nothing. A
// client such as `etcdctl txn` with `del --from-key a` and `put b` works
// against etcd; Cairn must accept it too.
func TestTxnFromKeyDeleteDoesNotConflictLikeEtcd(t *testing.T) {
	for _, r := range []*pb.TxnRequest{
		{Success: []*pb.RequestOp{delReq("a", "\x00"), putReq("b")}},
		{Success: []*pb.RequestOp{delReq("\xff", "\x00"), putReq("\xff/x")}},
		{Success: []*pb.RequestOp{txnReq(&pb.TxnRequest{Success: []*pb.RequestOp{delReq("a", "\x00")}}), putReq("b")}},
	} {
		if _, _, want := etcdCheckIntervals(r.Success); want != nil {
			t.Fatalf("reference refuses %v: %v", r, want)
		}
		if err := checkIntervals(r.Success); err != nil {
			t.Errorf("checkIntervals(%v) = %v; etcd accepts it", r.Success, err)
		}
	}
}
