package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// PebbleOptions tunes the Pebble engine.
type PebbleOptions struct {
	// CacheBytes is the block cache size; 0 or less means 64 MiB.
	CacheBytes int64
	// InMemory keeps everything in memory (tests only).
	InMemory bool
	Logger   *slog.Logger
	// Split, when set, is the length of a key's prefix: the part its bloom
	// filters record and FirstWithPrefix seeks by. The rest is the key's
	// suffix (a version). It must follow Pebble's rules for
	// Comparer.Split under bytewise order: keys with equal prefixes are
	// adjacent, ordered by suffix, and a prefix sorts before every key
	// that extends it. An engine remembers whether it was created with a
	// Split (by its comparer's name) and refuses to open the other way.
	Split func(key []byte) int
	// OnFlushError, when set, is told of every failed flush of the
	// memtables (a full or failing disk), from one of Pebble's
	// goroutines: it must not block. Pebble retries a failed flush at
	// once and for ever, so the caller should stop using the engine.
	OnFlushError func(error)
	// OnCorruption, when set, is told when Pebble finds a block whose
	// checksum does not hold (a flipped bit on disk) in the table file at
	// path, from the goroutine that read it: it must not block. The read
	// fails with the error; without OnCorruption Pebble panics.
	OnCorruption func(path string, err error)
}

// splitComparerName names the comparer of engines opened with a Split.
const splitComparerName = "cairn.split.v1"

// splitComparer orders keys bytewise, as Pebble's default comparer does,
// with split as its Split. Pebble wants its order to agree with the
// order by (prefix, suffix) for every key it compares, including the
// shortened keys it invents for index blocks. The default Separator may
// cut a key inside its suffix (between two versions of one key it gives
// the prefix and a few suffix bytes), and that key's Split is then all
// prefix: it sorts after both versions by (prefix, suffix) but between
// them bytewise. This one shortens only between different prefixes, and
// returns a itself when a and b share one, so every key Pebble compares
// has a prefix that is a real key's prefix or no real key's. (Pebble's
// invariant builds, such as -race, check this on some opens.) The order
// is unchanged, so engines written before keep their meaning.
func splitComparer(split func([]byte) int) *pebble.Comparer {
	cmp := *pebble.DefaultComparer
	cmp.Name = splitComparerName
	cmp.Split = split
	cmp.Separator = func(dst, a, b []byte) []byte {
		pa, pb := a[:split(a)], b[:split(b)]
		if bytes.Equal(pa, pb) {
			return append(dst, a...)
		}
		n := len(dst)
		dst = pebble.DefaultComparer.Separator(dst, pa, pb)
		if bytes.Equal(dst[n:], pa) {
			// Not shortened: a's prefix is below a, so a itself.
			return append(dst[:n], a...)
		}
		return dst
	}
	return &cmp
}

type pebbleEngine struct {
	db    *pebble.DB
	cache *pebble.Cache
	split func([]byte) int
	// written counts batch bytes committed, and flushed its value when the
	// last flush that has ended began: their difference estimates the
	// memtables' contents. (Taken when a flush begins, the figure would
	// drop the flushing memtable's bytes before its table is counted, and
	// the live size would dip for the length of the flush.)
	written  atomic.Int64
	flushed  atomic.Int64
	flushing atomic.Int64

	// Pebble's Metrics walks every level and table: too dear to call on
	// every write (Size is asked before each one, for the quota). The
	// table figures are read at most every sizeCacheTTL, and again at
	// once after any flush or compaction ends, since those are what
	// change them. While one caller reads them, the others use the
	// previous figures (sizeRead: there are some) instead of waiting.
	sizeMu      sync.Mutex
	sizeRead    atomic.Bool
	sizeAt      atomic.Int64 // UnixNano of the last read; 0: stale
	sizeGen     atomic.Int64 // bumped by every event that changes the tables
	diskUsage   atomic.Int64
	tablesBytes atomic.Int64

	// A flush that fails (a full or failing disk) is retried by Pebble at
	// once and for ever, so waiting for it would hang the caller: each
	// failure closes failed (and installs a fresh channel), and Flush
	// returns the error to whoever was waiting.
	failMu  sync.Mutex
	failed  chan struct{}
	failErr error
}

