package ctl

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// printer renders command results in one output format (--write-out). A
// format that cannot show a result returns an error with exitBadFeature,
// after the request has been made, as etcdctl does.
type printer interface {
	Del(*clientv3.DeleteResponse) error
	Get(*clientv3.GetResponse) error
	Put(*clientv3.PutResponse) error
	Txn(*clientv3.TxnResponse) error
	Watch(*clientv3.WatchResponse) error

	Grant(*clientv3.LeaseGrantResponse) error
	Revoke(clientv3.LeaseID, *clientv3.LeaseRevokeResponse) error
	KeepAlive(*clientv3.LeaseKeepAliveResponse) error
	TimeToLive(r *clientv3.LeaseTimeToLiveResponse, keys bool) error
	Leases(*clientv3.LeaseLeasesResponse) error

	MemberAdd(*clientv3.MemberAddResponse) error
	MemberRemove(id uint64, r *clientv3.MemberRemoveResponse) error
	MemberUpdate(id uint64, r *clientv3.MemberUpdateResponse) error
	MemberPromote(id uint64, r *clientv3.MemberPromoteResponse) error
	MemberList(*clientv3.MemberListResponse) error

	EndpointHealth([]epHealth) error
	EndpointStatus([]epStatus) error
	EndpointHashKV([]epHashKV) error

	Alarm(*clientv3.AlarmResponse) error
	MoveLeader(leader, target uint64, r *clientv3.MoveLeaderResponse) error
	// Downgrade prints the answer to "downgrade validate", "enable" or
	// "cancel"; action says which.
	Downgrade(action clientv3.DowngradeAction, r *clientv3.DowngradeResponse) error

	// The auth results take the names the command line gave, which the
	// simple format repeats and the responses do not carry.
	RoleAdd(role string, r *clientv3.AuthRoleAddResponse) error
	RoleGet(role string, r *clientv3.AuthRoleGetResponse) error
	RoleDelete(role string, r *clientv3.AuthRoleDeleteResponse) error
	RoleList(*clientv3.AuthRoleListResponse) error
	RoleGrantPermission(role string, r *clientv3.AuthRoleGrantPermissionResponse) error
	RoleRevokePermission(role, key, end string, r *clientv3.AuthRoleRevokePermissionResponse) error

	UserAdd(user string, r *clientv3.AuthUserAddResponse) error
	UserGet(user string, r *clientv3.AuthUserGetResponse) error
	UserList(*clientv3.AuthUserListResponse) error
	UserChangePassword(*clientv3.AuthUserChangePasswordResponse) error
	UserGrantRole(user, role string, r *clientv3.AuthUserGrantRoleResponse) error
	UserRevokeRole(user, role string, r *clientv3.AuthUserRevokeRoleResponse) error
	UserDelete(user string, r *clientv3.AuthUserDeleteResponse) error

	AuthStatus(*clientv3.AuthStatusResponse) error
}

// newPrinter returns the printer for format, or nil for an unknown format.
// Results go to w; the simple printer reports unhealthy endpoints on ew.
func newPrinter(format string, isHex bool, w, ew io.Writer) printer {
	switch format {
	case "simple":
		return &simplePrinter{w: w, ew: ew, isHex: isHex}
	case "fields":
		return &fieldsPrinter{printer: unsupportedPrinter("fields"), w: w, isHex: isHex}
	case "json":
		return newJSONPrinter(w, ew, isHex)
	case "protobuf":
		return newProtobufPrinter(w, ew)
	case "table":
		return &tablePrinter{printer: unsupportedPrinter("table"), w: w}
	}
	return nil
}

// messagePrinter prints each result as one message through emit, handing it
// the wire (etcdserverpb) type where the client type is only a rename of it.
// The json and protobuf printers are built on it.
type messagePrinter struct {
	emit func(any) error
	// endpoint prints endpoint results, which have no wire type.
	endpoint func(any) error
}

