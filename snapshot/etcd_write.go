package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/membership"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/storage"
)

// EtcdOptions is what an etcd snapshot records beside the store.
type EtcdOptions struct {
	// Term is the Raft term the snapshot is taken in (etcd's meta "term").
	Term uint64
	// ClusterVersion is written as the cluster version ("3.7.0" when empty).
	ClusterVersion string
}

// putsPerTx bounds one bbolt transaction while writing.
const putsPerTx = 20000

// WriteEtcd writes the engine view src (a consistent snapshot of a
// member's engine) to path as an etcd snapshot: a bbolt file with etcd
// 3.7's buckets, followed by the SHA-256 of the file, as `etcdctl
// snapshot save` leaves it. path must not exist. It returns the store's
// revision and the file's size.
func WriteEtcd(src storage.Reader, path string, o EtcdOptions) (rev int64, size int64, err error) {
	// A large initial map: bbolt re-maps the file as it grows and copies
	// every open node's data each time, which dominated the profile. The
	// map is address space only; pages are touched as they are written.
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true, InitialMmapSize: 8 << 30})
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot: create %s: %w", path, err)
	}
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	meta, err := mvcc.ReadMeta(src)
	if err != nil {
		return 0, 0, err
	}
	w := &boltWriter{db: db}
	if err := w.tx(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, 0, err
	}
	if err := writeEtcdKeys(w, src); err != nil {
		return 0, 0, err
	}
	if err := writeEtcdState(w, src, meta, o); err != nil {
		return 0, 0, err
	}
	if err := w.flush(); err != nil {
		return 0, 0, err
	}
	if err := db.Sync(); err != nil {
		return 0, 0, err
	}
	// bbolt grows the file ahead of its pages (in 16 MiB steps here); the
	// pages in use end at the last transaction's size, where etcd's
	// snapshot (tx.WriteTo) ends too, and the rest is cut off.
	var used int64
	if err := db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		return 0, 0, err
	}
	closed = true
	if err := db.Close(); err != nil {
		return 0, 0, err
	}
	size, err = appendSHA256(path, used)
	return meta.Rev, size, err
}

// boltWriter batches puts into transactions of putsPerTx.
type boltWriter struct {
	db  *bolt.DB
	cur *bolt.Tx
	n   int
}

func (w *boltWriter) tx(f func(*bolt.Tx) error) error { return w.db.Update(f) }

func (w *boltWriter) put(bucket, k, v []byte) error {
	if w.cur == nil {
		tx, err := w.db.Begin(true)
		if err != nil {
			return err
		}
		w.cur = tx
	}
	b := w.cur.Bucket(bucket)
	// Keys arrive in order (the key bucket by revision, the others
	// by their iterators): full pages, as etcd's own appends leave them.
	b.FillPercent = 1.0
	if err := b.Put(k, v); err != nil {
		return err
	}
	if w.n++; w.n >= putsPerTx {
		return w.flush()
	}
	return nil
}

func (w *boltWriter) flush() error {
	if w.cur == nil {
		return nil
	}
	err := w.cur.Commit()
	w.cur, w.n = nil, 0
	return err
}

func writeEtcdKeys(w *boltWriter, src storage.Reader) error {
	return mvcc.ForEachVersionByRevision(src, func(v *mvcc.Version) error {
		kv := &mvccpb.KeyValue{Key: v.Key}
		if !v.Tombstone {
			kv = &mvccpb.KeyValue{Key: v.Key, CreateRevision: v.Create, ModRevision: v.Mod,
				Version: v.Ver, Value: v.Value, Lease: v.Lease}
		}
		data, err := proto.Marshal(kv)
		if err != nil {
			return err
		}
		return w.put(bucketKey, revBytes(v.Mod, v.Sub, v.Tombstone), data)
	})
}

func writeEtcdState(w *boltWriter, src storage.Reader, meta mvcc.Meta, o EtcdOptions) error {
	if err := lease.ForEach(src, func(id, ttl int64) error {
		return w.put(bucketLease, binary.BigEndian.AppendUint64(nil, uint64(id)), marshalLease(id, ttl, 0))
	}); err != nil {
		return err
	}
	st, err := auth.Export(src)
	if err != nil {
		return err
	}
	if st.Enabled {
		if err := w.put(bucketAuth, authEnabledKey, []byte{1}); err != nil {
			return err
		}
	}
	if err := w.put(bucketAuth, authRevisionKey, binary.BigEndian.AppendUint64(nil, st.Revision)); err != nil {
		return err
	}
	for _, u := range st.Users {
		data, err := proto.Marshal(u)
		if err != nil {
			return err
		}
		if err := w.put(bucketAuthUsers, u.Name, data); err != nil {
			return err
		}
	}
	for _, r := range st.Roles {
		data, err := proto.Marshal(r)
		if err != nil {
			return err
		}
		if err := w.put(bucketAuthRoles, r.Name, data); err != nil {
			return err
		}
	}
	cl, err := membership.Load(src)
	if err != nil {
		return err
	}
	var cs etcdConfState
	for _, m := range cl.Members() {
		data, err := json.Marshal(etcdMember{ID: m.ID, PeerURLs: m.PeerURLs, Name: m.Name, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
		if err != nil {
			return err
		}
		if err := w.put(bucketMembers, []byte(strconv.FormatUint(m.ID, 16)), data); err != nil {
			return err
		}
		if m.IsLearner {
			cs.Learners = append(cs.Learners, m.ID)
		} else {
			cs.Voters = append(cs.Voters, m.ID)
		}
	}
	for _, id := range cl.Removed() {
		if err := w.put(bucketMembersRemoved, []byte(strconv.FormatUint(id, 16)), []byte("removed")); err != nil {
			return err
		}
	}
	version := o.ClusterVersion
	if version == "" {
		version = storageVersion
	}
	if err := w.put(bucketCluster, clusterVersionKey, []byte(version)); err != nil {
		return err
	}
	csData, err := json.Marshal(cs)
	if err != nil {
		return err
	}
	metas := []struct{ k, v []byte }{
		{metaConfState, csData},
		{metaConsistentIndex, binary.BigEndian.AppendUint64(nil, meta.Applied)},
		{metaStorageVersion, []byte(storageVersion)},
		{metaTerm, binary.BigEndian.AppendUint64(nil, o.Term)},
	}
	if meta.Compact > 0 {
		metas = append(metas,
			struct{ k, v []byte }{metaScheduled, revBytes(meta.Compact, 0, false)},
			struct{ k, v []byte }{metaFinished, revBytes(meta.Compact, 0, false)})
	}
	for _, m := range metas {
		if err := w.put(bucketMeta, m.k, m.v); err != nil {
			return err
		}
	}
	return nil
}

// appendSHA256 cuts the file to its first used bytes, appends their
// SHA-256, fsyncs it, and returns its new size.
func appendSHA256(path string, used int64) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Truncate(used); err != nil {
		return 0, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, err
	}
	if _, err := f.Write(h.Sum(nil)); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return n + sha256.Size, nil
}
