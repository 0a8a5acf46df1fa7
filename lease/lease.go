// Package lease owns leases: which exist, their TTLs, the keys attached to
// each, and (on the leader) when each expires.
//
// The lease set and the attachments are replicated state: they change only
// when the apply loop applies a Grant, Revoke or Put entry, inside that
// entry's engine batch. Expiry is not: only the leader (the "primary")
// keeps deadlines, renews them on KeepAlive, and reports expired leases so
// the server proposes their revocation through the log. A member that
// becomes primary gives every lease a fresh full TTL, so a restart or a
// leader change never expires leases in a burst; a lease therefore always
// lives at least its remaining TTL.
//
// The package never deletes keys itself: Revoke returns the attached keys
// and the apply loop deletes them in the same revision.
//
// Engine keys: 'l' id(8) -> ttl (uvarint); 'a' id(8) userKey -> "" (the
// attachment index, so revoking or listing a lease's keys reads only its
// own keys).
package lease

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cairnkv/cairn/storage"
)

// MaxTTL is the largest TTL etcd accepts (9,000,000,000 s).
const MaxTTL = 9000000000

// Errors.
var (
	ErrNotFound    = errors.New("lease: lease not found")
	ErrExists      = errors.New("lease: lease already exists")
	ErrTTLTooLarge = errors.New("lease: TTL is too large")
	ErrNotPrimary  = errors.New("lease: not the primary lessor")
)

const (
	prefixLease  = 'l'
	prefixAttach = 'a'
)

// Lease is one lease as the lessor sees it.
type Lease struct {
	ID  int64
	TTL int64
	// expiry is meaningful only on the primary.
	expiry time.Time
	// revoking is when the primary last asked for this lease's revocation.
	revoking time.Time
}

// Lessor tracks leases.
type Lessor struct {
	mu      sync.RWMutex
	leases  map[int64]*Lease
	minTTL  int64
	primary bool
	now     func() time.Time
}

// New loads the leases stored in r. minTTL is the smallest TTL granted
// (etcd uses 1.5 election timeouts, rounded up to seconds).
func New(r storage.Reader, minTTL int64) (*Lessor, error) {
	l := &Lessor{leases: map[int64]*Lease{}, minTTL: minTTL, now: time.Now}
	return l, l.Reload(r)
}

// Reload replaces the lease set with the one stored in r (after a
// snapshot restore). On the primary every lease gets a full TTL.
func (l *Lessor) Reload(r storage.Reader) error {
	leases := map[int64]*Lease{}
	it, err := r.NewIter([]byte{prefixLease}, []byte{prefixLease + 1})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 9 {
			return fmt.Errorf("lease: malformed key %x", k)
		}
		ttl, n := binary.Uvarint(it.Value())
		if n <= 0 {
			return fmt.Errorf("lease: malformed record for %x", k)
		}
		id := int64(binary.BigEndian.Uint64(k[1:]))
		leases[id] = &Lease{ID: id, TTL: int64(ttl)}
	}
	if err := it.Error(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, le := range leases {
		le.expiry = now.Add(time.Duration(le.TTL) * time.Second)
	}
	l.leases = leases
	return nil
}

func leaseKey(id int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixLease}, uint64(id))
}

func attachPrefix(id int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixAttach}, uint64(id))
}

