package mvcc

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"io"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// HashKV hashes the key-value history visible at revisions in
// [CompactRev, rev]: every version with a revision in (CompactRev, rev],
// plus each key's live version as of the compaction. Versions the
// background compactor may or may not have removed yet are excluded, so
// members at the same revision agree whatever their compaction progress.
// rev 0 means the current revision.
func (s *Store) HashKV(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	for {
		hash, hashRev, compactRev, err = s.hashKV(rev)
		if err != nil || compactRev == s.compactRev.Load() {
			return hash, hashRev, compactRev, err
		}
		// A compaction started while we hashed; hash again under it.
	}
}

func (s *Store) hashKV(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	s.restoreMu.RLock()
	defer s.restoreMu.RUnlock()
	compactRev = s.compactRev.Load()
	cur := s.rev.Load()
	if rev == 0 {
		rev = cur
	}
	if rev > cur {
		return 0, 0, 0, ErrFutureRev
	}
	if rev < compactRev {
		return 0, 0, 0, ErrCompacted
	}
	snap := s.eng.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter([]byte{prefixKey}, []byte{prefixKey + 1})
	if err != nil {
		return 0, 0, 0, err
	}
	defer it.Close()
	h := crc32.New(castagnoli)
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(compactRev))
	h.Write(buf[:])
	var lastPrefix []byte
	sawAtCompact := false
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		pl := prefixLen(k)
		if string(k[:pl]) != string(lastPrefix) {
			lastPrefix = append(lastPrefix[:0], k[:pl]...)
			sawAtCompact = false
		}
		main := int64(^beUint64(k[pl:]))
		if main > rev {
			continue
		}
		if main <= compactRev {
			// Only the newest version at or below the compaction counts.
			if sawAtCompact {
				continue
			}
			sawAtCompact = true
			rec, err := decodeValue(it.Value())
			if err != nil {
				return 0, 0, 0, err
			}
			if rec.tombstone {
				continue
			}
		}
		h.Write(k)
		h.Write(it.Value())
	}
	return h.Sum32(), rev, compactRev, it.Error()
}

// Hash hashes every key-value version, lease and alarm the store holds at
// its current revision (etcd's Maintenance.Hash).
func (s *Store) Hash() (uint32, int64, error) {
	h, rev, _, err := s.HashKV(0)
	return h, rev, err
}

// snapshotMagic starts a snapshot stream.
var snapshotMagic = []byte("CAIRNSNAP\x01")

// snapshotAlign is the block size the snapshot body is padded to: etcd's
// snapshots are bbolt files (whole 4 KiB pages) followed by a SHA-256,
// and clientv3 refuses a snapshot whose size is not a multiple of 512
// plus 32.
const snapshotAlign = 512

// WriteSnapshot writes a consistent copy of the whole store to w: the
// magic, then every engine key and value as (uvarint length, bytes)
// pairs, then an empty key ending the records, then zero padding to a
// multiple of 512 bytes, then the SHA-256 of everything before it (as
// etcd appends a SHA-256 to its snapshots). It returns the snapshot's
// revision.
func (s *Store) WriteSnapshot(w io.Writer) (int64, error) {
	s.restoreMu.RLock()
	defer s.restoreMu.RUnlock()
	snap := s.eng.NewSnapshot()
	defer snap.Close()
	var rev int64 = 1
	if v, ok, err := snap.Get(metaRev); err != nil {
		return 0, err
	} else if ok && len(v) == 8 {
		rev = int64(binary.BigEndian.Uint64(v))
	}
	it, err := snap.NewIter(nil, nil)
	if err != nil {
		return 0, err
	}
	defer it.Close()
	sum := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, sum)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if _, err := bw.Write(snapshotMagic); err != nil {
		return 0, err
	}
	var lenBuf [binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		for _, b := range [][]byte{it.Key(), it.Value()} {
			n := binary.PutUvarint(lenBuf[:], uint64(len(b)))
			if _, err := bw.Write(lenBuf[:n]); err != nil {
				return 0, err
			}
			if _, err := bw.Write(b); err != nil {
				return 0, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return 0, err
	}
	if err := bw.WriteByte(0); err != nil { // the empty key: end of records
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	if pad := (snapshotAlign - cw.n%snapshotAlign) % snapshotAlign; pad > 0 {
		if _, err := cw.Write(make([]byte, pad)); err != nil {
			return 0, err
		}
	}
	_, err = w.Write(sum.Sum(nil))
	return rev, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
