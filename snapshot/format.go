package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

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
