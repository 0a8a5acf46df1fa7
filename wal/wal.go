package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/internal/failpoint"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// DefaultSegmentSize is the segment size used when Options.SegmentSize is 0.
const DefaultSegmentSize = 64 << 20

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrLocked is returned by Open when another WAL holds the directory.
	ErrLocked = errors.New("wal: directory is locked by another WAL")
	// ErrAlreadyRead is returned by ReadAll after its first call: the WAL
	// hands the entries it read over to the caller and keeps no reference.
	ErrAlreadyRead = errors.New("wal: ReadAll already called")
)

// Options configures a WAL. The zero value is ready to use.
type Options struct {
	// SegmentSize is the size in bytes each segment file is preallocated to;
	// a new segment is cut when a write would carry the current one past it.
	// 0 means DefaultSegmentSize.
	SegmentSize int64
	// Logger receives warnings about repaired torn writes and notes about
	// segments. nil discards them.
	Logger *slog.Logger
	// OnSync, if set, is told how long each fdatasync took (metrics).
	OnSync func(time.Duration)
	// UnsafeNoSync skips every fdatasync of the segments (etcd's
	// --unsafe-no-fsync): a crash of the machine, not only of the
	// process, may lose acknowledged writes. For tests and throwaway
	// clusters only.
	UnsafeNoSync bool
}

// timedSync is fdatasync, reporting its duration to onSync if set.
func timedSync(onSync func(time.Duration)) func(*os.File) error {
	if onSync == nil {
		return fdatasync
	}
	return func(f *os.File) error {
		start := time.Now()
		err := fdatasync(f)
		onSync(time.Since(start))
		return err
	}
}

// WAL is an open write-ahead log. Its methods may be called from several
// goroutines, but Save is meant to be called from one (the Ready loop), and
// a Save that returns an I/O error leaves the WAL failed: every later write
// returns that error, because after a failed fsync the kernel may have dropped
// the very pages it failed to write.
type WAL struct {
	dir  string
	dirf *os.File // held open for directory fsyncs and the directory lock
	size int64
	log  *slog.Logger
	sync func(*os.File) error // fdatasync; a seam for fault-injection tests

	relMu   sync.Mutex    // serializes ReleaseTo's file removals
	written atomic.Uint64 // bytes of records written, for metrics

	mu   sync.Mutex // guards everything below
	segs []segment  // oldest first; the last one is open for appending
	f    *os.File   // the last segment
	off  int64      // offset in f where the next record goes
	// dirty is set while f holds records written without an fdatasync.
	dirty bool
	b     bounds
	err   error // sticky write failure
	// snapData and hsData are the encodings of the newest snapshot marker and
	// the last hard state, repeated in the header of every new segment.
	snapData []byte
	hsData   []byte
	hsTerm   uint64
	hsVote   uint64
	hsCommit uint64
	buf      []byte // reused encoding buffer
	closed   bool

	// What Open read, until ReadAll hands it over.
	read struct {
		done bool
		snap *raftpb.SnapshotMetadata
		hs   *raftpb.HardState
		ents []*raftpb.Entry
	}
}

