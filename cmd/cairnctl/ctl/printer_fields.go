package ctl

import (
	"fmt"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fieldsPrinter prints one `"Name" : value` line per field, for scripts that
// grep. Member add/remove/update/promote, user get, user list and auth
// status are not supported, as in etcdctl.
type fieldsPrinter struct {
	printer // unsupported fallback
	w       io.Writer
	isHex   bool
}

func (p *fieldsPrinter) kv(prefix string, kv *mvccpb.KeyValue) {
	fmt.Fprintf(p.w, "\"%sKey\" : %q\n", prefix, string(kv.GetKey()))
	fmt.Fprintf(p.w, "\"%sCreateRevision\" : %d\n", prefix, kv.GetCreateRevision())
	fmt.Fprintf(p.w, "\"%sModRevision\" : %d\n", prefix, kv.GetModRevision())
	fmt.Fprintf(p.w, "\"%sVersion\" : %d\n", prefix, kv.GetVersion())
	fmt.Fprintf(p.w, "\"%sValue\" : %q\n", prefix, string(kv.GetValue()))
	if p.isHex {
		fmt.Fprintf(p.w, "\"%sLease\" : %016x\n", prefix, kv.GetLease())
	} else {
		fmt.Fprintf(p.w, "\"%sLease\" : %d\n", prefix, kv.GetLease())
	}
}

func (p *fieldsPrinter) hdr(h *pb.ResponseHeader) {
	p.idField("ClusterID", h.GetClusterId())
	p.idField("MemberID", h.GetMemberId())
	// Only key-value responses carry a revision; hide it elsewhere.
	if h.GetRevision() > 0 {
		fmt.Fprintln(p.w, `"Revision" :`, h.GetRevision())
	}
	fmt.Fprintln(p.w, `"RaftTerm" :`, h.GetRaftTerm())
}

// idField prints a cluster or member ID: in decimal, or with --hex in
// hex without padding.
func (p *fieldsPrinter) idField(name string, id uint64) {
	if p.isHex {
		fmt.Fprintf(p.w, "\"%s\" : %s\n", name, types.ID(id))
	} else {
		fmt.Fprintf(p.w, "\"%s\" : %d\n", name, id)
	}
}

// id prints a lease ID: in decimal, or with --hex in 16 hex digits.
func (p *fieldsPrinter) id(id int64) {
	if p.isHex {
		fmt.Fprintf(p.w, "\"ID\" : %016x\n", id)
	} else {
		fmt.Fprintln(p.w, `"ID" :`, id)
	}
}

func (p *fieldsPrinter) Del(r *clientv3.DeleteResponse) error {
	resp := (*pb.DeleteRangeResponse)(r)
	p.hdr(resp.GetHeader())
	fmt.Fprintln(p.w, `"Deleted" :`, resp.GetDeleted())
	for _, kv := range resp.GetPrevKvs() {
		p.kv("Prev", kv)
	}
	return nil
}

func (p *fieldsPrinter) Get(r *clientv3.GetResponse) error {
	resp := (*pb.RangeResponse)(r)
	p.hdr(resp.GetHeader())
	for _, kv := range resp.GetKvs() {
		p.kv("", kv)
	}
	fmt.Fprintln(p.w, `"More" :`, resp.GetMore())
	fmt.Fprintln(p.w, `"Count" :`, resp.GetCount())
	return nil
}

func (p *fieldsPrinter) Put(r *clientv3.PutResponse) error {
	resp := (*pb.PutResponse)(r)
	p.hdr(resp.GetHeader())
	if resp.GetPrevKv() != nil {
		p.kv("Prev", resp.GetPrevKv())
	}
	return nil
}

func (p *fieldsPrinter) Txn(r *clientv3.TxnResponse) error {
	resp := (*pb.TxnResponse)(r)
	p.hdr(resp.GetHeader())
	fmt.Fprintln(p.w, `"Succeeded" :`, resp.GetSucceeded())
	for _, op := range resp.GetResponses() {
		switch v := op.GetResponse().(type) {
		case *pb.ResponseOp_ResponseDeleteRange:
			_ = p.Del((*clientv3.DeleteResponse)(v.ResponseDeleteRange))
		case *pb.ResponseOp_ResponsePut:
			_ = p.Put((*clientv3.PutResponse)(v.ResponsePut))
		case *pb.ResponseOp_ResponseRange:
			_ = p.Get((*clientv3.GetResponse)(v.ResponseRange))
		default:
			fmt.Fprintf(p.w, "\"Unknown\" : %q\n", fmt.Sprintf("%+v", v))
		}
	}
	return nil
}

func (p *fieldsPrinter) Watch(r *clientv3.WatchResponse) error {
	if r == nil {
		return nil
	}
	p.hdr(r.Header)
	for _, ev := range r.Events {
		fmt.Fprintln(p.w, `"Type" :`, ev.GetType())
		if ev.GetPrevKv() != nil {
			p.kv("Prev", ev.GetPrevKv())
		}
		p.kv("", ev.GetKv())
	}
	return nil
}

func (p *fieldsPrinter) Grant(r *clientv3.LeaseGrantResponse) error {
	p.hdr(r.ResponseHeader)
	p.id(int64(r.ID))
	fmt.Fprintln(p.w, `"TTL" :`, r.TTL)
	return nil
}

func (p *fieldsPrinter) Revoke(_ clientv3.LeaseID, r *clientv3.LeaseRevokeResponse) error {
	p.hdr((*pb.LeaseRevokeResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) KeepAlive(r *clientv3.LeaseKeepAliveResponse) error {
	p.hdr(r.ResponseHeader)
	p.id(int64(r.ID))
	fmt.Fprintln(p.w, `"TTL" :`, r.TTL)
	return nil
}

func (p *fieldsPrinter) TimeToLive(r *clientv3.LeaseTimeToLiveResponse, _ bool) error {
	p.hdr(r.ResponseHeader)
	p.id(int64(r.ID))
	fmt.Fprintln(p.w, `"TTL" :`, r.TTL)
	fmt.Fprintln(p.w, `"GrantedTTL" :`, r.GrantedTTL)
	for _, k := range r.Keys {
		fmt.Fprintf(p.w, "\"Key\" : %q\n", string(k))
	}
	return nil
}

func (p *fieldsPrinter) Leases(r *clientv3.LeaseLeasesResponse) error {
	p.hdr(r.ResponseHeader)
	for _, l := range r.Leases {
		p.id(int64(l.ID))
	}
	return nil
}

func (p *fieldsPrinter) MemberList(r *clientv3.MemberListResponse) error {
	resp := (*pb.MemberListResponse)(r)
	p.hdr(resp.GetHeader())
	for _, m := range resp.GetMembers() {
		p.idField("ID", m.GetID())
		fmt.Fprintf(p.w, "\"Name\" : %q\n", m.GetName())
		for _, u := range m.GetPeerURLs() {
			fmt.Fprintf(p.w, "\"PeerURL\" : %q\n", u)
		}
		for _, u := range m.GetClientURLs() {
			fmt.Fprintf(p.w, "\"ClientURL\" : %q\n", u)
		}
		fmt.Fprintln(p.w, `"IsLearner" :`, m.GetIsLearner())
		fmt.Fprintln(p.w)
	}
	return nil
}

func (p *fieldsPrinter) EndpointHealth(hs []epHealth) error {
	for _, h := range hs {
		fmt.Fprintf(p.w, "\"Endpoint\" : %q\n", h.Ep)
		fmt.Fprintln(p.w, `"Health" :`, h.Health)
		fmt.Fprintln(p.w, `"Took" :`, h.Took)
		fmt.Fprintln(p.w, `"Error" :`, h.Error)
		fmt.Fprintln(p.w)
	}
	return nil
}

func (p *fieldsPrinter) EndpointStatus(sts []epStatus) error {
	for _, st := range sts {
		r := (*pb.StatusResponse)(st.Resp)
		p.hdr(r.GetHeader())
		fmt.Fprintf(p.w, "\"Version\" : %q\n", r.GetVersion())
		fmt.Fprintf(p.w, "\"StorageVersion\" : %q\n", r.GetStorageVersion())
		fmt.Fprintln(p.w, `"DBSize" :`, r.GetDbSize())
		fmt.Fprintln(p.w, `"DBSizeInUse" :`, r.GetDbSizeInUse())
		fmt.Fprintln(p.w, `"DBSizeQuota" :`, r.GetDbSizeQuota())
		fmt.Fprintln(p.w, `"Leader" :`, r.GetLeader())
		fmt.Fprintln(p.w, `"IsLearner" :`, r.GetIsLearner())
		fmt.Fprintln(p.w, `"RaftIndex" :`, r.GetRaftIndex())
		fmt.Fprintln(p.w, `"RaftAppliedIndex" :`, r.GetRaftAppliedIndex())
		fmt.Fprintln(p.w, `"Errors" :`, r.GetErrors())
		fmt.Fprintf(p.w, "\"Endpoint\" : %q\n", st.Ep)
		fmt.Fprintf(p.w, "\"DowngradeTargetVersion\" : %q\n", r.GetDowngradeInfo().GetTargetVersion())
		fmt.Fprintln(p.w, `"DowngradeEnabled" :`, r.GetDowngradeInfo().GetEnabled())
		fmt.Fprintln(p.w)
	}
	return nil
}

func (p *fieldsPrinter) EndpointHashKV(hs []epHashKV) error {
	for _, h := range hs {
		r := (*pb.HashKVResponse)(h.Resp)
		p.hdr(r.GetHeader())
		fmt.Fprintf(p.w, "\"Endpoint\" : %q\n", h.Ep)
		fmt.Fprintln(p.w, `"Hash" :`, r.GetHash())
		fmt.Fprintln(p.w, `"HashRevision" :`, r.GetHashRevision())
		fmt.Fprintln(p.w)
	}
	return nil
}

func (p *fieldsPrinter) Alarm(r *clientv3.AlarmResponse) error {
	resp := (*pb.AlarmResponse)(r)
	p.hdr(resp.GetHeader())
	for _, a := range resp.GetAlarms() {
		p.idField("MemberID", a.GetMemberID())
		fmt.Fprintln(p.w, `"AlarmType" :`, a.GetAlarm())
		fmt.Fprintln(p.w)
	}
	return nil
}

// The auth results print their header only, but for a role's permissions
// and the role list.

func (p *fieldsPrinter) RoleAdd(_ string, r *clientv3.AuthRoleAddResponse) error {
	p.hdr((*pb.AuthRoleAddResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) RoleGet(_ string, r *clientv3.AuthRoleGetResponse) error {
	resp := (*pb.AuthRoleGetResponse)(r)
	p.hdr(resp.GetHeader())
	for _, perm := range resp.GetPerm() {
		// Two spaces after the colon: etcdctl prints the label with its
		// trailing space as a separate Println operand.
		fmt.Fprintln(p.w, `"PermType" : `, perm.GetPermType().String())
		fmt.Fprintf(p.w, "\"Key\" : %q\n", string(perm.GetKey()))
		fmt.Fprintf(p.w, "\"RangeEnd\" : %q\n", string(perm.GetRangeEnd()))
	}
	return nil
}

func (p *fieldsPrinter) RoleDelete(_ string, r *clientv3.AuthRoleDeleteResponse) error {
	p.hdr((*pb.AuthRoleDeleteResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) RoleList(r *clientv3.AuthRoleListResponse) error {
	resp := (*pb.AuthRoleListResponse)(r)
	p.hdr(resp.GetHeader())
	fmt.Fprint(p.w, `"Roles" :`)
	for _, role := range resp.GetRoles() {
		fmt.Fprintf(p.w, " %q", role)
	}
	fmt.Fprintln(p.w)
	return nil
}

func (p *fieldsPrinter) RoleGrantPermission(_ string, r *clientv3.AuthRoleGrantPermissionResponse) error {
	p.hdr((*pb.AuthRoleGrantPermissionResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) RoleRevokePermission(_, _, _ string, r *clientv3.AuthRoleRevokePermissionResponse) error {
	p.hdr((*pb.AuthRoleRevokePermissionResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) UserAdd(_ string, r *clientv3.AuthUserAddResponse) error {
	p.hdr((*pb.AuthUserAddResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) UserChangePassword(r *clientv3.AuthUserChangePasswordResponse) error {
	p.hdr((*pb.AuthUserChangePasswordResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) UserGrantRole(_, _ string, r *clientv3.AuthUserGrantRoleResponse) error {
	p.hdr((*pb.AuthUserGrantRoleResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) UserRevokeRole(_, _ string, r *clientv3.AuthUserRevokeRoleResponse) error {
	p.hdr((*pb.AuthUserRevokeRoleResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) UserDelete(_ string, r *clientv3.AuthUserDeleteResponse) error {
	p.hdr((*pb.AuthUserDeleteResponse)(r).GetHeader())
	return nil
}