// flushFailed records a failed flush and wakes the callers waiting on it.
func (e *pebbleEngine) flushFailed(err error) {
	e.failMu.Lock()
	defer e.failMu.Unlock()
	e.failErr = err
	close(e.failed)
	e.failed = make(chan struct{})
}

// nextFlushFailure is closed when the next flush fails.
func (e *pebbleEngine) nextFlushFailure() <-chan struct{} {
	e.failMu.Lock()
	defer e.failMu.Unlock()
	return e.failed
}

// emptyFlush is the error Pebble reports (in FlushEnd only) for a flush
// that wrote no table: not a failure. Pebble does not export it.
const emptyFlush = "pebble: empty table"

// sizeCacheTTL bounds how old the cached table sizes Size uses can be.
const sizeCacheTTL = 100 * time.Millisecond

// OpenPebble opens (or creates) a Pebble engine in dir.
func OpenPebble(dir string, o PebbleOptions) (Engine, error) {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	cache := pebble.NewCache(o.CacheBytes)
	opts := &pebble.Options{
		Cache:      cache,
		DisableWAL: true,
		// Up to MemTableStopWritesThreshold memtables (one filling, the
		// rest flushing) live in the Go heap, which the garbage collector
		// lets grow to twice its live size: 32 MiB keeps a bulk load's
		// peak memory at a third of etcd's, where 64 MiB made it level
		// with etcd's (docs/BENCHMARKS.md, 1M keys).
		MemTableSize:                32 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       1000,
		// A second compaction when the debt grows (Pebble's default is
		// one): a bulk load otherwise leaves the tables it flushed
		// overlapping in L0 long after it ends, and scans must merge them.
		CompactionConcurrencyRange: func() (int, int) { return 1, max(2, runtime.GOMAXPROCS(0)/2) },
		Logger:                     quietLogger{o.Logger},
	}
	if o.InMemory {
		opts.FS = vfs.NewMem()
	}
	if o.Split != nil {
		opts.Comparer = splitComparer(o.Split)
		for i := range opts.Levels {
			opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		}
	}
	e := &pebbleEngine{cache: cache, split: o.Split, failed: make(chan struct{})}
	opts.EventListener = &pebble.EventListener{
		FlushBegin: func(pebble.FlushInfo) { e.flushing.Store(e.written.Load()) },
		FlushEnd: func(info pebble.FlushInfo) {
			if info.Err != nil && info.Err.Error() != emptyFlush {
				e.flushFailed(info.Err)
				if o.OnFlushError != nil {
					o.OnFlushError(info.Err)
				}
				return
			}
			e.flushed.Store(e.flushing.Load())
			e.tablesChanged()
		},
		CompactionEnd: func(pebble.CompactionInfo) { e.tablesChanged() },
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			if o.OnCorruption != nil {
				o.OnCorruption(info.Path, fmt.Errorf("storage: on-disk corruption in %s: %v", info.Path, info.Details))
				return
			}
			quietLogger{o.Logger}.Fatalf("%s", info)
		},
		TableDeleted:  func(pebble.TableDeleteInfo) { e.tablesChanged() },
		TableIngested: func(pebble.TableIngestInfo) { e.tablesChanged() },
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	e.db = db
	return e, nil
}

func (e *pebbleEngine) Get(key []byte) ([]byte, bool, error) { return get(e.db, key) }
func (e *pebbleEngine) FirstWithPrefix(prefix []byte) ([]byte, []byte, bool, error) {
	return firstWithPrefix(e.db, e.prefixSeek(prefix), prefix)
}

