package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ClusterVersion is the cluster's version as etcd reports it ("3.7.0"):
// this release's, or the target of an enabled downgrade, which etcd's
// leader adopts as the cluster version as soon as the downgrade is
// enabled (Cairn at once, on apply; etcd within a few seconds).
func (s *Server) ClusterVersion() string {
	if d := s.members.Downgrade(); d.Enabled && d.Target != "" {
		return d.Target
	}
	return version.Cluster(version.Version) + ".0"
}

// DowngradeInfo is the downgrade state for Status.
func (s *Server) DowngradeInfo() *pb.DowngradeInfo {
	d := s.members.Downgrade()
	return &pb.DowngradeInfo{Enabled: d.Enabled, TargetVersion: d.Target}
}

// Downgrade answers Maintenance.Downgrade as etcd 3.7 does for a cluster
// whose members all run one version: the only target allowed is one
// minor version below the cluster version; enabling records it (and the
// cluster version becomes it); cancelling clears it, and like etcd
// succeeds even when nothing was enabled. It returns the cluster version
// ("3.7") as etcd's response carries it, taken before the change.
//
// Cairn cannot be replaced member by member with an older etcd (its data
// directory is not etcd's): see docs/OPERATIONS.md for what enabling a
// downgrade means here.
func (s *Server) Downgrade(ctx context.Context, action pb.DowngradeRequest_DowngradeAction, target string) (string, error) {
	if action != pb.DowngradeRequest_CANCEL {
		if _, _, err := downgradeTarget(target); err != nil {
			return "", err
		}
	}
	if err := s.LinearizableRead(ctx); err != nil {
		return "", err
	}
	cv := s.ClusterVersion()
	major, minor, _ := downgradeTarget(cv)
	resp := fmt.Sprintf("%d.%d", major, minor)
	switch action {
	case pb.DowngradeRequest_VALIDATE, pb.DowngradeRequest_ENABLE:
		tmajor, tminor, _ := downgradeTarget(target)
		if tmajor != major || tminor != minor-1 {
			return "", rpctypes.ErrGRPCInvalidDowngradeTargetVersion
		}
		if s.members.Downgrade().Enabled {
			return "", rpctypes.ErrGRPCDowngradeInProcess
		}
		if action == pb.DowngradeRequest_VALIDATE {
			return resp, nil
		}
		ver := fmt.Sprintf("%d.%d.0", tmajor, tminor)
		if _, err := s.proposeDowngrade(ctx, true, ver); err != nil {
			return "", err
		}
		s.lg.Info("downgrade enabled", "target-version", ver)
		return resp, nil
	case pb.DowngradeRequest_CANCEL:
		if !s.members.Downgrade().Enabled {
			s.lg.Warn("failed to cancel downgrade", "error", rpctypes.ErrorDesc(rpctypes.ErrGRPCNoInflightDowngrade))
			return resp, nil
		}
		if _, err := s.proposeDowngrade(ctx, false, ""); err != nil {
			return "", err
		}
		s.lg.Info("downgrade cancelled")
		return resp, nil
	}
	// etcd's errors.ErrUnknownMethod, which reaches the client as Unknown.
	return "", status.Error(codes.Unknown, "etcdserver: unknown method")
}

func (s *Server) proposeDowngrade(ctx context.Context, enabled bool, ver string) (any, error) {
	res, err := s.Propose(ctx, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{Enabled: enabled, Ver: ver}})
	if err != nil {
		return nil, err
	}
	return res.Resp, res.Err
}

// downgradeTarget parses "3.6" or "3.6.x" as etcd does (semver, with
// Major.Minor allowed), keeping major and minor.
func downgradeTarget(v string) (major, minor int, err error) {
	parts := strings.Split(v, ".")
	if len(parts) == 2 {
		parts = append(parts, "0")
	}
	if len(parts) != 3 {
		return 0, 0, rpctypes.ErrGRPCWrongDowngradeVersionFormat
	}
	var nums [3]int
	for i, p := range parts {
		if i == 2 {
			// semver allows a pre-release or build suffix on the patch.
			p, _, _ = strings.Cut(p, "-")
			p, _, _ = strings.Cut(p, "+")
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (len(p) > 1 && p[0] == '0') {
			return 0, 0, rpctypes.ErrGRPCWrongDowngradeVersionFormat
		}
		nums[i] = n
	}
	return nums[0], nums[1], nil
}
