package snapshot

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/mvcc"
)

// Status is what `snapshot status` prints, with etcdutl's JSON names.
type Status struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}

// ReadStatus reports a snapshot file's hash, revision, live keys, size
// and storage version, for either format. For etcd's format every figure
// is computed as etcdutl computes it (the hash is a CRC-32C over bucket
// names, keys and values), so both tools print the same line.
func ReadStatus(path string) (Status, error) {
	if _, err := os.Stat(path); err != nil {
		return Status{}, err
	}
	f, err := Detect(path)
	if err != nil {
		return Status{}, err
	}
	if f == Cairn {
		return cairnStatus(path)
	}
	// Unlike etcdutl, check the trailing SHA-256 when there is one: a
	// damaged snapshot is named as such instead of read by bbolt, which
	// trusts its pages (see Load).
	if withHash, err := checkEtcdHash(path, false); withHash && err != nil {
		return Status{}, fmt.Errorf("snapshot: %s is corrupt: %w", path, err)
	}
	return etcdStatus(path, true)
}

func cairnStatus(path string) (Status, error) {
	file, err := os.Open(path)
	if err != nil {
		return Status{}, err
	}
	defer file.Close()
	sum, err := mvcc.Summarize(file)
	if err != nil {
		return Status{}, fmt.Errorf("snapshot: %s: %w", path, err)
	}
	st, err := file.Stat()
	if err != nil {
		return Status{}, err
	}
	return Status{Hash: sum.Hash, Revision: sum.Rev, TotalKey: sum.Keys, TotalSize: st.Size(), Version: storageVersion}, nil
}

// etcdStatus reads etcdutl's figures; countKeys counts the live keys,
// which takes a set of every key in memory.
func etcdStatus(path string, countKeys bool) (Status, error) {
	var ds Status
	db, err := openBolt(path)
	if err != nil {
		return ds, err
	}
	defer db.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	seen := map[string]struct{}{}
	err = view(db, path, func(tx *bolt.Tx) error {
		// The walk below reads every page, inside view's recover; bbolt's
		// tx.Check is not used (see loadEtcd).
		ds.TotalSize = tx.Size()
		if mb := tx.Bucket(bucketMeta); mb != nil {
			if v := mb.Get(metaStorageVersion); v != nil {
				ds.Version = majorMinorPatch(string(v))
			}
		}
		c := tx.Cursor()
		for name, _ := c.First(); name != nil; name, _ = c.Next() {
			b := tx.Bucket(name)
			if b == nil {
				return fmt.Errorf("nil bucket: %q", string(name))
			}
			h.Write(name)
			isKey := bytes.Equal(name, bucketKey)
			if err := b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				if !isKey {
					return nil
				}
				main, _, tomb, err := parseRevBytes(k)
				if err != nil {
					return fmt.Errorf("cannot parse revision key: %q err: %w", k, err)
				}
				ds.Revision = main
				if !countKeys {
					return nil
				}
				var kv mvccpb.KeyValue
				if err := proto.Unmarshal(v, &kv); err != nil {
					return fmt.Errorf("cannot unmarshal value, key: %q value: %q err: %w", k, v, err)
				}
				if tomb {
					delete(seen, string(kv.Key))
				} else {
					seen[string(kv.Key)] = struct{}{}
				}
				return nil
			}); err != nil {
				return fmt.Errorf("error during bucket key iteration, name: %q err: %w", string(name), err)
			}
		}
		return nil
	})
	ds.TotalKey = len(seen)
	ds.Hash = h.Sum32()
	return ds, err
}

// majorMinorPatch prints a storage version as etcd's semver does
// ("3.6" reads as "3.6.0").
func majorMinorPatch(v string) string {
	if strings.Count(v, ".") == 1 {
		return v + ".0"
	}
	return v
}

// Verify checks that the snapshot file at path is whole: its format is
// known, its SHA-256 is present and matches (an etcd file without the
// trailing hash is refused here, unlike ReadStatus, which accepts a data
// directory's member/snap/db), and it reads through. It returns the
// format and the status ReadStatus reports, except that an etcd file's
// TotalKey is not counted (0): a member verifies its own
// backups with this, and counting live keys holds them all in memory.
func Verify(path string) (Format, Status, error) {
	f, err := Detect(path)
	if err != nil {
		return 0, Status{}, err
	}
	if f == Etcd {
		if withHash, err := checkEtcdHash(path, false); !withHash {
			return f, Status{}, fmt.Errorf("snapshot: %s has no trailing sha256 (truncated or not a saved snapshot)", path)
		} else if err != nil {
			return f, Status{}, fmt.Errorf("snapshot: %s is corrupt: %w", path, err)
		}
		st, err := etcdStatus(path, false)
		return f, st, err
	}
	st, err := cairnStatus(path)
	return f, st, err
}