// prefixSeek reports whether prefix is a whole prefix by the engine's
// Split, so that a prefix seek (and its filters) may be used for it.
func (e *pebbleEngine) prefixSeek(prefix []byte) bool {
	return e.split != nil && e.split(prefix) == len(prefix)
}

// firstWithPrefix reads the first key with prefix, by a prefix seek when
// seek is set (bloom filters skip tables without the prefix).
func firstWithPrefix(r interface {
	NewIter(*pebble.IterOptions) (*pebble.Iterator, error)
}, seek bool, prefix []byte) ([]byte, []byte, bool, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, nil, false, err
	}
	var ok bool
	if seek {
		ok = it.SeekPrefixGE(prefix)
	} else {
		ok = it.First()
	}
	if !ok {
		err := it.Error()
		if cerr := it.Close(); err == nil {
			err = cerr
		}
		return nil, nil, false, err
	}
	k, v := bytes.Clone(it.Key()), bytes.Clone(it.Value())
	return k, v, true, it.Close()
}

// prefixEnd is the least key greater than every key starting with
// prefix, or nil when there is none.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func (e *pebbleEngine) NewIter(lower, upper []byte) (Iterator, error) {
	return e.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
}

func (e *pebbleEngine) NewBatch() Batch      { return &pebbleBatch{b: e.db.NewIndexedBatch(), e: e} }
func (e *pebbleEngine) NewWriteBatch() Batch { return &pebbleBatch{b: e.db.NewBatch(), e: e} }

func (e *pebbleEngine) NewSnapshot() Snapshot { return &pebbleSnapshot{s: e.db.NewSnapshot(), e: e} }

// Flush waits for the memtables to reach disk, or for the flush to fail:
// Pebble would retry a failed flush for ever, and Flush returns its
// error instead (the memtables stay, and a later Flush tries again).
func (e *pebbleEngine) Flush() error {
	failed := e.nextFlushFailure()
	done, err := e.db.AsyncFlush()
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-failed:
		e.failMu.Lock()
		err := e.failErr
		e.failMu.Unlock()
		return fmt.Errorf("storage: flush: %w", err)
	}
}

func (e *pebbleEngine) Compact() error {
	if err := e.Flush(); err != nil {
		return err
	}
	// Every engine key starts with a printable prefix byte, so
	// [0x00, 0xff 0xff) covers the whole key space.
	return e.db.Compact(context.Background(), []byte{0}, []byte{0xff, 0xff}, true)
}

// Stats reads the engine's metrics (one read per call: call it at scrape
// time, not per request).
func (e *pebbleEngine) Stats() Stats {
	m := e.db.Metrics()
	return Stats{
		CompactionDebt: m.Compact.EstimatedDebt,
		CacheHits:      m.BlockCache.Hits, CacheMisses: m.BlockCache.Misses,
		FilterUseful: m.Filter.Hits, FilterMissed: m.Filter.Misses,
	}
}

func (e *pebbleEngine) Size() (int64, int64) {
	disk, tables := e.tableSizes()
	// Count what the memtables hold too: without its own WAL, the engine
	// keeps recent writes only in memory until a flush, and a size that
	// ignored them would let --quota-backend-bytes be overrun by up to a
	// memtable. (Pebble's memtable metric is the arena allocated, which
	// grows in steps up to the memtable size whatever it holds.)
	mem := max(0, e.written.Load()-e.flushed.Load())
	onDisk := disk + mem
	live := tables + mem
	if live > onDisk {
		live = onDisk
	}
	return onDisk, live
}