// Grant creates lease id with ttl seconds (raised to the minimum TTL).
func (l *Lessor) Grant(b storage.Batch, id, ttl int64) (*Lease, error) {
	if ttl > MaxTTL {
		return nil, ErrTTLTooLarge
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.leases[id]; ok {
		return nil, ErrExists
	}
	if ttl < l.minTTL {
		ttl = l.minTTL
	}
	if err := b.Set(leaseKey(id), binary.AppendUvarint(nil, uint64(ttl))); err != nil {
		return nil, err
	}
	le := &Lease{ID: id, TTL: ttl}
	if l.primary {
		le.expiry = l.now().Add(time.Duration(ttl) * time.Second)
	}
	l.leases[id] = le
	return le, nil
}

// Revoke removes lease id and returns the keys attached to it, which the
// caller must delete in the same batch.
func (l *Lessor) Revoke(b storage.Batch, id int64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.leases[id]; !ok {
		return nil, ErrNotFound
	}
	keys, err := attachedKeys(b, id)
	if err != nil {
		return nil, err
	}
	p := attachPrefix(id)
	if err := b.DeleteRange(p, binary.BigEndian.AppendUint64([]byte{prefixAttach}, uint64(id)+1)); err != nil {
		return nil, err
	}
	if uint64(id) == ^uint64(0) {
		// No next prefix; delete one by one.
		for _, k := range keys {
			if err := b.Delete(append(bytes.Clone(p), k...)); err != nil {
				return nil, err
			}
		}
	}
	if err := b.Delete(leaseKey(id)); err != nil {
		return nil, err
	}
	delete(l.leases, id)
	return keys, nil
}

// Attach records that key belongs to lease id.
func (l *Lessor) Attach(b storage.Batch, id int64, key []byte) error {
	l.mu.RLock()
	_, ok := l.leases[id]
	l.mu.RUnlock()
	if !ok {
		return ErrNotFound
	}
	return b.Set(append(attachPrefix(id), key...), nil)
}

// Detach forgets that key belongs to lease id.
func (l *Lessor) Detach(b storage.Batch, id int64, key []byte) error {
	return b.Delete(append(attachPrefix(id), key...))
}

// Exists reports whether lease id exists.
func (l *Lessor) Exists(id int64) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.leases[id]
	return ok
}

// Keys returns the keys attached to lease id.
func (l *Lessor) Keys(r storage.Reader, id int64) ([][]byte, error) {
	return attachedKeys(r, id)
}

func attachedKeys(r storage.Reader, id int64) ([][]byte, error) {
	p := attachPrefix(id)
	var upper []byte
	if uint64(id) != ^uint64(0) {
		upper = binary.BigEndian.AppendUint64([]byte{prefixAttach}, uint64(id)+1)
	} else {
		upper = []byte{prefixAttach + 1}
	}
	it, err := r.NewIter(p, upper)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, bytes.Clone(it.Key()[len(p):]))
	}
	return keys, it.Error()
}

// IDs lists the leases in ID order.
func (l *Lessor) IDs() []int64 {
	l.mu.RLock()
	ids := make([]int64, 0, len(l.leases))
	for id := range l.leases {
		ids = append(ids, id)
	}
	l.mu.RUnlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// TimeToLive returns the granted TTL and the remaining seconds of lease id
// (the granted TTL when this member is not primary).
func (l *Lessor) TimeToLive(id int64) (granted, remaining int64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	le, ok := l.leases[id]
	if !ok {
		return 0, 0, ErrNotFound
	}
	if !l.primary {
		return le.TTL, le.TTL, nil
	}
	// Whole seconds left, rounded down as etcd does.
	left := le.expiry.Sub(l.now())
	return le.TTL, max(0, int64(left/time.Second)), nil
}

// Promote makes this lessor primary: every lease gets a full TTL plus
// extend from now.
func (l *Lessor) Promote(extend time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.primary = true
	now := l.now()
	for _, le := range l.leases {
		le.expiry = now.Add(time.Duration(le.TTL)*time.Second + extend)
		le.revoking = time.Time{}
	}
}

// Demote stops tracking expiry.
func (l *Lessor) Demote() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.primary = false
}

// IsPrimary reports whether this lessor tracks expiry.
func (l *Lessor) IsPrimary() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.primary
}

// Renew restarts lease id's TTL and returns it.
func (l *Lessor) Renew(id int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return 0, ErrNotPrimary
	}
	le, ok := l.leases[id]
	if !ok {
		return 0, ErrNotFound
	}
	if !le.revoking.IsZero() || !l.now().Before(le.expiry) {
		// Expired and on its way out: like etcd, do not resurrect it.
		return 0, ErrNotFound
	}
	le.expiry = l.now().Add(time.Duration(le.TTL) * time.Second)
	return le.TTL, nil
}

// Expired returns leases past their deadline that should be revoked now:
// each is returned again only if its revocation has not been applied
// within retry.
func (l *Lessor) Expired(retry time.Duration, limit int) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return nil
	}
	now := l.now()
	var ids []int64
	for id, le := range l.leases {
		if len(ids) >= limit {
			break
		}
		if now.Before(le.expiry) {
			continue
		}
		if !le.revoking.IsZero() && now.Sub(le.revoking) < retry {
			continue
		}
		le.revoking = now
		ids = append(ids, id)
	}
	return ids
}
