// Package membership owns the replicated list of cluster members: who
// they are (ID, name), where to reach them (peer and client URLs), whether
// each is a learner, and which IDs were removed and may never return.
//
// The list changes only when the apply loop applies a membership change
// (a raft ConfChange, whose Context carries the member) or a member's
// attribute update, inside that entry's engine batch, so every member
// holds the same list at the same log index. It never talks to the
// network and never decides a change: the server validates requests and
// proposes them.
//
// Engine keys: 'm' "member/" id(8) -> JSON member; 'm' "removed/" id(8).
package membership

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/storage"
)

// Errors of membership changes, mapped to etcd's by the api package.
var (
	ErrIDExists      = errors.New("membership: member ID already exists")
	ErrIDRemoved     = errors.New("membership: member ID removed")
	ErrIDNotFound    = errors.New("membership: member not found")
	ErrPeerURLExists = errors.New("membership: peer URL already exists")
	ErrNotLearner    = errors.New("membership: member is not a learner")
	// ErrLearnerNotReady: a learner may be promoted only once its log is
	// close to the leader's.
	ErrLearnerNotReady = errors.New("membership: learner is not in sync with the leader")
	// ErrNotEnoughStarted: the change would leave fewer started voters
	// than a quorum (--strict-reconfig-check).
	ErrNotEnoughStarted = errors.New("membership: re-configuration would lose the quorum of started members")
	// ErrTooManyLearners: the cluster already has --max-learners learners.
	ErrTooManyLearners = errors.New("membership: too many learner members in cluster")
)

// DefaultMaxLearners is etcd's --max-learners default.
const DefaultMaxLearners = 1

// Member is one member of the cluster.
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// Clone returns a deep copy.
func (m *Member) Clone() *Member {
	c := *m
	c.PeerURLs = append([]string(nil), m.PeerURLs...)
	c.ClientURLs = append([]string(nil), m.ClientURLs...)
	return &c
}

var (
	memberPrefix  = []byte("mmember/")
	removedPrefix = []byte("mremoved/")
	downgradeKey  = []byte("mdowngrade")
)

// Downgrade is the cluster's downgrade state (etcd's DowngradeInfo):
// whether a downgrade is enabled, and to which cluster version
// ("3.6.0").
type Downgrade struct {
	Enabled bool   `json:"enabled"`
	Target  string `json:"target-version,omitempty"`
}

func key(prefix []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), id)
}

func upper(prefix []byte) []byte {
	u := append([]byte(nil), prefix...)
	u[len(u)-1]++
	return u
}

// Cluster is the member list.
type Cluster struct {
	// maxLearners bounds the learners (--max-learners); 0 means
	// DefaultMaxLearners.
	maxLearners int

	mu        sync.RWMutex
	members   map[uint64]*Member
	removed   map[uint64]bool
	downgrade Downgrade
}

// Load reads the member list from r.
func Load(r storage.Reader) (*Cluster, error) {
	c := &Cluster{}
	return c, c.Reload(r)
}

// Reload replaces the list with the one stored in r (after a snapshot
// restore).
func (c *Cluster) Reload(r storage.Reader) error {
	members := map[uint64]*Member{}
	removed := map[uint64]bool{}
	it, err := r.NewIter(memberPrefix, upper(memberPrefix))
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		var m Member
		if err := json.Unmarshal(it.Value(), &m); err != nil {
			it.Close()
			return fmt.Errorf("membership: decode %x: %w", it.Key(), err)
		}
		members[m.ID] = &m
	}
	if err := it.Close(); err != nil {
		return err
	}
	it, err = r.NewIter(removedPrefix, upper(removedPrefix))
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		removed[binary.BigEndian.Uint64(k[len(removedPrefix):])] = true
	}
	if err := it.Close(); err != nil {
		return err
	}
	var d Downgrade
	if v, ok, err := r.Get(downgradeKey); err != nil {
		return err
	} else if ok {
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("membership: decode downgrade state: %w", err)
		}
	}
	c.mu.Lock()
	c.members, c.removed, c.downgrade = members, removed, d
	c.mu.Unlock()
	return nil
}

// Downgrade returns the cluster's downgrade state.
func (c *Cluster) Downgrade() Downgrade {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.downgrade
}

// SetDowngrade records the downgrade state in b (an applied
// DowngradeInfoSet entry).
func (c *Cluster) SetDowngrade(b storage.Batch, d Downgrade) error {
	if !d.Enabled {
		d.Target = ""
	}
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if err := b.Set(downgradeKey, v); err != nil {
		return err
	}
	c.mu.Lock()
	c.downgrade = d
	c.mu.Unlock()
	return nil
}

// SetMaxLearners sets --max-learners; call it before any change is
// validated. As in etcd, each member checks with its own setting, so
// every member should have the same one.
func (c *Cluster) SetMaxLearners(n int) { c.maxLearners = n }

// learnerRoom fails with ErrTooManyLearners when adding a learner would
// pass the bound. The caller holds c.mu.
func (c *Cluster) learnerRoom() error {
	max := c.maxLearners
	if max <= 0 {
		max = DefaultMaxLearners
	}
	n := 0
	for _, m := range c.members {
		if m.IsLearner {
			n++
		}
	}
	if n+1 > max {
		return ErrTooManyLearners
	}
	return nil
}

// Members returns copies of the members in ID order.
func (c *Cluster) Members() []*Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member returns a copy of member id, or nil.
func (c *Cluster) Member(id uint64) *Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if m := c.members[id]; m != nil {
		return m.Clone()
	}
	return nil
}