// tableSizes returns the engine's disk usage and the size of its tables,
// from Pebble's metrics read at most sizeCacheTTL ago.
func (e *pebbleEngine) tableSizes() (disk, tables int64) {
	if at := e.sizeAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < sizeCacheTTL {
		return e.diskUsage.Load(), e.tablesBytes.Load()
	}
	if !e.sizeMu.TryLock() {
		if e.sizeRead.Load() {
			// Another caller is reading the metrics: the previous figures
			// will do rather than queueing every request behind it.
			return e.diskUsage.Load(), e.tablesBytes.Load()
		}
		e.sizeMu.Lock()
	}
	defer e.sizeMu.Unlock()
	if at := e.sizeAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < sizeCacheTTL {
		return e.diskUsage.Load(), e.tablesBytes.Load() // read by another caller meanwhile
	}
	now, gen := time.Now().UnixNano(), e.sizeGen.Load()
	m := e.db.Metrics()
	disk, tables = int64(m.DiskSpaceUsage()), m.Total().TablesSize
	e.diskUsage.Store(disk)
	e.tablesBytes.Store(tables)
	e.sizeRead.Store(true)
	if e.sizeGen.Load() == gen {
		e.sizeAt.Store(now) // else the tables changed as we read: stay stale
	}
	return disk, tables
}

func (e *pebbleEngine) tablesChanged() {
	e.sizeGen.Add(1)
	e.sizeAt.Store(0)
}

func (e *pebbleEngine) Close() error {
	err := e.Flush()
	if cerr := e.db.Close(); err == nil {
		err = cerr
	}
	e.cache.Unref()
	return err
}

func get(r interface {
	Get([]byte) ([]byte, io.Closer, error)
}, key []byte) ([]byte, bool, error) {
	v, c, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	c.Close()
	return out, true, nil
}

type pebbleBatch struct {
	b *pebble.Batch
	e *pebbleEngine
}

func (b *pebbleBatch) Get(key []byte) ([]byte, bool, error) { return get(b.b, key) }
func (b *pebbleBatch) FirstWithPrefix(prefix []byte) ([]byte, []byte, bool, error) {
	return firstWithPrefix(b.b, b.e.prefixSeek(prefix), prefix)
}
func (b *pebbleBatch) NewIter(lower, upper []byte) (Iterator, error) {
	return b.b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
}
func (b *pebbleBatch) Set(k, v []byte) error               { return b.b.Set(k, v, nil) }
func (b *pebbleBatch) Delete(k []byte) error               { return b.b.Delete(k, nil) }
func (b *pebbleBatch) DeleteRange(start, end []byte) error { return b.b.DeleteRange(start, end, nil) }
func (b *pebbleBatch) Len() int                            { return b.b.Len() }
func (b *pebbleBatch) Close() error                        { return b.b.Close() }

func (b *pebbleBatch) Commit() error {
	n := b.b.Len()
	if err := b.b.Commit(pebble.NoSync); err != nil {
		return err
	}
	b.e.written.Add(int64(n))
	return nil
}

type pebbleSnapshot struct {
	s *pebble.Snapshot
	e *pebbleEngine
}

func (s *pebbleSnapshot) Get(key []byte) ([]byte, bool, error) { return get(s.s, key) }
func (s *pebbleSnapshot) FirstWithPrefix(prefix []byte) ([]byte, []byte, bool, error) {
	return firstWithPrefix(s.s, s.e.prefixSeek(prefix), prefix)
}
func (s *pebbleSnapshot) NewIter(lower, upper []byte) (Iterator, error) {
	return s.s.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
}
func (s *pebbleSnapshot) Close() error { return s.s.Close() }

// quietLogger sends Pebble's chatter to slog at debug level.
type quietLogger struct{ lg *slog.Logger }

func (l quietLogger) Infof(format string, args ...interface{}) {
	if l.lg != nil {
		l.lg.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (l quietLogger) Errorf(format string, args ...interface{}) {
	if l.lg != nil {
		l.lg.Error(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (l quietLogger) Fatalf(format string, args ...interface{}) {
	// Pebble calls Fatalf where it cannot go on (a MANIFEST it cannot
	// write, for one): log it where the member's errors go, then die.
	if l.lg != nil {
		l.lg.Error(fmt.Sprintf(format, args...), "component", "pebble", "fatal", true)
	}
	panic(fmt.Sprintf("pebble: "+format, args...))
}
