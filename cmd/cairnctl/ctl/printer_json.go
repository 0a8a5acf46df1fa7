package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// jsonPrinter prints each result as one line of encoding/json output of the
// etcd API types. That gives etcdctl's quirks for free, and they are part of
// the format scripts parse: 64-bit integers are JSON numbers (not strings as
// in proto3 JSON), bytes are base64, zero fields are omitted, and field names
// are the proto names (cluster_id, mod_revision). With --hex, member IDs and
// header IDs in member responses become hex strings.
type jsonPrinter struct {
	messagePrinter
	isHex bool
}

func newJSONPrinter(w, ew io.Writer, isHex bool) printer {
	emit := func(v any) error {
		printJSON(w, ew, v)
		return nil
	}
	return &jsonPrinter{messagePrinter: messagePrinter{emit: emit, endpoint: emit}, isHex: isHex}
}

// printJSON writes v as one JSON line; an encoding failure is reported on ew
// and is not a command failure.
func printJSON(w, ew io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(ew, "%v\n", err)
		return
	}
	fmt.Fprintln(w, string(b))
}

func (p *jsonPrinter) Txn(r *clientv3.TxnResponse) error {
	return p.emit(txnJSONFromProto((*pb.TxnResponse)(r)))
}

func (p *jsonPrinter) MemberAdd(r *clientv3.MemberAddResponse) error {
	if !p.isHex {
		return p.emit(r)
	}
	return p.emit(&struct {
		Header  *hexHeader   `json:"header"`
		Member  *hexMember   `json:"member"`
		Members []*hexMember `json:"members"`
	}{(*hexHeader)(r.Header), (*hexMember)(r.Member), hexMembers(r.Members)})
}

func (p *jsonPrinter) MemberRemove(_ uint64, r *clientv3.MemberRemoveResponse) error {
	return p.members(r, r.Header, r.Members)
}

func (p *jsonPrinter) MemberUpdate(_ uint64, r *clientv3.MemberUpdateResponse) error {
	return p.members(r, r.Header, r.Members)
}

func (p *jsonPrinter) MemberPromote(_ uint64, r *clientv3.MemberPromoteResponse) error {
	return p.members(r, r.Header, r.Members)
}

func (p *jsonPrinter) MemberList(r *clientv3.MemberListResponse) error {
	return p.members(r, r.Header, r.Members)
}

// members prints a response that is a header and a member list.
func (p *jsonPrinter) members(r any, h *pb.ResponseHeader, ms []*pb.Member) error {
	if !p.isHex {
		return p.emit(r)
	}
	return p.emit(&struct {
		Header  *hexHeader   `json:"header"`
		Members []*hexMember `json:"members"`
	}{(*hexHeader)(h), hexMembers(ms)})
}

// hexHeader is a response header with IDs as hex strings (--hex).
type hexHeader pb.ResponseHeader

// MarshalJSON encodes the IDs in hex.
func (h *hexHeader) MarshalJSON() ([]byte, error) {
	return json.Marshal(&struct {
		ClusterID string `json:"cluster_id"`
		MemberID  string `json:"member_id"`
		Revision  int64  `json:"revision,omitempty"`
		RaftTerm  uint64 `json:"raft_term,omitempty"`
	}{
		ClusterID: strconv.FormatUint(h.ClusterId, 16),
		MemberID:  strconv.FormatUint(h.MemberId, 16),
		Revision:  h.Revision,
		RaftTerm:  h.RaftTerm,
	})
}

// hexMember is a member with its ID as a hex string (--hex).
type hexMember pb.Member

// MarshalJSON encodes the ID in hex.
func (m *hexMember) MarshalJSON() ([]byte, error) {
	return json.Marshal(&struct {
		ID         string   `json:"ID"`
		Name       string   `json:"name,omitempty"`
		PeerURLs   []string `json:"peerURLs,omitempty"`
		ClientURLs []string `json:"clientURLs,omitempty"`
		IsLearner  bool     `json:"isLearner,omitempty"`
	}{
		ID:         strconv.FormatUint(m.ID, 16),
		Name:       m.Name,
		PeerURLs:   m.PeerURLs,
		ClientURLs: m.ClientURLs,
		IsLearner:  m.IsLearner,
	})
}

func hexMembers(ms []*pb.Member) []*hexMember {
	out := make([]*hexMember, len(ms))
	for i, m := range ms {
		out[i] = (*hexMember)(m)
	}
	return out
}

// txnJSON is a txn response in etcdctl's JSON layout. The wire type's oneof
// would encode as an interface; etcdctl names each branch explicitly, under
// a "Response" key.
type txnJSON struct {
	Header    *pb.ResponseHeader `json:"header,omitempty"`
	Succeeded bool               `json:"succeeded,omitempty"`
	Responses []responseOpJSON   `json:"responses,omitempty"`
}

type responseOpJSON struct {
	Response responseOpBranchJSON `json:"Response"`
}

type responseOpBranchJSON struct {
	ResponseRange       *pb.RangeResponse       `json:"response_range,omitempty"`
	ResponsePut         *pb.PutResponse         `json:"response_put,omitempty"`
	ResponseDeleteRange *pb.DeleteRangeResponse `json:"response_delete_range,omitempty"`
	ResponseTxn         *txnJSON                `json:"response_txn,omitempty"`
}

func txnJSONFromProto(r *pb.TxnResponse) txnJSON {
	out := txnJSON{Header: r.GetHeader(), Succeeded: r.GetSucceeded()}
	for _, op := range r.GetResponses() {
		var b responseOpBranchJSON
		switch v := op.Response.(type) {
		case *pb.ResponseOp_ResponseRange:
			b.ResponseRange = v.ResponseRange
		case *pb.ResponseOp_ResponsePut:
			b.ResponsePut = v.ResponsePut
		case *pb.ResponseOp_ResponseDeleteRange:
			b.ResponseDeleteRange = v.ResponseDeleteRange
		case *pb.ResponseOp_ResponseTxn:
			nested := txnJSONFromProto(v.ResponseTxn)
			b.ResponseTxn = &nested
		}
		out.Responses = append(out.Responses, responseOpJSON{Response: b})
	}
	return out
}
