package ctl

// Fixed responses for the printer golden tests. The golden files under
// testdata/printer were produced by etcdctl 3.7.3's own printers
// (go.etcd.io/etcd/etcdctl/v3/ctlv3/command.NewPrinter) fed these same
// responses: see testdata/printer/README. Keep this file free of anything
// but the etcd API types, so that the generator can compile a copy of it.

import (
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	fxClusterID = 11719786675247131710
	fxMemberID  = 14066998107533581350
	fxLeaseID   = 0x694d77aa9e38260f
)

func fxHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: fxClusterID, MemberId: fxMemberID, Revision: 7, RaftTerm: 2}
}

func fxKV() *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte("foo"), Value: []byte("bar"), CreateRevision: 2, ModRevision: 5, Version: 3, Lease: fxLeaseID}
}

func fxBinaryKV() *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte("k\x00\xff \"q\""), Value: []byte("line1\nline2\t"), CreateRevision: 6, ModRevision: 7, Version: 1}
}

func fxGet() *clientv3.GetResponse {
	return &clientv3.GetResponse{Header: fxHeader(), Kvs: []*mvccpb.KeyValue{fxKV(), fxBinaryKV()}, More: true, Count: 3}
}

func fxGetEmpty() *clientv3.GetResponse {
	return &clientv3.GetResponse{Header: fxHeader()}
}

func fxPut() *clientv3.PutResponse {
	return &clientv3.PutResponse{Header: fxHeader(), PrevKv: fxKV()}
}

func fxDel() *clientv3.DeleteResponse {
	return &clientv3.DeleteResponse{Header: fxHeader(), Deleted: 2, PrevKvs: []*mvccpb.KeyValue{fxKV(), fxBinaryKV()}}
}

func fxTxn(succeeded bool) *clientv3.TxnResponse {
	inner := &pb.ResponseHeader{Revision: 7}
	return &clientv3.TxnResponse{
		Header:    fxHeader(),
		Succeeded: succeeded,
		Responses: []*pb.ResponseOp{
			{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{Header: inner, Kvs: []*mvccpb.KeyValue{fxKV()}, Count: 1}}},
			{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: inner}}},
			{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{Header: inner, Deleted: 1, PrevKvs: []*mvccpb.KeyValue{fxBinaryKV()}}}},
		},
	}
}

func fxWatch() *clientv3.WatchResponse {
	return &clientv3.WatchResponse{
		Header: fxHeader(),
		Events: []*clientv3.Event{
			{Type: mvccpb.PUT, Kv: fxKV(), PrevKv: fxBinaryKV()},
			{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte("gone"), ModRevision: 7}},
		},
		CompactRevision: 1,
	}
}

func fxGrant() *clientv3.LeaseGrantResponse {
	return &clientv3.LeaseGrantResponse{ResponseHeader: fxHeader(), ID: fxLeaseID, TTL: 60}
}

func fxRevoke() *clientv3.LeaseRevokeResponse {
	return &clientv3.LeaseRevokeResponse{Header: fxHeader()}
}

func fxKeepAlive() *clientv3.LeaseKeepAliveResponse {
	return &clientv3.LeaseKeepAliveResponse{ResponseHeader: fxHeader(), ID: fxLeaseID, TTL: 60}
}

func fxTimeToLive() *clientv3.LeaseTimeToLiveResponse {
	return &clientv3.LeaseTimeToLiveResponse{ResponseHeader: fxHeader(), ID: fxLeaseID, TTL: 42, GrantedTTL: 60, Keys: [][]byte{[]byte("foo"), []byte("k2")}}
}

func fxTimeToLiveExpired() *clientv3.LeaseTimeToLiveResponse {
	return &clientv3.LeaseTimeToLiveResponse{ResponseHeader: fxHeader(), ID: fxLeaseID, TTL: -1}
}

func fxLeases() *clientv3.LeaseLeasesResponse {
	return &clientv3.LeaseLeasesResponse{ResponseHeader: fxHeader(), Leases: []clientv3.LeaseStatus{{ID: fxLeaseID}, {ID: 0x1234}}}
}

func fxMembers() []*pb.Member {
	return []*pb.Member{
		{ID: fxMemberID, Name: "n1", PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379", "http://10.0.0.1:2379"}},
		{ID: 0x3e9a8f7c2b1d0e5f, PeerURLs: []string{"http://127.0.0.1:2480"}, IsLearner: true},
	}
}

func fxMemberHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: fxClusterID, MemberId: fxMemberID, RaftTerm: 2}
}

func fxMemberList() *clientv3.MemberListResponse {
	return &clientv3.MemberListResponse{Header: fxMemberHeader(), Members: fxMembers()}
}

func fxMemberAdd() *clientv3.MemberAddResponse {
	ms := fxMembers()
	return &clientv3.MemberAddResponse{Header: fxMemberHeader(), Member: ms[1], Members: ms}
}

func fxMemberRemove() *clientv3.MemberRemoveResponse {
	return &clientv3.MemberRemoveResponse{Header: fxMemberHeader(), Members: fxMembers()[:1]}
}

