package membership

import (
	"sort"

	"github.com/cairnkv/cairn/storage"
)

// Removed lists the IDs of removed members in order.
func (c *Cluster) Removed() []uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]uint64, 0, len(c.removed))
	for id := range c.removed {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Replace drops the member list and the removed list from an engine that
// no Cluster has open (a data directory restored from a snapshot, which
// starts a new cluster) and records ms as its members.
func Replace(b storage.Batch, ms []*Member) error {
	for _, p := range [][]byte{memberPrefix, removedPrefix} {
		if err := b.DeleteRange(p, upper(p)); err != nil {
			return err
		}
	}
	c := &Cluster{}
	for _, m := range ms {
		if err := c.put(b, m); err != nil {
			return err
		}
	}
	return nil
}
