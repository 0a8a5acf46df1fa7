package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairnkv/cairn/auth"
)

// What a method needs of its caller before its handler runs, where etcd
// checks it at the API: any user (etcd's requireAuthInfo) or root (etcd's
// isPermitted and checkMembershipOperationPermission). Key permissions
// are checked by the handlers (reads) and by the apply loop (writes).
const (
	needUser = iota + 1
	needRoot
)

var methodNeeds = map[string]int{
	"/etcdserverpb.KV/Compact":             needRoot,
	"/etcdserverpb.Maintenance/Status":     needUser,
	"/etcdserverpb.Maintenance/Defragment": needRoot,
	"/etcdserverpb.Maintenance/Snapshot":   needRoot,
	"/etcdserverpb.Maintenance/Hash":       needRoot,
	"/etcdserverpb.Maintenance/HashKV":     needRoot,
	"/etcdserverpb.Maintenance/MoveLeader": needRoot,
	"/etcdserverpb.Maintenance/Downgrade":  needRoot,
	"/etcdserverpb.Cluster/MemberList":     needUser,
	"/etcdserverpb.Cluster/MemberAdd":      needRoot,
	"/etcdserverpb.Cluster/MemberRemove":   needRoot,
	"/etcdserverpb.Cluster/MemberUpdate":   needRoot,
	"/etcdserverpb.Cluster/MemberPromote":  needRoot,
	"/etcdserverpb.Lease/LeaseGrant":       needUser,
	"/etcdserverpb.Lease/LeaseRevoke":      needUser,
	"/etcdserverpb.Lease/LeaseTimeToLive":  needUser,
}

// authorizeMethod applies methodNeeds (an Alarm GET needs a user, any
// other Alarm root), after the checks etcd makes before it looks at the
// caller.
func (s *Server) authorizeMethod(ctx context.Context, method string, req any) error {
	if as := s.m.Auth(); as == nil || !as.Enabled() {
		return nil
	}
	// etcd's MemberAdd parses the peer URLs before it looks at the
	// caller: bad URLs are ErrGRPCMemberBadURLs for anyone.
	if r, ok := req.(*pb.MemberAddRequest); ok {
		if err := checkPeerURLs(r.PeerURLs); err != nil {
			return err
		}
	}
	need := methodNeeds[method]
	if r, ok := req.(*pb.AlarmRequest); ok {
		need = needRoot
		if r.Action == pb.AlarmRequest_GET {
			need = needUser
		}
	}
	switch need {
	case needUser:
		return s.requireUser(ctx)
	case needRoot:
		return s.requireAdmin(ctx)
	}
	return nil
}

// checkLeaseRenew is etcd's: a user; root, or write on every key
// attached to the lease.
func (s *Server) checkLeaseRenew(ctx context.Context, id int64) error {
	return s.checkLeases(ctx, []int64{id}, auth.Write)
}

// checkLeases: a user; root, or typ on every key attached to the leases;
// and no auth change meanwhile.
func (s *Server) checkLeases(ctx context.Context, ids []int64, typ auth.Type) error {
	as := s.m.Auth()
	if as == nil || !as.Enabled() {
		return nil
	}
	rev := as.Revision()
	_, err := s.authorize(ctx, func(as *auth.Store, ai auth.Info) error {
		if err := as.RequireUser(ai); err != nil {
			return err
		}
		for _, id := range ids {
			if err := as.CheckLeaseKeys(ai, s.leaseKeys(id), typ); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rev != as.Revision() {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	return nil
}

// watchRefusal is why a watch is refused at creation, nil when the
// caller may read [key, end); its Error() is etcd's cancel reason.
func (s *Server) watchRefusal(ctx context.Context, key, end []byte) error {
	_, err := s.authorize(ctx, checkRead(key, end))
	switch {
	case err == nil:
		return nil
	case err == rpctypes.ErrGRPCInvalidAuthToken, err == rpctypes.ErrGRPCAuthOldRevision, err == rpctypes.ErrGRPCUserEmpty:
		return err
	}
	return rpctypes.ErrGRPCPermissionDenied
}
