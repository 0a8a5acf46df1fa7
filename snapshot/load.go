package snapshot

import (
	"fmt"
	"os"

	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/storage"
)

// Load copies the snapshot at path, in either format, into eng, which
// must be empty and not open as a store, and returns the store's state
// it holds. The hash is checked first unless skipHashCheck (etcd's
// --skip-hash-check; a Cairn snapshot's hash is always checked, it is
// read as it is copied). On an error eng holds part of the snapshot: the
// caller discards it.
func Load(path string, eng storage.Engine, skipHashCheck bool) (mvcc.Meta, Format, error) {
	f, err := Detect(path)
	if err != nil {
		return mvcc.Meta{}, 0, err
	}
	switch f {
	case Etcd:
		if _, err := checkEtcdHash(path, skipHashCheck); err != nil {
			return mvcc.Meta{}, f, err
		}
		meta, err := loadEtcd(path, eng)
		return meta, f, err
	default:
		meta, err := loadCairn(path, eng)
		return meta, f, err
	}
}

func loadCairn(path string, eng storage.Engine) (mvcc.Meta, error) {
	file, err := os.Open(path)
	if err != nil {
		return mvcc.Meta{}, err
	}
	defer file.Close()
	l := newLoader(eng)
	defer l.close()
	if err := mvcc.ReadSnapshot(file, func(k, v []byte) error {
		if err := l.b.Set(k, v); err != nil {
			return err
		}
		return l.maybeCommit()
	}); err != nil {
		return mvcc.Meta{}, fmt.Errorf("snapshot: %s: %w", path, err)
	}
	if err := l.commit(); err != nil {
		return mvcc.Meta{}, err
	}
	return mvcc.ReadMeta(eng)
}