func (p *messagePrinter) Del(r *clientv3.DeleteResponse) error {
	return p.emit((*pb.DeleteRangeResponse)(r))
}
func (p *messagePrinter) Get(r *clientv3.GetResponse) error { return p.emit((*pb.RangeResponse)(r)) }
func (p *messagePrinter) Put(r *clientv3.PutResponse) error { return p.emit((*pb.PutResponse)(r)) }
func (p *messagePrinter) Txn(r *clientv3.TxnResponse) error { return p.emit((*pb.TxnResponse)(r)) }
func (p *messagePrinter) Watch(r *clientv3.WatchResponse) error {
	return p.emit(r)
}
func (p *messagePrinter) Grant(r *clientv3.LeaseGrantResponse) error { return p.emit(r) }
func (p *messagePrinter) Revoke(_ clientv3.LeaseID, r *clientv3.LeaseRevokeResponse) error {
	return p.emit(r)
}
func (p *messagePrinter) KeepAlive(r *clientv3.LeaseKeepAliveResponse) error { return p.emit(r) }
func (p *messagePrinter) TimeToLive(r *clientv3.LeaseTimeToLiveResponse, _ bool) error {
	return p.emit(r)
}
func (p *messagePrinter) Leases(r *clientv3.LeaseLeasesResponse) error { return p.emit(r) }
func (p *messagePrinter) MemberAdd(r *clientv3.MemberAddResponse) error {
	return p.emit((*pb.MemberAddResponse)(r))
}
func (p *messagePrinter) MemberRemove(_ uint64, r *clientv3.MemberRemoveResponse) error {
	return p.emit((*pb.MemberRemoveResponse)(r))
}
func (p *messagePrinter) MemberUpdate(_ uint64, r *clientv3.MemberUpdateResponse) error {
	return p.emit((*pb.MemberUpdateResponse)(r))
}
func (p *messagePrinter) MemberPromote(_ uint64, r *clientv3.MemberPromoteResponse) error {
	return p.emit((*pb.MemberPromoteResponse)(r))
}
func (p *messagePrinter) MemberList(r *clientv3.MemberListResponse) error {
	return p.emit((*pb.MemberListResponse)(r))
}
func (p *messagePrinter) Alarm(r *clientv3.AlarmResponse) error {
	return p.emit((*pb.AlarmResponse)(r))
}
func (p *messagePrinter) MoveLeader(_, _ uint64, r *clientv3.MoveLeaderResponse) error {
	return p.emit((*pb.MoveLeaderResponse)(r))
}
func (p *messagePrinter) Downgrade(_ clientv3.DowngradeAction, r *clientv3.DowngradeResponse) error {
	return p.emit((*pb.DowngradeResponse)(r))
}
func (p *messagePrinter) RoleAdd(_ string, r *clientv3.AuthRoleAddResponse) error {
	return p.emit((*pb.AuthRoleAddResponse)(r))
}
func (p *messagePrinter) RoleGet(_ string, r *clientv3.AuthRoleGetResponse) error {
	return p.emit((*pb.AuthRoleGetResponse)(r))
}
func (p *messagePrinter) RoleDelete(_ string, r *clientv3.AuthRoleDeleteResponse) error {
	return p.emit((*pb.AuthRoleDeleteResponse)(r))
}
func (p *messagePrinter) RoleList(r *clientv3.AuthRoleListResponse) error {
	return p.emit((*pb.AuthRoleListResponse)(r))
}
func (p *messagePrinter) RoleGrantPermission(_ string, r *clientv3.AuthRoleGrantPermissionResponse) error {
	return p.emit((*pb.AuthRoleGrantPermissionResponse)(r))
}
func (p *messagePrinter) RoleRevokePermission(_, _, _ string, r *clientv3.AuthRoleRevokePermissionResponse) error {
	return p.emit((*pb.AuthRoleRevokePermissionResponse)(r))
}
func (p *messagePrinter) UserAdd(_ string, r *clientv3.AuthUserAddResponse) error {
	return p.emit((*pb.AuthUserAddResponse)(r))
}
func (p *messagePrinter) UserGet(_ string, r *clientv3.AuthUserGetResponse) error {
	return p.emit((*pb.AuthUserGetResponse)(r))
}
func (p *messagePrinter) UserList(r *clientv3.AuthUserListResponse) error {
	return p.emit((*pb.AuthUserListResponse)(r))
}
func (p *messagePrinter) UserChangePassword(r *clientv3.AuthUserChangePasswordResponse) error {
	return p.emit((*pb.AuthUserChangePasswordResponse)(r))
}
func (p *messagePrinter) UserGrantRole(_, _ string, r *clientv3.AuthUserGrantRoleResponse) error {
	return p.emit((*pb.AuthUserGrantRoleResponse)(r))
}
func (p *messagePrinter) UserRevokeRole(_, _ string, r *clientv3.AuthUserRevokeRoleResponse) error {
	return p.emit((*pb.AuthUserRevokeRoleResponse)(r))
}
func (p *messagePrinter) UserDelete(_ string, r *clientv3.AuthUserDeleteResponse) error {
	return p.emit((*pb.AuthUserDeleteResponse)(r))
}
func (p *messagePrinter) AuthStatus(r *clientv3.AuthStatusResponse) error {
	return p.emit((*pb.AuthStatusResponse)(r))
}
func (p *messagePrinter) EndpointHealth(r []epHealth) error { return p.endpoint(r) }
func (p *messagePrinter) EndpointStatus(r []epStatus) error { return p.endpoint(r) }
func (p *messagePrinter) EndpointHashKV(r []epHashKV) error { return p.endpoint(r) }

