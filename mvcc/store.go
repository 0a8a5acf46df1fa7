package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cairnkv/cairn/storage"
)

// Errors returned by the store; the api package maps them to etcd's.
var (
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	errStopped   = errors.New("mvcc: store closed")
)

var (
	metaApplied     = []byte("mapplied")
	metaRev         = []byte("mrev")
	metaCompact     = []byte("mcompact")
	metaCompactDone = []byte("mcompactdone")
)

// Store is the multi-version key-value store.
type Store struct {
	eng storage.Engine
	lg  *slog.Logger

	// writeMu serialises write transactions (there is one writer, the
	// apply loop, plus Restore).
	writeMu sync.Mutex
	// restoreMu keeps reads out while Restore replaces the engine's
	// contents (reads take it shared).
	restoreMu sync.RWMutex

	rev        atomic.Int64 // newest committed revision
	compactRev atomic.Int64 // oldest revision still readable
	applied    atomic.Uint64

	watch     *watchHub
	compactor *compactor
	// latest caches recently written keys' newest versions, and keys
	// filters the keys the engine may hold (both guarded by writeMu; the
	// filter's scan runs in the background, in bg, until quit).
	latest *latestCache
	keys   *keyFilter
	bg     sync.WaitGroup
	quit   chan struct{}

	// pendingRestore names the snapshot an interrupted Restore was
	// reading; the store must be restored from it before use.
	pendingRestore string
}

// PendingRestore names the snapshot file an interrupted Restore was
// reading ("" if none): the caller must Restore from it before serving.
func (s *Store) PendingRestore() string { return s.pendingRestore }

// Open loads the store's state from eng. It starts the background
// compactor and watch syncer; Close stops them.
func Open(eng storage.Engine, lg *slog.Logger) (*Store, error) {
	if lg == nil {
		lg = slog.Default()
	}
	s := &Store{eng: eng, lg: lg, latest: newLatestCache(latestCacheBytes), quit: make(chan struct{})}
	src, err := RestoringFrom(eng)
	if err != nil {
		return nil, err
	}
	s.pendingRestore = src
	rev, err := s.metaInt(metaRev)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		rev = 1
	}
	s.rev.Store(rev)
	compact, err := s.metaInt(metaCompact)
	if err != nil {
		return nil, err
	}
	s.compactRev.Store(compact)
	applied, err := s.metaInt(metaApplied)
	if err != nil {
		return nil, err
	}
	s.applied.Store(uint64(applied))
	s.watch = newWatchHub(s)
	s.compactor = newCompactor(s)
	s.newKeys(0)
	return s, nil
}

// Close stops background work. It does not close the engine.
func (s *Store) Close() {
	close(s.quit)
	s.bg.Wait()
	s.compactor.stop()
	s.watch.stop()
}

// Rev is the newest committed revision.
func (s *Store) Rev() int64 { return s.rev.Load() }

// CompactRev is the revision of the last compaction (0 if none): ranges
// and watches below it fail with ErrCompacted.
func (s *Store) CompactRev() int64 { return s.compactRev.Load() }

// AppliedIndex is the Raft index of the last entry applied.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

// Engine exposes the engine for packages that keep their own key space
// (lease) and for snapshots.
func (s *Store) Engine() storage.Engine { return s.eng }

func (s *Store) metaInt(name []byte) (int64, error) {
	v, ok, err := s.eng.Get(name)
	if err != nil {
		return 0, fmt.Errorf("mvcc: read %s: %w", name, err)
	}
	if !ok {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("mvcc: corrupt meta %s: %x", name, v)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func putMetaInt(b storage.Batch, name []byte, v int64) error {
	return b.Set(name, binary.BigEndian.AppendUint64(nil, uint64(v)))
}
