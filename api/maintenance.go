package api

import (
	"context"
	"io"
	"os"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc"
)

// StorageVersion is the storage schema version Cairn reports: the one a
// fresh etcd 3.7 member reports.
const StorageVersion = "3.7.0"

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *Server
}

func (m *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	st := m.s.m.Status()
	resp := &pb.StatusResponse{
		Header:           m.s.header(0),
		Version:          version.Version,
		DbSize:           st.DBSize,
		Leader:           st.Leader,
		RaftIndex:        st.RaftIndex,
		RaftTerm:         st.RaftTerm,
		RaftAppliedIndex: st.AppliedIndex,
		Errors:           st.Errors,
		DbSizeInUse:      st.DBSizeInUse,
		StorageVersion:   StorageVersion,
		DbSizeQuota:      st.DBSizeQuota,
		DowngradeInfo:    m.s.m.DowngradeInfo(),
		IsLearner:        m.s.m.IsLearner(),
	}
	for _, a := range m.s.m.Alarms().List(0, pb.AlarmType_NONE) {
		resp.Errors = append(resp.Errors, "memberID:"+formatID(a.MemberID)+" alarm:"+a.Alarm.String()+" ")
	}
	if st.Leader == 0 {
		resp.Errors = append(resp.Errors, rpctypes.ErrGRPCNoLeader.Error())
	}
	return resp, nil
}

func formatID(id uint64) string {
	const digits = "0123456789"
	if id == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for id > 0 {
		i--
		b[i] = digits[id%10]
		id /= 10
	}
	return string(b[i:])
}

func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.Action == pb.AlarmRequest_GET {
		return &pb.AlarmResponse{Header: m.s.header(0), Alarms: m.s.m.Alarms().List(r.MemberID, r.Alarm)}, nil
	}
	resp, _, err := m.s.propose(ctx, &pbInternal{Alarm: r})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.AlarmResponse)
	m.s.fill(out.Header)
	return out, nil
}

// Defragment is never needed (the storage engine reclaims space online as
// it compacts), but it is honoured: it makes the engine reclaim the space
// of deleted data at once, which helps an operator recover from NOSPACE
// with etcd's runbook (compact, defrag, disarm). Like etcd's, the reply
// has no header.
func (m *maintenanceServer) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := m.s.m.Defragment(); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.DefragmentResponse{}, nil
}

func (m *maintenanceServer) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	h, rev, err := m.s.m.Store().Hash()
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashResponse{Header: m.s.header(rev), Hash: h}, nil
}

func (m *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	h, hashRev, compactRev, err := m.s.m.Store().HashKV(r.Revision)
	if err != nil {
		return nil, toGRPC(err)
	}
	if compactRev == 0 {
		compactRev = -1 // etcd's value for a store never compacted
	}
	return &pb.HashKVResponse{Header: m.s.header(0), Hash: h, CompactRevision: compactRev, HashRevision: hashRev}, nil
}

// snapshotChunk is the blob size of each Snapshot message.
const snapshotChunk = 32 * 1024

func (m *maintenanceServer) Snapshot(r *pb.SnapshotRequest, stream grpc.ServerStreamingServer[pb.SnapshotResponse]) error {
	start := time.Now()
	path, rev, remove, err := m.s.m.SnapshotFile()
	if err != nil {
		return toGRPC(err)
	}
	defer remove()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if m.s.opts.Metrics != nil {
		m.s.opts.Metrics.BackendSnapshot.Observe(time.Since(start).Seconds())
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	hdr := m.s.header(rev)
	m.s.lg.Info("sending database snapshot to client", "total-bytes", size, "revision", rev)
	buf := make([]byte, snapshotChunk)
	remaining := size
	for first := true; first || remaining > 0; first = false {
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), remaining)])
		if err != nil && err != io.ErrUnexpectedEOF {
			return err
		}
		remaining -= int64(n)
		resp := &pb.SnapshotResponse{Header: hdr, RemainingBytes: uint64(remaining), Blob: buf[:n], Version: StorageVersion}
		if err := stream.Send(resp); err != nil {
			m.s.lg.Warn("failed to send database snapshot to client", "err", err)
			return err
		}
	}
	m.s.lg.Info("sent database snapshot to client", "total-bytes", size, "took", time.Since(start))
	return nil
}

func (m *maintenanceServer) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	v, err := m.s.m.Downgrade(ctx, r.Action, r.Version)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.DowngradeResponse{Header: m.s.header(0), Version: v}, nil
}

func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := m.s.m.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.MoveLeaderResponse{}, nil // etcd's reply has no header
}
