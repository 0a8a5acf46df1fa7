package api

import (
	"bytes"
	"context"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/apply"
	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/metrics"
)

type pbInternal = pb.InternalRaftRequest

// RangeStream message sizes, as etcd 3.7 sizes them: the first message
// carries rangeStreamFirstKeys keys; each next one doubles the count while
// the previous message was under half of --max-request-bytes and halves it
// when it was over, so messages stay near that size whatever the values
// weigh (1 MiB objects go a few at a time, small ones by thousands).
const (
	rangeStreamFirstKeys = 10
	rangeStreamMaxKeys   = 100_000
)

// adaptiveChunk implements mvcc.Chunker with the rule above.
type adaptiveChunk struct {
	target int   // bytes a message aims at
	keys   int64 // the current count
}

func (c *adaptiveChunk) Next(keys, bytes int) int64 {
	switch {
	case keys == 0:
		c.keys = rangeStreamFirstKeys
	case bytes > c.target && c.keys > 1:
		c.keys /= 2
	case bytes < c.target/2 && int64(keys) >= c.keys:
		c.keys = min(c.keys*2, rangeStreamMaxKeys)
	}
	return c.keys
}

type kvServer struct {
	pb.UnimplementedKVServer
	s *Server
}

func (k *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	if !r.Serializable {
		if err := k.s.m.LinearizableRead(ctx); err != nil {
			return nil, toGRPC(err)
		}
	}
	k.s.count(func(m *metrics.Metrics) prometheus.Counter { return m.MVCCRange })
	var resp *pb.RangeResponse
	err := k.s.serveRead(ctx, checkRead(r.Key, r.RangeEnd), func() (err error) {
		resp, err = k.s.m.Store().Range(ctx, r)
		return toGRPC(err)
	})
	if err != nil {
		return nil, err
	}
	k.s.fill(resp.Header)
	return resp, nil
}

// count increments the counter pick chooses, when metrics are on.
func (s *Server) count(pick func(*metrics.Metrics) prometheus.Counter) {
	if s.opts.Metrics != nil {
		pick(s.opts.Metrics).Inc()
	}
}

// checkRead is the permission check of a read of [key, end).
func checkRead(key, end []byte) func(*auth.Store, auth.Info) error {
	return func(as *auth.Store, ai auth.Info) error { return as.Check(ai, auth.Read, key, end) }
}

func (k *kvServer) RangeStream(r *pb.RangeRequest, stream grpc.ServerStreamingServer[pb.RangeStreamResponse]) error {
	if err := checkRange(r); err != nil {
		return err
	}
	if r.SortOrder != pb.RangeRequest_NONE && !(r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND) {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support custom sort orders")
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support revision filters")
	}
	ctx := stream.Context()
	if !r.Serializable {
		if err := k.s.m.LinearizableRead(ctx); err != nil {
			return toGRPC(err)
		}
	}
	chunk := &adaptiveChunk{target: k.s.opts.MaxRequestBytes}
	return k.s.serveRead(ctx, checkRead(r.Key, r.RangeEnd), func() error {
		return toGRPC(k.s.m.Store().RangeStream(ctx, r, chunk, func(rr *pb.RangeResponse) error {
			if rr.Header != nil {
				hdr := k.s.header(rr.Header.Revision)
				rr.Header = hdr
			}
			return stream.Send(&pb.RangeStreamResponse{RangeResponse: rr})
		}))
	})
}

func (k *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	if err := k.s.checkQuota(ctx, proto.Size(r)); err != nil {
		return nil, err
	}
	resp, _, err := k.s.propose(ctx, &pbInternal{Put: r})
	if err != nil {
		return nil, err
	}
	k.s.count(func(m *metrics.Metrics) prometheus.Counter { return m.MVCCPut })
	out := resp.(*pb.PutResponse)
	k.s.fill(out.Header)
	return out, nil
}