// Open opens the log in dir, creating it if empty, and reads it back. A torn
// final write is cut away with a warning; any other damage is an error that
// matches ErrCorrupt and, where it lies in a segment, is a *CorruptError
// naming the file and offset.
func Open(dir string, opts Options) (*WAL, error) {
	w := &WAL{
		dir:  dir,
		size: opts.SegmentSize,
		log:  opts.Logger,
		sync: timedSync(opts.OnSync),
	}
	if opts.UnsafeNoSync {
		w.sync = func(*os.File) error { return nil }
	}
	if w.size <= 0 {
		w.size = DefaultSegmentSize
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if err := makeDir(dir); err != nil {
		return nil, err
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	if err := lockDir(dirf); err != nil {
		dirf.Close()
		return nil, fmt.Errorf("wal: lock %s: %w", dir, err)
	}
	w.dirf = dirf

	segs, err := listSegments(dir)
	if err == nil {
		if len(segs) == 0 {
			err = w.create()
		} else {
			err = w.recover(segs)
		}
	}
	if err != nil {
		dirf.Close()
		return nil, err
	}
	return w, nil
}

// makeDir creates dir with mode 0700 if it does not exist, and makes its
// entry durable, and those of the parents it created: each parent up to
// the first that already existed is fsynced, on every open (a crash after
// an earlier MkdirAll may have left the entries on disk but not durable).
func makeDir(dir string) error {
	dir = filepath.Clean(dir)
	var made []string // dir and the parents MkdirAll may create, deepest first
	for d := dir; ; d = filepath.Dir(d) {
		made = append(made, d)
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("wal: create %s: %w", dir, err)
	}
	for _, d := range made {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: sync dir %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: sync dir %s: %w", dir, err)
	}
	return nil
}

// create starts an empty log: segment 1, expecting entry 1 first.
func (w *WAL) create() error {
	f, seg, err := createSegment(w.dir, w.dirf, headerRecord{version: headerVersion, seq: 1, first: 1}, w.size)
	if err != nil {
		return err
	}
	w.segs = []segment{seg}
	w.f, w.off = f, seg.bodyStart
	w.read.snap = raftpb.EnsureSnapshotMetadata(nil)
	w.read.hs = new(raftpb.HardState)
	return nil
}

// recover replays segs and leaves the last one open for appending.
func (w *WAL) recover(segs []segment) error {
	var (
		r   replay
		img []byte
		res segmentResult
	)
	for i := range segs {
		seg := &segs[i]
		last := i == len(segs)-1
		var err error
		if img, err = readFile(seg.path, img); err != nil {
			return err
		}
		if res, err = r.segment(seg, img, last); err != nil {
			return err
		}
	}
	if err := r.finish(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, w.dir, err)
	}

	tail := &segs[len(segs)-1]
	f, err := os.OpenFile(tail.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("wal: open %w", err)
	}
	if res.torn {
		// Nothing after the damage was valid, so it is the unfinished last
		// write of a crashed process: no Save that wrote it returned. Zero it
		// so that appends resume on a clean end of data.
		w.log.Warn("wal: truncating torn write at end of log",
			"path", tail.path, "offset", res.end, "bytes", res.tornEnd-res.end, "reason", res.tornReason)
		if err := zeroRange(f, res.end, res.tornEnd); err != nil {
			f.Close()
			return fmt.Errorf("wal: repair %s: %w", tail.path, err)
		}
		if err := w.sync(f); err != nil {
			f.Close()
			return fmt.Errorf("wal: repair %s: %w", tail.path, err)
		}
	}

	w.segs = segs
	w.f, w.off = f, res.end
	w.b = r.b
	w.snapData, w.hsData = r.snapData, r.hsData
	if r.hs != nil {
		w.hsTerm, w.hsVote, w.hsCommit = r.hs.GetTerm(), r.hs.GetVote(), r.hs.GetCommit()
	} else {
		r.hs = new(raftpb.HardState)
	}
	w.read.snap = raftpb.EnsureSnapshotMetadata(r.snap)
	w.read.hs = r.hs
	w.read.ents = r.ents
	return nil
}

// readFile reads the whole file at path into buf, growing it as needed.
func readFile(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, fmt.Errorf("wal: open %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf, fmt.Errorf("wal: stat %w", err)
	}
	n := int(fi.Size())
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(f, buf); err != nil {
		return buf, fmt.Errorf("wal: read %s: %w", path, err)
	}
	return buf, nil
}

func zeroRange(f *os.File, from, to int64) error {
	zeros := make([]byte, min(to-from, 1<<20))
	for off := from; off < to; {
		n := min(int64(len(zeros)), to-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// ReadAll returns what Open read: the newest snapshot marker saved (a zero
// SnapshotMetadata if none), the last hard state saved (zero if none), and
// the entries above the marker's index, in index order, with later writes of
// an index having replaced earlier ones. It hands the entries over: a second
// call returns ErrAlreadyRead.
func (w *WAL) ReadAll() (snap *raftpb.SnapshotMetadata, hs *raftpb.HardState, ents []*raftpb.Entry, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.read.done {
		return nil, nil, nil, ErrAlreadyRead
	}
	snap, hs, ents = w.read.snap, w.read.hs, w.read.ents
	w.read.done = true
	w.read.snap, w.read.hs, w.read.ents = nil, nil, nil
	return snap, hs, ents, nil
}

// Save appends ents and, unless it is empty or unchanged since the last Save,
// hs, in one write followed by one fdatasync; it returns once they are
// durable. When there is nothing to write it does no I/O at all.
//
// ents must be contiguous, start above the newest snapshot marker, and start
// no later than one past the last entry saved. Starting at or below the last
// entry replaces the entries from there on, as raft requires when a leader
// overwrites an uncommitted suffix. A snapshot received from a leader must
// therefore be marked with SaveSnapshot before the entries that follow it.
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	return w.save(hs, ents, true)
}

// SaveNoSync is Save without the fdatasync, for what raft does not need
// durable before it goes on (a hard state whose only change is the commit
// index: raft.MustSync is false). The next synced Save, snapshot marker or
// segment cut makes it durable; until then a crash may lose it, which
// raft tolerates because the commit index can be learnt again.
func (w *WAL) SaveNoSync(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	return w.save(hs, ents, false)
}

func (w *WAL) save(hs *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	if len(ents) > 0 {
		if err := w.b.checkAppend(ents[0].GetIndex()); err != nil {
			return fmt.Errorf("wal: save: %w", err)
		}
		for i := 1; i < len(ents); i++ {
			if ents[i].GetIndex() != ents[i-1].GetIndex()+1 {
				return fmt.Errorf("wal: save: entry index %d follows %d", ents[i].GetIndex(), ents[i-1].GetIndex())
			}
		}
	}

	buf := w.buf[:0]
	var err error
	for _, e := range ents {
		if buf, err = appendMessage(buf, recEntry, e); err != nil {
			return fmt.Errorf("wal: save entry %d: %w", e.GetIndex(), err)
		}
	}
	writeHS := hs != nil && !isEmptyHardState(hs) &&
		(hs.GetTerm() != w.hsTerm || hs.GetVote() != w.hsVote || hs.GetCommit() != w.hsCommit)
	hsStart := len(buf)
	if writeHS {
		if buf, err = appendMessage(buf, recHardState, hs); err != nil {
			return fmt.Errorf("wal: save hard state: %w", err)
		}
	}
	w.buf = buf
	if len(buf) == 0 {
		return nil
	}
	if err := w.write(buf, sync); err != nil {
		return err
	}

	if len(ents) > 0 {
		last := ents[len(ents)-1].GetIndex()
		w.b = w.b.appended(last)
		tail := &w.segs[len(w.segs)-1]
		tail.maxIndex = max(tail.maxIndex, last)
	}
	if writeHS {
		w.hsData = append(w.hsData[:0], payload(buf[hsStart:])...)
		w.hsTerm, w.hsVote, w.hsCommit = hs.GetTerm(), hs.GetVote(), hs.GetCommit()
	}
	return nil
}

// SaveSnapshot records that the state up to meta.Index is durable elsewhere
// (meta carries the snapshot's term and ConfState) and fsyncs. Entries at or
// below meta.Index become eligible for ReleaseTo; entries above it are kept.
// Markers may not move backwards.
func (w *WAL) SaveSnapshot(meta *raftpb.SnapshotMetadata) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	if meta == nil {
		return errors.New("wal: save snapshot: nil metadata")
	}
	if err := w.b.checkSnapshot(meta.GetIndex()); err != nil {
		return fmt.Errorf("wal: save snapshot: %w", err)
	}
	buf, err := appendMessage(w.buf[:0], recSnapshot, meta)
	if err != nil {
		return fmt.Errorf("wal: save snapshot: %w", err)
	}
	w.buf = buf
	if err := w.write(buf, true); err != nil {
		return err
	}
	w.b = w.b.snapshotted(meta.GetIndex())
	w.snapData = append(w.snapData[:0], payload(buf)...)
	return nil
}

// ReleaseTo deletes segment files that are no longer needed to read the log
// back: a prefix of the segments, never the last one, in which every entry
// has an index at or below both index and the newest snapshot marker. The
// state such a segment established (marker, hard state) is repeated in the
// header of the segment after it, so nothing is lost.
func (w *WAL) ReleaseTo(index uint64) error {
	w.relMu.Lock()
	defer w.relMu.Unlock()

	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	limit := min(index, w.b.snap)
	n := 0
	for n < len(w.segs)-1 && w.segs[n].maxIndex <= limit {
		n++
	}
	victims := slices.Clone(w.segs[:n])
	w.segs = slices.Delete(w.segs, 0, n)
	w.mu.Unlock()

	// Remove oldest first and sync the directory after each removal, so that
	// whatever a crash leaves on disk is still a contiguous run of segments.
	for _, seg := range victims {
		if err := os.Remove(seg.path); err != nil {
			return fmt.Errorf("wal: release: %w", err)
		}
		if err := w.dirf.Sync(); err != nil {
			return fmt.Errorf("wal: release: sync dir %s: %w", w.dir, err)
		}
		w.log.Info("wal: released segment", "path", seg.path, "maxIndex", seg.maxIndex)
	}
	return nil
}

// Close closes the log. Everything Save and SaveSnapshot returned from is
// already durable, so Close does not sync.
func (w *WAL) Close() error {
	w.relMu.Lock()
	defer w.relMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	var err error
	if w.dirty && w.err == nil {
		err = w.sync(w.f)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if derr := w.dirf.Close(); err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("wal: close: %w", err)
	}
	return nil
}

func (w *WAL) writable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

// BytesWritten is the number of bytes of records this WAL has written
// since it was opened (segment headers aside).
func (w *WAL) BytesWritten() uint64 { return w.written.Load() }

// write makes buf, a run of whole frames, durable at the end of the log,
// cutting a new segment first if buf would carry the current one past its
// size. Any failure is sticky.
func (w *WAL) write(buf []byte, sync bool) error {
	tail := &w.segs[len(w.segs)-1]
	if w.off+int64(len(buf)) > w.size && w.off > tail.bodyStart {
		if w.dirty {
			if err := w.sync(w.f); err != nil {
				w.err = fmt.Errorf("wal: sync %s: %w", tail.path, err)
				return w.err
			}
			w.dirty = false
		}
		if err := w.cut(); err != nil {
			w.err = err
			return err
		}
		tail = &w.segs[len(w.segs)-1]
	}
	sealFrames(buf, tail.seq, w.off)
	if _, err := w.f.WriteAt(buf, w.off); err != nil {
		w.err = fmt.Errorf("wal: write %s: %w", tail.path, err)
		return w.err
	}
	w.off += int64(len(buf))
	w.written.Add(uint64(len(buf)))
	if !sync || failpoint.Enabled(failpoint.WALSkipFsync) {
		w.dirty = true
		return nil
	}
	if err := w.sync(w.f); err != nil && !failpoint.Enabled(failpoint.WALIgnoreSyncError) {
		w.err = fmt.Errorf("wal: sync %s: %w", tail.path, err)
		return w.err
	}
	w.dirty = false
	return nil
}

// cut starts a new segment whose header repeats the current marker and hard
// state. Everything in the old segment is already durable.
func (w *WAL) cut() error {
	tail := w.segs[len(w.segs)-1]
	h := headerRecord{
		version: headerVersion,
		seq:     tail.seq + 1,
		first:   w.b.last + 1,
		snap:    w.snapData,
		hs:      w.hsData,
	}
	f, seg, err := createSegment(w.dir, w.dirf, h, w.size)
	if err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		f.Close()
		return fmt.Errorf("wal: close %s: %w", tail.path, err)
	}
	w.segs = append(w.segs, seg)
	w.f, w.off = f, seg.bodyStart
	w.log.Debug("wal: cut segment", "path", seg.path)
	return nil
}

// appendMessage appends m to buf as one record of type typ.
func appendMessage(buf []byte, typ byte, m proto.Message) ([]byte, error) {
	start := len(buf)
	buf = beginFrame(buf, typ)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return buf[:start], err
	}
	return endFrame(buf, start)
}

// payload returns the payload of the frame at the start of buf.
func payload(buf []byte) []byte {
	n := int(uint32(buf[0]) | uint32(buf[1])<<8 | uint32(buf[2])<<16 | uint32(buf[3])<<24)
	return buf[frameHeaderSize+1 : frameHeaderSize+n]
}

func isEmptyHardState(hs *raftpb.HardState) bool {
	return hs.GetTerm() == 0 && hs.GetVote() == 0 && hs.GetCommit() == 0
}
