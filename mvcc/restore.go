package mvcc

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// metaRestoring marks an engine being overwritten by Restore; it names the
// snapshot file, so a member that crashed mid-restore restores again.
var metaRestoring = []byte("mrestoring")

// RestoringFrom returns the snapshot an interrupted restore was reading,
// or "" if none.
func RestoringFrom(r interface {
	Get([]byte) ([]byte, bool, error)
}) (string, error) {
	v, ok, err := r.Get(metaRestoring)
	if err != nil || !ok {
		return "", err
	}
	return string(v), nil
}

// restoreBatchBytes bounds one engine batch while restoring.
const restoreBatchBytes = 4 << 20

// Restore replaces the whole store with the snapshot read from r (as
// written by WriteSnapshot), checking its SHA-256, then reloads the
// revision, compaction and applied index from it. Watchers fall back to
// catching up from the new contents. source names the snapshot file for
// crash recovery (see PendingRestore). Reads wait while it runs.
// The caller re-reads whatever else it keeps in the engine (leases,
// alarms, members).
func (s *Store) Restore(r io.Reader, source string) error {
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// The engine's contents are about to be replaced wholesale. The key
	// filter is replaced once they are all in place (its scan must see
	// them all); until then, and for good if the restore fails, a filter
	// that is never scanned answers "maybe".
	s.latest.reset()
	added := s.keys.count()
	s.newKeys(0)
	s.keys.scanning = true

	b := s.eng.NewWriteBatch()
	if err := b.DeleteRange([]byte{0}, []byte{0xff, 0xff}); err != nil {
		b.Close()
		return err
	}
	if err := b.Set(metaRestoring, []byte(source)); err != nil {
		b.Close()
		return err
	}
	err := ReadSnapshot(r, func(k, v []byte) error {
		if err := b.Set(k, v); err != nil {
			return err
		}
		if b.Len() >= restoreBatchBytes {
			if err := b.Commit(); err != nil {
				return err
			}
			b.Close()
			b = s.eng.NewWriteBatch()
		}
		return nil
	})
	if err != nil {
		b.Close()
		return fmt.Errorf("mvcc: restore %s: %w", source, err)
	}
	if err := b.Delete(metaRestoring); err != nil {
		b.Close()
		return err
	}
	if err := b.Commit(); err != nil {
		b.Close()
		return err
	}
	b.Close()
	if err := s.eng.Flush(); err != nil {
		return err
	}
	s.pendingRestore = ""
	s.newKeys(added)
	return s.reload()
}

// ErrNotCairnSnapshot is ReadSnapshot's answer to a stream that does not
// start as the store's snapshots do.
var ErrNotCairnSnapshot = errors.New("not a Cairn snapshot")

// IsSnapshot reports whether head (a file's first bytes) starts a
// snapshot written by WriteSnapshot.
func IsSnapshot(head []byte) bool { return bytes.HasPrefix(head, snapshotMagic) }

// ReadSnapshot reads a snapshot written by WriteSnapshot, calling fn with
// each engine key and value (valid only during the call), and checks its
// SHA-256 at the end: an error there comes after fn has seen every
// record, so a caller must not keep what it wrote until ReadSnapshot
// returns nil.
func ReadSnapshot(r io.Reader, fn func(k, v []byte) error) error {
	sum := sha256.New()
	br := bufio.NewReaderSize(r, 1<<20)
	tr := &teeCounter{r: br, h: sum}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(tr, magic); err != nil || !bytes.Equal(magic, snapshotMagic) {
		return ErrNotCairnSnapshot
	}
	for {
		k, err := readChunk(tr)
		if err != nil {
			return fmt.Errorf("at byte %d: %w", tr.n, truncated(err))
		}
		if len(k) == 0 {
			break
		}
		v, err := readChunk(tr)
		if err != nil {
			return fmt.Errorf("at byte %d: %w", tr.n, truncated(err))
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	if pad := (snapshotAlign - tr.n%snapshotAlign) % snapshotAlign; pad > 0 {
		if _, err := io.ReadFull(tr, make([]byte, pad)); err != nil {
			return fmt.Errorf("truncated padding: %w", truncated(err))
		}
	}
	want := sum.Sum(nil)
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, want) {
		return errors.New("SHA-256 mismatch, the snapshot is corrupt or truncated")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return errors.New("bytes after the SHA-256, the snapshot is corrupt")
	}
	return nil
}

func truncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// reload re-reads the store's in-memory state from the engine.
func (s *Store) reload() error {
	rev, err := s.metaInt(metaRev)
	if err != nil {
		return err
	}
	compact, err := s.metaInt(metaCompact)
	if err != nil {
		return err
	}
	applied, err := s.metaInt(metaApplied)
	if err != nil {
		return err
	}
	if rev == 0 {
		rev = 1
	}
	s.compactRev.Store(compact)
	s.applied.Store(uint64(applied))
	s.watch.resync(rev)
	s.compactor.schedule(compact)
	return nil
}

type teeCounter struct {
	r io.Reader
	h io.Writer
	n int64
}

func (t *teeCounter) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.h.Write(p[:n])
	t.n += int64(n)
	return n, err
}

func (t *teeCounter) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(t, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// readChunk reads a uvarint length and that many bytes.
func readChunk(r *teeCounter) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > 1<<30 {
		return nil, fmt.Errorf("record of %d bytes", n)
	}
	buf := make([]byte, n)
	_, err = io.ReadFull(r, buf)
	return buf, err
}
