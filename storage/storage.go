// Package storage owns the on-disk key-value engine behind a small
// interface. It knows nothing about revisions, leases or Raft: it stores
// opaque byte keys in order. The mvcc package decides the key layout.
//
// The only implementation is Pebble (an LSM tree), chosen because its
// compactions reclaim space online as a background activity: deleting old
// revisions frees disk without a stop-the-world defragment, and there is no
// fixed ceiling such as bbolt's mmap size. Range reads stream from the LSM,
// so no index of every key has to live in memory.
//
// Durability: the engine runs without its own write-ahead log. Everything
// written here can be recomputed from the Raft log, which is fsynced before
// any client is answered; the engine stores the Raft index it has applied
// (see mvcc) and Flush makes its state durable before the Raft log may be
// truncated. This halves the bytes written per request.
package storage

import "errors"

// ErrClosed is returned by operations on a closed engine.
var ErrClosed = errors.New("storage: engine closed")

// Reader reads keys in byte order.
type Reader interface {
	// Get returns a copy of the value stored at key, and whether it exists.
	Get(key []byte) (value []byte, ok bool, err error)
	// NewIter iterates keys in [lower, upper); a nil bound is open.
	NewIter(lower, upper []byte) (Iterator, error)
	// FirstWithPrefix returns copies of the first key that starts with
	// prefix and its value. prefix must be a Split prefix (see
	// PebbleOptions): every key that starts with it has it as its
	// prefix. The engine then skips, by their bloom filters, the tables
	// that hold no such key. For any other prefix, use NewIter.
	FirstWithPrefix(prefix []byte) (key, value []byte, ok bool, err error)
}

// Iterator walks keys in order. Key and Value are valid only until the
// next positioning call.
type Iterator interface {
	First() bool
	Last() bool
	SeekGE(key []byte) bool
	SeekLT(key []byte) bool
	Next() bool
	Prev() bool
	Valid() bool
	Key() []byte
	Value() []byte
	Error() error
	Close() error
}

// Batch collects writes applied atomically by Commit. Reads through a
// batch see its own uncommitted writes.
type Batch interface {
	Reader
	Set(key, value []byte) error
	Delete(key []byte) error
	DeleteRange(start, end []byte) error
	// Len is the encoded size of the batch in bytes.
	Len() int
	// Commit applies the batch. It does not fsync; see the package doc.
	Commit() error
	// Close releases the batch; it must be called even after Commit.
	Close() error
}

// Snapshot is a frozen view of the engine.
type Snapshot interface {
	Reader
	Close() error
}

// Engine is the storage engine.
type Engine interface {
	Reader
	// NewBatch starts a batch whose reads see its own writes.
	NewBatch() Batch
	// NewWriteBatch starts a write-only batch (cheaper; no reads).
	NewWriteBatch() Batch
	NewSnapshot() Snapshot
	// Flush makes every committed write durable.
	Flush() error
	// Compact flushes and compacts the whole key space, so the space of
	// deleted data is returned to the file system now.
	Compact() error
	// Size reports the store's size (bytes on disk plus memtables) and an
	// estimate of the bytes still live in it.
	Size() (onDisk, live int64)
	Close() error
}

// Stats are an engine's internal figures, for metrics.
type Stats struct {
	// CompactionDebt estimates the bytes the engine's compactions must
	// still rewrite.
	CompactionDebt uint64
	// CacheHits and CacheMisses count block cache lookups.
	CacheHits, CacheMisses int64
	// FilterUseful counts bloom filter checks that spared a block read,
	// FilterMissed those that did not.
	FilterUseful, FilterMissed int64
}

// StatsReporter is an engine that reports Stats. It is optional (a test
// engine need not), so callers check for it.
type StatsReporter interface {
	Stats() Stats
}
