package api

import (
	"context"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/apply"
	"github.com/cairnkv/cairn/audit"
)

// The audit log (--audit-log-path): one line per request, written by
// package audit. A unary request is one line when it is answered; a
// stream is one line when it ends, and every watch it creates is a read
// line of its own. Reads are recorded only with --audit-log-reads, a
// refused request always.

// readMethods are the requests that change nothing.
var readMethods = map[string]bool{
	"/etcdserverpb.KV/Range":              true,
	"/etcdserverpb.KV/RangeStream":        true,
	"/etcdserverpb.Watch/Watch":           true,
	"/etcdserverpb.Lease/LeaseTimeToLive": true,
	"/etcdserverpb.Lease/LeaseLeases":     true,
	"/etcdserverpb.Cluster/MemberList":    true,
	"/etcdserverpb.Maintenance/Status":    true,
	"/etcdserverpb.Maintenance/Hash":      true,
	"/etcdserverpb.Maintenance/HashKV":    true,
	"/etcdserverpb.Maintenance/Snapshot":  true,
	"/etcdserverpb.Auth/AuthStatus":       true,
	"/etcdserverpb.Auth/UserGet":          true,
	"/etcdserverpb.Auth/UserList":         true,
	"/etcdserverpb.Auth/RoleGet":          true,
	"/etcdserverpb.Auth/RoleList":         true,
	"/v3electionpb.Election/Leader":       true,
	"/v3electionpb.Election/Observe":      true,
}

// isRead reports whether a call of method with req changes nothing.
func isRead(method string, req any) bool {
	switch r := req.(type) {
	case *pb.TxnRequest:
		return apply.IsReadOnly(r)
	case *pb.AlarmRequest:
		return r.Action == pb.AlarmRequest_GET
	}
	return readMethods[method]
}

// requestKeys is the first key and range end a request names.
func requestKeys(req any) (key, end []byte) {
	switch r := req.(type) {
	case *pb.RangeRequest:
		return r.Key, r.RangeEnd
	case *pb.PutRequest:
		return r.Key, nil
	case *pb.DeleteRangeRequest:
		return r.Key, r.RangeEnd
	case *pb.TxnRequest:
		if len(r.Compare) > 0 {
			return r.Compare[0].Key, r.Compare[0].RangeEnd
		}
		for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
			for _, op := range ops {
				switch v := op.Request.(type) {
				case *pb.RequestOp_RequestRange:
					return v.RequestRange.GetKey(), v.RequestRange.GetRangeEnd()
				case *pb.RequestOp_RequestPut:
					return v.RequestPut.GetKey(), nil
				case *pb.RequestOp_RequestDeleteRange:
					return v.RequestDeleteRange.GetKey(), v.RequestDeleteRange.GetRangeEnd()
				}
			}
		}
	}
	return nil, nil
}

type headered interface{ GetHeader() *pb.ResponseHeader }

// auditEntry is the line of a call of method answered with resp, err.
func (s *Server) auditEntry(ctx context.Context, method string, req, resp any, err error, start time.Time, read bool) audit.Entry {
	e := audit.Entry{Time: start, Method: method, Latency: time.Since(start), Read: read}
	e.User, e.Remote = s.caller(ctx)
	e.Key, e.RangeEnd = requestKeys(req)
	if h, ok := resp.(headered); ok && h != nil {
		e.Revision = h.GetHeader().GetRevision()
	}
	st := status.Convert(toGRPC(err))
	e.Code = st.Code().String()
	if err != nil {
		e.Error = st.Message()
	}
	return e
}

// caller is who made the call in ctx and from where, for the audit log:
// the token user or certificate CN (even with auth off), and the client
// address (for a call the gateway relays, the HTTP client's).
func (s *Server) caller(ctx context.Context) (user, remote string) {
	if ai, err := s.authInfo(ctx); err == nil {
		user = ai.User
	}
	if user == "" {
		user = ClientCommonName(ctx)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get(gatewayMetadata)) > 0 {
		if fwd := md.Get("x-forwarded-for"); len(fwd) > 0 {
			return user, strings.TrimSpace(strings.Split(fwd[0], ",")[0])
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		remote = p.Addr.String()
	}
	return user, remote
}

// auditUnary records a unary call.
func (s *Server) auditUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.opts.Audit == nil {
		return handler(ctx, req)
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	s.opts.Audit.Record(s.auditEntry(ctx, info.FullMethod, req, resp, err, start, isRead(info.FullMethod, req)))
	return resp, err
}

// auditStream records a stream when it ends.
func (s *Server) auditStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if s.opts.Audit == nil {
		return handler(srv, ss)
	}
	start := time.Now()
	err := handler(srv, ss)
	s.opts.Audit.Record(s.auditEntry(ss.Context(), info.FullMethod, nil, nil, err, start, isRead(info.FullMethod, nil)))
	return err
}

// auditWatch records a watch creation (a read line) on stream ctx,
// refused with refusal if not nil.
func (s *Server) auditWatch(ctx context.Context, key, end []byte, refusal error, start time.Time) {
	if s.opts.Audit == nil {
		return
	}
	e := audit.Entry{Time: start, Method: "/etcdserverpb.Watch/Watch", Key: key, RangeEnd: end, Latency: time.Since(start), Read: true, Code: "OK"}
	e.User, e.Remote = s.caller(ctx)
	if refusal != nil {
		st := status.Convert(refusal)
		e.Code, e.Error = st.Code().String(), st.Message()
	}
	s.opts.Audit.Record(e)
}