// unsupportedPrinter fails every result with "<format> not supported as
// output format"; printers embed it for what they cannot show.
func unsupportedPrinter(format string) printer {
	f := func(any) error {
		return failf(exitBadFeature, "%s not supported as output format", format)
	}
	return &messagePrinter{emit: f, endpoint: f}
}

// epHealth is the health of one endpoint, as "endpoint health" reports it.
type epHealth struct {
	Ep     string `json:"endpoint"`
	Health bool   `json:"health"`
	Took   string `json:"took"`
	Error  string `json:"error,omitempty"`
}

// epStatus is one endpoint's status response.
type epStatus struct {
	Ep   string                   `json:"Endpoint"`
	Resp *clientv3.StatusResponse `json:"Status"`
}

// epHashKV is one endpoint's KV hash response.
type epHashKV struct {
	Ep   string                   `json:"Endpoint"`
	Resp *clientv3.HashKVResponse `json:"HashKV"`
}

// printKV prints a key and its value on separate lines, or only the value.
func printKV(w io.Writer, isHex, valueOnly bool, kv *mvccpb.KeyValue) {
	k, v := string(kv.GetKey()), string(kv.GetValue())
	if isHex {
		k, v = hexEscape(kv.GetKey()), hexEscape(kv.GetValue())
	}
	if !valueOnly {
		fmt.Fprintln(w, k)
	}
	fmt.Fprintln(w, v)
}

// hexEscape writes every byte as \xNN, the --hex form of keys and values.
func hexEscape(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	sb.Grow(2 * len(h))
	for i := 0; i < len(h); i += 2 {
		sb.WriteString(`\x`)
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// memberListTable is the member list as the simple and table formats show it.
func memberListTable(r *clientv3.MemberListResponse) (hdr []string, rows [][]string) {
	hdr = []string{"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"}
	if r == nil {
		return hdr, nil
	}
	for _, m := range r.Members {
		status := "started"
		if m.Name == "" {
			// A member that was added but has not joined has no name yet.
			status = "unstarted"
		}
		rows = append(rows, []string{
			strconv.FormatUint(m.ID, 16),
			status,
			m.Name,
			strings.Join(m.PeerURLs, ","),
			strings.Join(m.ClientURLs, ","),
			strconv.FormatBool(m.IsLearner),
		})
	}
	return hdr, rows
}

func endpointHealthTable(hs []epHealth) (hdr []string, rows [][]string) {
	hdr = []string{"endpoint", "health", "took", "error"}
	for _, h := range hs {
		rows = append(rows, []string{h.Ep, strconv.FormatBool(h.Health), h.Took, h.Error})
	}
	return hdr, rows
}

func endpointStatusTable(sts []epStatus) (hdr []string, rows [][]string) {
	hdr = []string{
		"endpoint", "ID", "version", "storage version", "db size", "in use", "percentage not in use", "quota",
		"is leader", "is learner", "raft term", "raft index", "raft applied index", "errors",
		"downgrade target version", "downgrade enabled",
	}
	for _, st := range sts {
		r := (*pb.StatusResponse)(st.Resp)
		rows = append(rows, []string{
			st.Ep,
			strconv.FormatUint(r.GetHeader().GetMemberId(), 16),
			r.GetVersion(),
			r.GetStorageVersion(),
			humanize.Bytes(uint64(r.GetDbSize())),
			humanize.Bytes(uint64(r.GetDbSizeInUse())),
			percentNotInUse(r.GetDbSize(), r.GetDbSizeInUse()),
			humanize.Bytes(uint64(r.GetDbSizeQuota())),
			strconv.FormatBool(r.GetLeader() == r.GetHeader().GetMemberId()),
			strconv.FormatBool(r.GetIsLearner()),
			strconv.FormatUint(r.GetRaftTerm(), 10),
			strconv.FormatUint(r.GetRaftIndex(), 10),
			strconv.FormatUint(r.GetRaftAppliedIndex(), 10),
			strings.Join(r.GetErrors(), ", "),
			r.GetDowngradeInfo().GetTargetVersion(),
			strconv.FormatBool(r.GetDowngradeInfo().GetEnabled()),
		})
	}
	return hdr, rows
}

// percentNotInUse is 100 - inUse*100/size in integer arithmetic, as etcdctl
// computes it. etcdctl divides by zero on an empty size; we print 0%.
func percentNotInUse(size, inUse int64) string {
	if size == 0 {
		return "0%"
	}
	return strconv.FormatInt(100-inUse*100/size, 10) + "%"
}

func endpointHashKVTable(hs []epHashKV) (hdr []string, rows [][]string) {
	hdr = []string{"endpoint", "hash", "hash_revision"}
	for _, h := range hs {
		r := (*pb.HashKVResponse)(h.Resp)
		rows = append(rows, []string{
			h.Ep,
			strconv.FormatUint(uint64(r.GetHash()), 10),
			strconv.FormatInt(r.GetHashRevision(), 10),
		})
	}
	return hdr, rows
}
