package coord

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairnkv/cairn/api/v3lockpb"
)

// lockServer serves v3lockpb.Lock with a concurrency.Mutex per call.
type lockServer struct {
	v3lockpb.UnimplementedLockServer
	c *client
}

// Lock waits until the caller holds the lock named req.Name on behalf of
// req.Lease (a new 60-second lease when 0, as etcd does) and returns the
// key that stands for the holding.
func (ls *lockServer) Lock(ctx context.Context, req *v3lockpb.LockRequest) (*v3lockpb.LockResponse, error) {
	s, err := ls.c.session(ctx, req.Lease)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(s, string(req.Name))
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return &v3lockpb.LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

// Unlock deletes the key Lock returned; the next waiter sees the delete
// and takes the lock. Unlocking a key that is not held is not an error,
// as in etcd.
func (ls *lockServer) Unlock(ctx context.Context, req *v3lockpb.UnlockRequest) (*v3lockpb.UnlockResponse, error) {
	c, err := ls.c.get()
	if err != nil {
		return nil, err
	}
	resp, err := c.Delete(ctx, string(req.Key))
	if err != nil {
		return nil, err
	}
	return &v3lockpb.UnlockResponse{Header: resp.Header}, nil
}

// session wraps lease in a concurrency.Session that does not keep the
// lease alive: keeping it alive is the caller's business, and the holding
// must end when the caller's lease does. Lease 0 grants a new lease
// (the session's default TTL), lease -1 none (for read-only calls).
func (c *client) session(ctx context.Context, lease int64) (*concurrency.Session, error) {
	cli, err := c.get()
	if err != nil {
		return nil, err
	}
	s, err := concurrency.NewSession(cli, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	s.Orphan()
	return s, nil
}