// IsRemoved reports whether id was removed from the cluster.
func (c *Cluster) IsRemoved(id uint64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.removed[id]
}

// Voters counts the members that are not learners.
func (c *Cluster) Voters() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, m := range c.members {
		if !m.IsLearner {
			n++
		}
	}
	return n
}

// ValidateAdd checks that m may join: a fresh ID and peer URLs no member uses.
func (c *Cluster) ValidateAdd(m *Member) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.removed[m.ID] {
		return ErrIDRemoved
	}
	if c.members[m.ID] != nil {
		return ErrIDExists
	}
	if m.IsLearner {
		if err := c.learnerRoom(); err != nil {
			return err
		}
	}
	return c.checkURLs(m.ID, m.PeerURLs)
}

// ValidateUpdate checks that member id may take peerURLs.
func (c *Cluster) ValidateUpdate(id uint64, peerURLs []string) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.removed[id] {
		return ErrIDRemoved
	}
	if c.members[id] == nil {
		return ErrIDNotFound
	}
	return c.checkURLs(id, peerURLs)
}

func (c *Cluster) checkURLs(self uint64, urls []string) error {
	for id, m := range c.members {
		if id == self {
			continue
		}
		for _, u := range m.PeerURLs {
			for _, v := range urls {
				if u == v {
					return ErrPeerURLExists
				}
			}
		}
	}
	return nil
}

// ValidateChange checks a committed membership change against the list
// as it is now. A change that fails is applied as a no-op by every member
// alike (the list is the same everywhere at this index).
func (c *Cluster) ValidateChange(cc *raftpb.ConfChange) error {
	m, err := changeMember(cc)
	if err != nil {
		return err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	id := cc.GetNodeId()
	if c.removed[id] {
		return ErrIDRemoved
	}
	existing := c.members[id]
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeAddNode:
		if existing != nil && !existing.IsLearner {
			return ErrIDExists
		}
		if existing == nil {
			return c.checkURLs(id, m.PeerURLs)
		}
	case raftpb.ConfChangeType_ConfChangeAddLearnerNode:
		if existing != nil {
			return ErrIDExists
		}
		if err := c.learnerRoom(); err != nil {
			return err
		}
		return c.checkURLs(id, m.PeerURLs)
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		if existing == nil {
			return ErrIDNotFound
		}
	case raftpb.ConfChangeType_ConfChangeUpdateNode:
		if existing == nil {
			return ErrIDNotFound
		}
		return c.checkURLs(id, m.PeerURLs)
	}
	return nil
}

// changeMember decodes the member a change's Context carries.
func changeMember(cc *raftpb.ConfChange) (*Member, error) {
	if cc.GetType() == raftpb.ConfChangeType_ConfChangeRemoveNode {
		return &Member{ID: cc.GetNodeId()}, nil
	}
	var m Member
	if err := json.Unmarshal(cc.GetContext(), &m); err != nil {
		return nil, fmt.Errorf("membership: decode change context: %w", err)
	}
	if m.ID != cc.GetNodeId() {
		return nil, fmt.Errorf("membership: change for %x carries member %x", cc.GetNodeId(), m.ID)
	}
	return &m, nil
}

// Context encodes m for a ConfChange's Context.
func Context(m *Member) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // a Member always marshals
	}
	return b
}

// ApplyChange applies a validated membership change in batch b.
func (c *Cluster) ApplyChange(b storage.Batch, cc *raftpb.ConfChange) error {
	m, err := changeMember(cc)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := cc.GetNodeId()
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeAddNode, raftpb.ConfChangeType_ConfChangeAddLearnerNode:
		if existing := c.members[id]; existing != nil {
			// Promotion of a learner: keep its name and client URLs.
			existing.IsLearner = false
			return c.put(b, existing)
		}
		m.IsLearner = cc.GetType() == raftpb.ConfChangeType_ConfChangeAddLearnerNode
		c.members[id] = m
		return c.put(b, m)
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		delete(c.members, id)
		c.removed[id] = true
		if err := b.Delete(key(memberPrefix, id)); err != nil {
			return err
		}
		return b.Set(key(removedPrefix, id), nil)
	case raftpb.ConfChangeType_ConfChangeUpdateNode:
		existing := c.members[id]
		if existing == nil {
			return ErrIDNotFound
		}
		existing.PeerURLs = m.PeerURLs
		return c.put(b, existing)
	}
	return nil
}

// SetAttributes records a member's name and client URLs, which it
// publishes through the log once it runs.
func (c *Cluster) SetAttributes(b storage.Batch, id uint64, name string, clientURLs []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[id]
	if m == nil {
		return nil // removed meanwhile: nothing to record
	}
	m.Name = name
	m.ClientURLs = append([]string(nil), clientURLs...)
	return c.put(b, m)
}

func (c *Cluster) put(b storage.Batch, m *Member) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return b.Set(key(memberPrefix, m.ID), v)
}

// ComputeID is etcd's member ID: the first 8 bytes of SHA-1 over the
// sorted peer URLs, the cluster token and, for members added to a running
// cluster, the time.
func ComputeID(peerURLs []string, token string, now *time.Time) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	b := []byte(strings.Join(urls, "") + token)
	if now != nil {
		b = append(b, fmt.Sprintf("%d", now.Unix())...)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// ClusterID is SHA-1 over the sorted member IDs, as etcd computes it.
func ClusterID(ids []uint64) uint64 {
	sorted := append([]uint64(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b := make([]byte, 0, 8*len(sorted))
	for _, id := range sorted {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}
