package mvcc

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/cairnkv/cairn/storage"
)

// Version is one version of one key, as snapshot formats other than the
// store's own carry it (etcd's bbolt file lists every version by revision).
type Version struct {
	Key, Value []byte
	// Create, Mod and Ver are the key's create revision, this version's
	// (main) revision and its version counter; Sub is the change's place
	// within revision Mod.
	Create, Mod, Sub, Ver int64
	Lease                 int64
	Tombstone             bool
}

// Meta is the store's own state beside its keys.
type Meta struct {
	Rev, Compact int64
	Applied      uint64
}

// ReadMeta reads the store's revision, compaction revision and applied
// index from r (an engine or a snapshot of one).
func ReadMeta(r storage.Reader) (Meta, error) {
	var m Meta
	for _, f := range []struct {
		key []byte
		dst *int64
	}{{metaRev, &m.Rev}, {metaCompact, &m.Compact}} {
		v, ok, err := r.Get(f.key)
		if err != nil {
			return m, err
		}
		if ok && len(v) == 8 {
			*f.dst = int64(binary.BigEndian.Uint64(v))
		}
	}
	v, ok, err := r.Get(metaApplied)
	if err != nil {
		return m, err
	}
	if ok && len(v) == 8 {
		m.Applied = binary.BigEndian.Uint64(v)
	}
	if m.Rev == 0 {
		m.Rev = 1
	}
	return m, nil
}

// ForEachVersion calls fn with every version r holds, key by key in key
// order and, within a key, newest first. The slices fn sees are only
// valid during the call.
func ForEachVersion(r storage.Reader, fn func(*Version) error) error {
	it, err := r.NewIter([]byte{prefixKey}, []byte{prefixKey + 1})
	if err != nil {
		return err
	}
	defer it.Close()
	var v Version
	var user []byte
	for ok := it.First(); ok; ok = it.Next() {
		u, rev, err := decodeKey(user[:0], it.Key())
		if err != nil {
			return err
		}
		user = u
		rec, err := decodeValue(it.Value())
		if err != nil {
			return fmt.Errorf("mvcc: version %q@%d: %w", user, rev.main, err)
		}
		v = Version{Key: user, Value: rec.value, Create: rec.create, Mod: rev.main, Sub: rev.sub,
			Ver: rec.version, Lease: rec.lease, Tombstone: rec.tombstone}
		if err := fn(&v); err != nil {
			return err
		}
	}
	return it.Error()
}

// ImportVersion writes v into a store's engine that is not open (a data
// directory being built from another format's snapshot). Every version
// gets its revision-log entry; ImportMeta's compaction then reclaims the
// ones below the compaction revision when the store opens, as after any
// compaction.
func ImportVersion(b storage.Batch, v *Version) error {
	rev := revision{main: v.Mod, sub: v.Sub}
	rec := record{tombstone: v.Tombstone, create: v.Create, version: v.Ver, lease: v.Lease, value: v.Value}
	if v.Tombstone {
		rec = record{tombstone: true}
	}
	if err := b.Set(encodeKey(v.Key, rev), encodeValue(rec)); err != nil {
		return err
	}
	return b.Set(revKey(rev), v.Key)
}

// ImportMeta writes the store's revision, compaction revision and applied
// index for an engine built by ImportVersion. The compaction is recorded
// as scheduled and not done, so the store finishes it when it opens.
func ImportMeta(b storage.Batch, m Meta) error {
	if err := putMetaInt(b, metaRev, m.Rev); err != nil {
		return err
	}
	if err := putMetaInt(b, metaCompact, m.Compact); err != nil {
		return err
	}
	if err := b.Delete(metaCompactDone); err != nil {
		return err
	}
	return putMetaInt(b, metaApplied, int64(m.Applied))
}

// Snapshot is a consistent view of the whole engine, for writers of other
// snapshot formats; the caller closes it. It is not taken while a
// Restore is replacing the engine's contents.
func (s *Store) Snapshot() storage.Snapshot {
	s.restoreMu.RLock()
	defer s.restoreMu.RUnlock()
	return s.eng.NewSnapshot()
}

