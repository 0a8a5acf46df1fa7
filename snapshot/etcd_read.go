package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/storage"
)

// batchBytes bounds one engine batch while loading.
const batchBytes = 4 << 20

// loader writes into an empty engine in bounded batches.
type loader struct {
	eng storage.Engine
	b   storage.Batch
}

func newLoader(eng storage.Engine) *loader { return &loader{eng: eng, b: eng.NewWriteBatch()} }

func (l *loader) maybeCommit() error {
	if l.b.Len() < batchBytes {
		return nil
	}
	return l.commit()
}

func (l *loader) commit() error {
	err := l.b.Commit()
	l.b.Close()
	l.b = l.eng.NewWriteBatch()
	return err
}

func (l *loader) close() { l.b.Close() }

// loadEtcd copies the etcd snapshot (a bbolt file) at path into eng,
// which must be empty, as Cairn's store, leases and auth state: every
// version of every key with its revisions, version and lease, the
// compaction revision, the leases with their attached keys, users and
// roles. Membership is not copied: a restore starts a new cluster.
func loadEtcd(path string, eng storage.Engine) (mvcc.Meta, error) {
	var meta mvcc.Meta
	db, err := openBolt(path)
	if err != nil {
		return meta, fmt.Errorf("snapshot: open %s as an etcd snapshot: %w", path, err)
	}
	defer db.Close()
	l := newLoader(eng)
	defer l.close()
	err = view(db, path, func(tx *bolt.Tx) error {
		// Not tx.Check: on a file without a synced freelist (etcd's
		// snapshots) it has bbolt rebuild the freelist in a goroutine of
		// its own, whose panic on a damaged page no recover reaches. The
		// walk below reads every page the restore needs, inside view's
		// recover.
		mb := tx.Bucket(bucketMeta)
		kb := tx.Bucket(bucketKey)
		if mb == nil || kb == nil {
			return fmt.Errorf("snapshot: %s is a bbolt file without etcd's key and meta buckets", path)
		}
		if v := mb.Get(metaStorageVersion); v != nil && newerThan(string(v), storageVersion) {
			return fmt.Errorf("snapshot: %s has etcd storage version %s; Cairn reads up to %s", path, v, storageVersion)
		}
		if v := mb.Get(metaScheduled); v != nil {
			main, _, _, err := parseRevBytes(v)
			if err != nil {
				return err
			}
			meta.Compact = main
		}
		// Keys whose newest version is live and carries a lease, for the
		// lease's list of attached keys.
		leased := map[string]int64{}
		meta.Rev = 1
		if err := kb.ForEach(func(k, v []byte) error {
			main, sub, tomb, err := parseRevBytes(k)
			if err != nil {
				return err
			}
			meta.Rev = max(meta.Rev, main)
			if len(v) == 0 {
				return nil // etcdutl's --bump-revision marker: a revision, no key
			}
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				return fmt.Errorf("snapshot: key bucket entry %x: %w", k, err)
			}
			ver := &mvcc.Version{Key: kv.Key, Value: kv.Value, Create: kv.CreateRevision, Mod: main, Sub: sub,
				Ver: kv.Version, Lease: kv.Lease, Tombstone: tomb}
			if tomb || kv.Lease == 0 {
				delete(leased, string(kv.Key))
			} else {
				leased[string(kv.Key)] = kv.Lease
			}
			if err := mvcc.ImportVersion(l.b, ver); err != nil {
				return err
			}
			return l.maybeCommit()
		}); err != nil {
			return err
		}
		leases := map[int64]bool{}
		if lb := tx.Bucket(bucketLease); lb != nil {
			if err := lb.ForEach(func(k, v []byte) error {
				id, ttl, _, err := unmarshalLease(v)
				if err != nil {
					return fmt.Errorf("snapshot: lease %x: %w", k, err)
				}
				if id == 0 && len(k) == 8 {
					id = int64(binary.BigEndian.Uint64(k))
				}
				leases[id] = true
				return lease.Import(l.b, id, ttl)
			}); err != nil {
				return err
			}
		}
		for key, id := range leased {
			if leases[id] { // etcd drops a key's lease that no longer exists
				if err := lease.ImportAttach(l.b, id, []byte(key)); err != nil {
					return err
				}
			}
		}
		st, err := readEtcdAuth(tx)
		if err != nil {
			return err
		}
		return auth.Import(l.b, st)
	})
	if err != nil {
		return meta, err
	}
	if err := mvcc.ImportMeta(l.b, meta); err != nil {
		return meta, err
	}
	return meta, l.commit()
}

func readEtcdAuth(tx *bolt.Tx) (*auth.State, error) {
	st := &auth.State{Revision: 1}
	if ab := tx.Bucket(bucketAuth); ab != nil {
		if v := ab.Get(authEnabledKey); len(v) == 1 {
			st.Enabled = v[0] == 1
		}
		if v := ab.Get(authRevisionKey); len(v) == 8 {
			st.Revision = binary.BigEndian.Uint64(v)
		}
	}
	if ub := tx.Bucket(bucketAuthUsers); ub != nil {
		if err := ub.ForEach(func(k, v []byte) error {
			u := &authpb.User{}
			if err := proto.Unmarshal(v, u); err != nil {
				return fmt.Errorf("snapshot: user %q: %w", k, err)
			}
			st.Users = append(st.Users, u)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if rb := tx.Bucket(bucketAuthRoles); rb != nil {
		if err := rb.ForEach(func(k, v []byte) error {
			r := &authpb.Role{}
			if err := proto.Unmarshal(v, r); err != nil {
				return fmt.Errorf("snapshot: role %q: %w", k, err)
			}
			st.Roles = append(st.Roles, r)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// newerThan compares "major.minor[.patch]" versions by major and minor,
// as etcd's storage versions are.
func newerThan(v, than string) bool {
	parse := func(s string) (int, int, error) {
		parts := strings.SplitN(s, ".", 3)
		if len(parts) < 2 {
			return 0, 0, errors.New("bad version")
		}
		var a, b int
		if _, err := fmt.Sscanf(parts[0]+" "+parts[1], "%d %d", &a, &b); err != nil {
			return 0, 0, err
		}
		return a, b, nil
	}
	a1, b1, err1 := parse(v)
	a2, b2, err2 := parse(than)
	if err1 != nil || err2 != nil {
		return err1 != nil // an unreadable version is treated as newer
	}
	return a1 > a2 || (a1 == a2 && b1 > b2)
}