func (k *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	resp, _, err := k.s.propose(ctx, &pbInternal{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	k.s.count(func(m *metrics.Metrics) prometheus.Counter { return m.MVCCDelete })
	out := resp.(*pb.DeleteRangeResponse)
	k.s.fill(out.Header)
	return out, nil
}

func (k *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxn(r, k.s.opts.MaxTxnOps); err != nil {
		return nil, err
	}
	if err := checkIntervals(r.Success); err != nil {
		return nil, err
	}
	if err := checkIntervals(r.Failure); err != nil {
		return nil, err
	}
	k.s.count(func(m *metrics.Metrics) prometheus.Counter { return m.MVCCTxn })
	if apply.IsReadOnly(r) {
		if err := k.s.m.LinearizableRead(ctx); err != nil {
			return nil, toGRPC(err)
		}
		var resp *pb.TxnResponse
		err := k.s.serveRead(ctx, func(as *auth.Store, ai auth.Info) error {
			return as.CheckTxn(ai, r, k.s.leaseKeys)
		}, func() (err error) {
			view := k.s.m.Store().ReadView()
			resp, err = apply.ReadTxn(view, view.Rev(), r)
			return toGRPC(err)
		})
		if err != nil {
			return nil, err
		}
		k.s.fill(resp.Header)
		return resp, nil
	}
	if apply.HasPut(r) {
		if err := k.s.checkQuota(ctx, proto.Size(r)); err != nil {
			return nil, err
		}
	}
	resp, _, err := k.s.propose(ctx, &pbInternal{Txn: r})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.TxnResponse)
	k.s.fill(out.Header)
	return out, nil
}

func (k *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, res, err := k.s.propose(ctx, &pbInternal{Compaction: r})
	if err != nil {
		return nil, err
	}
	if r.Physical && res.Physical != nil {
		select {
		case <-res.Physical:
		case <-ctx.Done():
			return nil, toGRPC(ctx.Err())
		}
	}
	out := resp.(*pb.CompactionResponse)
	k.s.fill(out.Header)
	return out, nil
}

// checkQuota raises the NOSPACE alarm when a write of about cost bytes
// would take the store past --quota-backend-bytes, and refuses it, as etcd
// does.
func (s *Server) checkQuota(ctx context.Context, cost int) error {
	if s.m.Alarms().NoSpace() {
		return rpctypes.ErrGRPCNoSpace
	}
	if !s.m.QuotaExceeded(cost) {
		return nil
	}
	_, _, _ = s.propose(ctx, &pbInternal{Alarm: &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: s.m.MemberID(), Alarm: pb.AlarmType_NOSPACE,
	}})
	return rpctypes.ErrGRPCNoSpace
}

func checkRange(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

func checkPut(r *pb.PutRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

func checkTxn(r *pb.TxnRequest, maxOps int) error {
	ops := max(len(r.Compare), len(r.Success), len(r.Failure))
	if ops > maxOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, list := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range list {
			if err := checkOp(op, maxOps-ops); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkOp(op *pb.RequestOp, maxOps int) error {
	switch v := op.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		if v.RequestRange == nil {
			return rpctypes.ErrGRPCEmptyKey
		}
		return checkRange(v.RequestRange)
	case *pb.RequestOp_RequestPut:
		if v.RequestPut == nil {
			return rpctypes.ErrGRPCEmptyKey
		}
		return checkPut(v.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		if v.RequestDeleteRange == nil || len(v.RequestDeleteRange.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
		return nil
	case *pb.RequestOp_RequestTxn:
		if v.RequestTxn == nil {
			return rpctypes.ErrGRPCKeyNotFound
		}
		return checkTxn(v.RequestTxn, maxOps)
	default:
		return rpctypes.ErrGRPCKeyNotFound
	}
}

// interval is a delete's range: one key (end empty) or [key, end). Like
// etcd's check, it takes end literally, so a from-key delete (end "\x00")
// conflicts with nothing.
type interval struct{ key, end []byte }

func (iv interval) contains(k []byte) bool {
	if len(iv.end) == 0 {
		return bytes.Equal(k, iv.key)
	}
	return bytes.Compare(k, iv.key) >= 0 && bytes.Compare(k, iv.end) < 0
}

// checkIntervals applies etcd's duplicate-key rule: within one branch
// (including nested transactions on it) no key may be put twice or be
// both put and deleted. Puts in the two branches of a nested transaction
// may repeat each other, since only one branch runs.
func checkIntervals(ops []*pb.RequestOp) error {
	_, _, err := collectIntervals(ops)
	return err
}

func collectIntervals(ops []*pb.RequestOp) (map[string]struct{}, []interval, error) {
	var dels []interval
	for _, op := range ops {
		if d := op.GetRequestDeleteRange(); d != nil {
			dels = append(dels, interval{d.Key, d.RangeEnd})
		}
	}
	deleted := func(k string) bool {
		for _, iv := range dels {
			if iv.contains([]byte(k)) {
				return true
			}
		}
		return false
	}
	puts := map[string]struct{}{}
	for _, op := range ops {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := collectIntervals(t.Success)
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := collectIntervals(t.Failure)
		if err != nil {
			return nil, nil, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || deleted(k) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				if _, same := putsThen[k]; !same {
					return nil, nil, rpctypes.ErrGRPCDuplicateKey
				}
			}
			if deleted(k) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}
	for _, op := range ops {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.Key)
		if _, dup := puts[k]; dup || deleted(k) {
			return nil, nil, rpctypes.ErrGRPCDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