// Summary is what `snapshot status` shows of a snapshot in the store's
// own format.
type Summary struct {
	// Hash is a CRC-32C over every record's key and value, in order.
	Hash     uint32
	Rev      int64
	Compact  int64
	Keys     int   // live keys at Rev
	Versions int   // versions of keys, tombstones included
	Records  int64 // engine records of every kind
}

// Summarize reads a snapshot written by WriteSnapshot without restoring
// it, checking its SHA-256.
func Summarize(r io.Reader) (Summary, error) {
	var s Summary
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	var lastUser []byte
	err := ReadSnapshot(r, func(k, v []byte) error {
		h.Write(k)
		h.Write(v)
		s.Records++
		switch {
		case bytes.Equal(k, metaRev) && len(v) == 8:
			s.Rev = int64(binary.BigEndian.Uint64(v))
		case bytes.Equal(k, metaCompact) && len(v) == 8:
			s.Compact = int64(binary.BigEndian.Uint64(v))
		case len(k) > 0 && k[0] == prefixKey:
			user, _, err := decodeKey(nil, k)
			if err != nil {
				return err
			}
			s.Versions++
			if lastUser != nil && bytes.Equal(user, lastUser) {
				return nil // an older version: the newest decided
			}
			lastUser = user
			rec, err := decodeValue(v)
			if err != nil {
				return err
			}
			if !rec.tombstone {
				s.Keys++
			}
		}
		return nil
	})
	if s.Rev == 0 {
		s.Rev = 1
	}
	s.Hash = h.Sum32()
	return s, err
}

// ForEachVersionByRevision calls fn with every version r holds in
// revision order (main, then sub), as etcd's key bucket lists them, so a
// writer of etcd's format appends instead of inserting at random. The
// versions below the compaction revision (at most one per key once the
// compaction has finished: they have no revision-log entry) are found by
// a scan of the key space and sorted in memory by revision (their keys,
// not their values); the rest come from the revision log, in order.
func ForEachVersionByRevision(r storage.Reader, fn func(*Version) error) error {
	meta, err := ReadMeta(r)
	if err != nil {
		return err
	}
	type old struct {
		rev  revision
		user []byte
	}
	var olds []old
	if meta.Compact > 0 {
		if err := ForEachVersion(r, func(v *Version) error {
			if v.Mod < meta.Compact {
				olds = append(olds, old{revision{v.Mod, v.Sub}, bytes.Clone(v.Key)})
			}
			return nil
		}); err != nil {
			return err
		}
		slices.SortFunc(olds, func(a, b old) int {
			if c := cmp.Compare(a.rev.main, b.rev.main); c != 0 {
				return c
			}
			return cmp.Compare(a.rev.sub, b.rev.sub)
		})
	}
	// One iterator over the key space for every lookup: a point Get
	// builds an iterator of its own each time, which dominated.
	kit, err := r.NewIter([]byte{prefixKey}, []byte{prefixKey + 1})
	if err != nil {
		return err
	}
	defer kit.Close()
	emit := func(user []byte, rev revision) error {
		k := encodeKey(user, rev)
		if !kit.SeekGE(k) || !bytes.Equal(kit.Key(), k) {
			if err := kit.Error(); err != nil {
				return err
			}
			return fmt.Errorf("mvcc: revision log names %q@%d.%d, which the key space lacks", user, rev.main, rev.sub)
		}
		rec, err := decodeValue(kit.Value())
		if err != nil {
			return fmt.Errorf("mvcc: version %q@%d: %w", user, rev.main, err)
		}
		return fn(&Version{Key: user, Value: rec.value, Create: rec.create, Mod: rev.main, Sub: rev.sub,
			Ver: rec.version, Lease: rec.lease, Tombstone: rec.tombstone})
	}
	for _, o := range olds {
		if err := emit(o.user, o.rev); err != nil {
			return err
		}
	}
	olds = nil
	it, err := r.NewIter(revKey(revision{main: meta.Compact}), []byte{prefixRev + 1})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		rev, err := decodeRevKey(it.Key())
		if err != nil {
			return err
		}
		if err := emit(it.Value(), rev); err != nil {
			return err
		}
	}
	return it.Error()
}
