package coord

import (
	"context"
	"errors"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairnkv/cairn/api/v3electionpb"
)

// ErrMissingLeaderKey is etcd's answer to a Proclaim or Resign without
// its "leader" field.
var ErrMissingLeaderKey = errors.New(`"leader" field must be provided`)

// electionServer serves v3electionpb.Election with a
// concurrency.Election per call. A LeaderKey names a candidacy (its key,
// create revision and lease), so any call can resume it.
type electionServer struct {
	v3electionpb.UnimplementedElectionServer
	c *client
}

// Campaign waits until req.Value's candidacy leads the election. A
// candidacy that fails (its lease expired, the caller went away) leaves
// no key behind.
func (es *electionServer) Campaign(ctx context.Context, req *v3electionpb.CampaignRequest) (*v3electionpb.CampaignResponse, error) {
	s, err := es.c.session(ctx, req.Lease)
	if err != nil {
		return nil, err
	}
	e := concurrency.NewElection(s, string(req.Name))
	if err := e.Campaign(ctx, string(req.Value)); err != nil {
		return nil, err
	}
	return &v3electionpb.CampaignResponse{
		Header: e.Header(),
		Leader: &v3electionpb.LeaderKey{Name: req.Name, Key: []byte(e.Key()), Rev: e.Rev(), Lease: int64(s.Lease())},
	}, nil
}

// Proclaim changes the leader's value; a caller that no longer leads gets
// "election: not leader".
func (es *electionServer) Proclaim(ctx context.Context, req *v3electionpb.ProclaimRequest) (*v3electionpb.ProclaimResponse, error) {
	e, err := es.resume(ctx, req.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Proclaim(ctx, string(req.Value)); err != nil {
		return nil, err
	}
	return &v3electionpb.ProclaimResponse{Header: e.Header()}, nil
}

// Resign ends a candidacy by deleting its key if it is still the one the
// LeaderKey names.
func (es *electionServer) Resign(ctx context.Context, req *v3electionpb.ResignRequest) (*v3electionpb.ResignResponse, error) {
	e, err := es.resume(ctx, req.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Resign(ctx); err != nil {
		return nil, err
	}
	return &v3electionpb.ResignResponse{Header: e.Header()}, nil
}

// Leader returns the current leader's key and value, or "election: no
// leader".
func (es *electionServer) Leader(ctx context.Context, req *v3electionpb.LeaderRequest) (*v3electionpb.LeaderResponse, error) {
	s, err := es.c.session(ctx, -1)
	if err != nil {
		return nil, err
	}
	resp, err := concurrency.NewElection(s, string(req.Name)).Leader(ctx)
	if err != nil {
		return nil, err
	}
	return &v3electionpb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}, nil
}

// Observe streams the leader and every change of leader or value until
// the caller goes away.
func (es *electionServer) Observe(req *v3electionpb.LeaderRequest, stream v3electionpb.Election_ObserveServer) error {
	ctx := stream.Context()
	s, err := es.c.session(ctx, -1)
	if err != nil {
		return err
	}
	ch := concurrency.NewElection(s, string(req.Name)).Observe(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-ch:
			if !ok {
				// The observer gave up (ctx ended or a read failed).
				return ctx.Err()
			}
			if err := stream.Send(&v3electionpb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
				return err
			}
		}
	}
}

func (es *electionServer) resume(ctx context.Context, lk *v3electionpb.LeaderKey) (*concurrency.Election, error) {
	if lk == nil {
		return nil, ErrMissingLeaderKey
	}
	s, err := es.c.session(ctx, lk.Lease)
	if err != nil {
		return nil, err
	}
	return concurrency.ResumeElection(s, string(lk.Name), string(lk.Key), lk.Rev), nil
}
