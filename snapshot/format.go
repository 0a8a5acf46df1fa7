package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnkv/cairn/mvcc"
)

// Format names a snapshot file's format.
type Format int

const (
	// Etcd is etcd's format: a bbolt database, usually followed by the
	// SHA-256 of everything before it.
	Etcd Format = iota + 1
	// Cairn is the store's own stream (mvcc.WriteSnapshot).
	Cairn
)

func (f Format) String() string {
	switch f {
	case Etcd:
		return "etcd"
	case Cairn:
		return "cairn"
	}
	return "unknown"
}

// boltMagic is bbolt's meta page magic (little-endian uint32 after the
// 16-byte page header of page 0).
const boltMagic = 0xED0CDAED

// ErrUnknownFormat is the answer for a file that is neither format.
var ErrUnknownFormat = errors.New("snapshot: not an etcd or Cairn snapshot (unknown format)")

// Detect reads the first bytes of the file at path and names its format.
func Detect(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	head := make([]byte, 32)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF {
		if err == io.EOF {
			return 0, fmt.Errorf("snapshot: %s is empty", path)
		}
		return 0, err
	}
	head = head[:n]
	switch {
	case mvcc.IsSnapshot(head):
		return Cairn, nil
	case len(head) >= 20 && binary.LittleEndian.Uint32(head[16:20]) == boltMagic:
		return Etcd, nil
	}
	return 0, ErrUnknownFormat
}

// hasChecksum is etcd's rule: a snapshot whose size is a multiple of 512
// plus 32 ends with a SHA-256.
func hasChecksum(n int64) bool { return n%512 == sha256.Size }

// checkEtcdHash verifies the SHA-256 etcd appends to a snapshot, with
// etcdutl's answers. skip skips the check; a file without a hash is
// accepted only then (a data directory's member/snap/db has none).
func checkEtcdHash(path string, skip bool) (withHash bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	withHash = hasChecksum(st.Size())
	if !withHash {
		if !skip {
			return false, errors.New("snapshot missing hash but --skip-hash-check=false")
		}
		return false, nil
	}
	if skip {
		return true, nil
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, st.Size()-sha256.Size); err != nil {
		return true, err
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		return true, err
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return true, fmt.Errorf("expected sha256 %v, got %v", want, got)
	}
	return true, nil
}

// view runs fn in a read transaction of db, turning a panic inside bbolt
// (it panics on some damaged pages that its Check does not reach) into
// an error naming the file: bad input never crashes a tool or a member.
func view(db *bolt.DB, path string, fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("snapshot: %s is a corrupt bbolt file: %v", path, r)
		}
	}()
	return db.View(fn)
}

// openBolt opens an etcd snapshot read-only, with the same protection.
func openBolt(path string) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("snapshot: %s is a corrupt bbolt file: %v", path, r)
		}
	}()
	return bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
}

// CheckBolt reads every bucket, key and value of the bbolt file at path,
// for a caller that runs it in a process of its own before trusting the
// file in-process (see Load): a damaged page then kills only that
// process.
func CheckBolt(path string) error {
	db, err := openBolt(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return view(db, path, func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error { return nil })
		})
	})
}