func fxMemberUpdate() *clientv3.MemberUpdateResponse {
	return &clientv3.MemberUpdateResponse{Header: fxMemberHeader(), Members: fxMembers()}
}

func fxMemberPromote() *clientv3.MemberPromoteResponse {
	return &clientv3.MemberPromoteResponse{Header: fxMemberHeader(), Members: fxMembers()}
}

func fxAlarm() *clientv3.AlarmResponse {
	return &clientv3.AlarmResponse{Header: fxHeader(), Alarms: []*pb.AlarmMember{
		{MemberID: fxMemberID, Alarm: pb.AlarmType_NOSPACE},
		{MemberID: 0x3e9a8f7c2b1d0e5f, Alarm: pb.AlarmType_CORRUPT},
		{Alarm: pb.AlarmType(9)}, // no member, a type this version does not know
	}}
}

func fxAlarmEmpty() *clientv3.AlarmResponse {
	return &clientv3.AlarmResponse{Header: fxHeader()}
}

func fxMoveLeader() *clientv3.MoveLeaderResponse {
	return &clientv3.MoveLeaderResponse{Header: fxMemberHeader()}
}

// fxPerms are a role's permissions of every shape the printers tell apart:
// a single key, a range, a prefix, a range open at the end, the whole key
// space (as the empty key with --prefix is stored), and a key that needs
// quoting.
func fxPerms() []*authpb.Permission {
	return []*authpb.Permission{
		{PermType: authpb.Permission_READ, Key: []byte("foo")},
		{PermType: authpb.Permission_WRITE, Key: []byte("a"), RangeEnd: []byte("c")},
		{PermType: authpb.Permission_READWRITE, Key: []byte("pre"), RangeEnd: []byte("prf")},
		{PermType: authpb.Permission_READ, Key: []byte("from"), RangeEnd: []byte{0}},
		{PermType: authpb.Permission_WRITE, Key: []byte{0}, RangeEnd: []byte{0}},
		{PermType: authpb.Permission_READWRITE, Key: []byte("k \"q\"\n")},
	}
}

func fxRoleGet() *clientv3.AuthRoleGetResponse {
	return &clientv3.AuthRoleGetResponse{Header: fxHeader(), Perm: fxPerms()}
}

// fxRoleGetNoPerms is a role without permissions: the root role, which
// etcdctl shows as having all of them, or any other.
func fxRoleGetNoPerms() *clientv3.AuthRoleGetResponse {
	return &clientv3.AuthRoleGetResponse{Header: fxHeader()}
}

func fxRoleList() *clientv3.AuthRoleListResponse {
	return &clientv3.AuthRoleListResponse{Header: fxHeader(), Roles: []string{"r1", "root", "with space"}}
}

func fxUserGet() *clientv3.AuthUserGetResponse {
	return &clientv3.AuthUserGetResponse{Header: fxHeader(), Roles: []string{"r1", "root"}}
}

func fxUserGetNoRoles() *clientv3.AuthUserGetResponse {
	return &clientv3.AuthUserGetResponse{Header: fxHeader()}
}

func fxUserList() *clientv3.AuthUserListResponse {
	return &clientv3.AuthUserListResponse{Header: fxHeader(), Users: []string{"alice", "root"}}
}

func fxAuthStatus() *clientv3.AuthStatusResponse {
	return &clientv3.AuthStatusResponse{Header: fxHeader(), Enabled: true, AuthRevision: 12}
}

func fxRoleAdd() *clientv3.AuthRoleAddResponse {
	return &clientv3.AuthRoleAddResponse{Header: fxHeader()}
}
func fxRoleDelete() *clientv3.AuthRoleDeleteResponse {
	return &clientv3.AuthRoleDeleteResponse{Header: fxHeader()}
}
func fxRoleGrant() *clientv3.AuthRoleGrantPermissionResponse {
	return &clientv3.AuthRoleGrantPermissionResponse{Header: fxHeader()}
}
func fxRoleRevoke() *clientv3.AuthRoleRevokePermissionResponse {
	return &clientv3.AuthRoleRevokePermissionResponse{Header: fxHeader()}
}
func fxUserAdd() *clientv3.AuthUserAddResponse {
	return &clientv3.AuthUserAddResponse{Header: fxHeader()}
}
func fxUserDelete() *clientv3.AuthUserDeleteResponse {
	return &clientv3.AuthUserDeleteResponse{Header: fxHeader()}
}
func fxUserPasswd() *clientv3.AuthUserChangePasswordResponse {
	return &clientv3.AuthUserChangePasswordResponse{Header: fxHeader()}
}
func fxUserGrant() *clientv3.AuthUserGrantRoleResponse {
	return &clientv3.AuthUserGrantRoleResponse{Header: fxHeader()}
}
func fxUserRevoke() *clientv3.AuthUserRevokeRoleResponse {
	return &clientv3.AuthUserRevokeRoleResponse{Header: fxHeader()}
}

func fxDowngrade() *clientv3.DowngradeResponse {
	return &clientv3.DowngradeResponse{Header: fxHeader(), Version: "3.7"}
}
