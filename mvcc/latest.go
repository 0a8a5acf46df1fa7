package mvcc

// latestCacheBytes bounds the latest-version cache: the newest version,
// value included, of about 45,000 recently written keys of 256 bytes
// (the heap it takes is about 1.4 times this, with Go's allocation
// overheads).
const latestCacheBytes = 16 << 20

// latestCache remembers the newest version of recently written keys, so
// that a put (which needs the key's create revision, version, lease and,
// for prev_kv and watchers, value) need not look it up in the engine: that
// lookup, a prefix seek through every level, was a sixth of a member's
// CPU under a put load. It holds live versions only (a delete drops the
// key), which compaction never removes, so compaction cannot make it
// stale. Only the writer uses it, under Store.writeMu; Restore empties it.
type latestCache struct {
	m     map[string]latestEntry
	bytes int
	max   int
}

type latestEntry struct {
	rec record // never a tombstone
	rev revision
}

func newLatestCache(max int) *latestCache {
	return &latestCache{m: map[string]latestEntry{}, max: max}
}

func entryBytes(key string, e latestEntry) int { return len(key) + len(e.rec.value) + 96 }

func (c *latestCache) get(key []byte) (latestEntry, bool) {
	e, ok := c.m[string(key)]
	return e, ok
}

func (c *latestCache) put(key string, e latestEntry) {
	c.drop(key)
	n := entryBytes(key, e)
	if n > c.max/16 {
		return // one huge value would evict too much
	}
	c.m[key] = e
	c.bytes += n
	if c.bytes > c.max {
		// Evict about a tenth, in the map's (random) iteration order.
		for k, old := range c.m {
			if c.bytes <= c.max-c.max/10 {
				break
			}
			delete(c.m, k)
			c.bytes -= entryBytes(k, old)
		}
	}
}

func (c *latestCache) drop(key string) {
	if old, ok := c.m[key]; ok {
		delete(c.m, key)
		c.bytes -= entryBytes(key, old)
	}
}

func (c *latestCache) reset() {
	clear(c.m)
	c.bytes = 0
}

// overlayEntry is a transaction's own change to a key's newest version,
// applied to the cache once the transaction commits; a nil entry means
// the key was deleted.
type overlayEntry struct {
	key string
	e   *latestEntry
}
