package mvcc

import (
	"bytes"
	"context"
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/storage"
)

// TxnWrite is one write transaction: everything one Raft entry changes,
// committed atomically by End together with the entry's index. Only the
// apply loop writes, so there is never more than one TxnWrite at a time.
type TxnWrite struct {
	s      *Store
	b      storage.Batch
	begin  int64
	events []*mvccpb.Event
	// compact is the compaction revision this transaction sets, if any.
	compact int64
	// overlay holds the keys this transaction wrote, newest last, for
	// latest to see and End to put in the store's latest-version cache.
	overlay []overlayEntry
	// overlayAt indexes overlay by key (the newest entry) once it is long
	// enough for a linear search to hurt (a big DeleteRange).
	overlayAt map[string]int
	// rebuildKeys asks End to replace the key filter.
	rebuildKeys bool
}

// Write starts a write transaction.
func (s *Store) Write() *TxnWrite {
	s.writeMu.Lock()
	return &TxnWrite{s: s, b: s.eng.NewBatch(), begin: s.rev.Load()}
}

// Batch is the engine batch the transaction commits, for packages that keep
// their own key space in the same atomic write (lease).
func (t *TxnWrite) Batch() storage.Batch { return t.b }

// Rev is the revision the transaction's changes get: the current revision
// plus one once anything changed.
func (t *TxnWrite) Rev() int64 {
	if len(t.events) > 0 {
		return t.begin + 1
	}
	return t.begin
}

// Changed reports whether the transaction has changed any key.
func (t *TxnWrite) Changed() bool { return len(t.events) > 0 }

// Range reads inside the transaction, seeing its own writes.
func (t *TxnWrite) Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	cur := t.Rev()
	rev, err := checkRev(req.Revision, cur, t.s.compactRev.Load())
	if err != nil {
		return nil, err
	}
	resp, err := rangeAt(ctx, t.b, req, rev, cur)
	if err != nil {
		return nil, err
	}
	return resp, t.s.stillReadable(rev)
}

// latest returns the newest version of user (possibly a tombstone; ok is
// false if there is none or the transaction deleted it): what the
// transaction itself wrote, else the latest-version cache, else the
// engine.
func (t *TxnWrite) latest(user []byte) (rec record, rev revision, ok bool, err error) {
	if o, ok := t.written(user); ok {
		if o.e == nil {
			return rec, rev, false, nil
		}
		return o.e.rec, o.e.rev, true, nil
	}
	if e, hit := t.s.latest.get(user); hit {
		return e.rec, e.rev, true, nil
	}
	prefix := keyPrefix(user)
	if !t.s.keys.mayHold(hashPrefix(prefix)) {
		return rec, rev, false, nil
	}
	t.s.scanKeysOnce()
	k, v, ok, err := t.b.FirstWithPrefix(prefix)
	if err != nil || !ok {
		return rec, rev, false, err
	}
	if _, rev, err = decodeKey(nil, k); err != nil {
		return rec, rev, false, err
	}
	if rec, err = decodeValue(v); err != nil {
		return rec, rev, false, err
	}
	return rec, rev, true, nil
}

// overlayIndexAt is the overlay length from which it is indexed by key.
const overlayIndexAt = 16

// remember records a change of this transaction to a key's newest version.
func (t *TxnWrite) remember(o overlayEntry) {
	t.overlay = append(t.overlay, o)
	switch {
	case t.overlayAt != nil:
		t.overlayAt[o.key] = len(t.overlay) - 1
	case len(t.overlay) >= overlayIndexAt:
		t.overlayAt = make(map[string]int, 2*len(t.overlay))
		for i, o := range t.overlay {
			t.overlayAt[o.key] = i
		}
	}
}

// written returns this transaction's newest change to user, if any.
func (t *TxnWrite) written(user []byte) (overlayEntry, bool) {
	if t.overlayAt != nil {
		i, ok := t.overlayAt[string(user)]
		if !ok {
			return overlayEntry{}, false
		}
		return t.overlay[i], true
	}
	for i := len(t.overlay) - 1; i >= 0; i-- {
		if t.overlay[i].key == string(user) {
			return t.overlay[i], true
		}
	}
	return overlayEntry{}, false
}

func (t *TxnWrite) nextRev() revision {
	return revision{main: t.begin + 1, sub: int64(len(t.events))}
}

// Put writes key=value attached to lease, and returns the previous live
// key-value (nil if the key did not exist).
func (t *TxnWrite) Put(key, value []byte, lease int64) (*mvccpb.KeyValue, error) {
	old, oldRev, ok, err := t.latest(key)
	if err != nil {
		return nil, err
	}
	rev := t.nextRev()
	// Into the key filter before the engine: a key the filter lacks must
	// never be in the engine. A rebuild waits for End: its scan must see
	// this transaction's keys committed.
	if t.s.keys.add(hashPrefix(keyPrefix(key))) {
		t.rebuildKeys = true
	}
	rec := record{create: rev.main, version: 1, lease: lease, value: value}
	var prev *mvccpb.KeyValue
	if ok && !old.tombstone {
		rec.create = old.create
		rec.version = old.version + 1
		prev = &mvccpb.KeyValue{
			Key: bytes.Clone(key), CreateRevision: old.create, ModRevision: oldRev.main,
			Version: old.version, Lease: old.lease, Value: old.value,
		}
	}
	if err := t.b.Set(encodeKey(key, rev), encodeValue(rec)); err != nil {
		return nil, err
	}
	if err := t.b.Set(revKey(rev), key); err != nil {
		return nil, err
	}
	kv := &mvccpb.KeyValue{
		Key: bytes.Clone(key), CreateRevision: rec.create, ModRevision: rev.main,
		Version: rec.version, Lease: lease, Value: bytes.Clone(value),
	}
	t.events = append(t.events, &mvccpb.Event{Type: mvccpb.PUT, Kv: kv, PrevKv: prev})
	// The event's copy of the value is never changed, so the cache can
	// share it.
	rec.value = kv.Value
	t.remember(overlayEntry{key: string(key), e: &latestEntry{rec: rec, rev: rev}})
	return prev, nil
}

// DeleteRange deletes the live keys in [key, end) and returns them.
func (t *TxnWrite) DeleteRange(key, end []byte) ([]*mvccpb.KeyValue, error) {
	kvs, _, err := scan(context.Background(), t.b, key, end, scanOptions{rev: math.MaxInt64})
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		rev := t.nextRev()
		if err := t.b.Set(encodeKey(kv.Key, rev), encodeValue(record{tombstone: true})); err != nil {
			return nil, err
		}
		if err := t.b.Set(revKey(rev), kv.Key); err != nil {
			return nil, err
		}
		t.events = append(t.events, &mvccpb.Event{
			Type:   mvccpb.DELETE,
			Kv:     &mvccpb.KeyValue{Key: kv.Key, ModRevision: rev.main},
			PrevKv: kv,
		})
		t.remember(overlayEntry{key: string(kv.Key)})
	}
	return kvs, nil
}

// End commits the transaction as the result of Raft entry index and
// publishes its events to watchers. The transaction is unusable after.
func (t *TxnWrite) End(index uint64) error {
	defer t.s.writeMu.Unlock()
	defer t.b.Close()
	rev := t.Rev()
	if len(t.events) > 0 {
		if err := putMetaInt(t.b, metaRev, rev); err != nil {
			return err
		}
	}
	if index > 0 {
		if err := putMetaInt(t.b, metaApplied, int64(index)); err != nil {
			return err
		}
	}
	if err := t.b.Commit(); err != nil {
		return err
	}
	for _, o := range t.overlay {
		if o.e == nil {
			t.s.latest.drop(o.key)
		} else {
			t.s.latest.put(o.key, *o.e)
		}
	}
	if t.rebuildKeys {
		t.s.newKeys(t.s.keys.count())
	}
	if index > 0 {
		t.s.applied.Store(index)
	}
	if len(t.events) > 0 {
		t.s.watch.publish(rev, t.events)
	}
	if t.compact > 0 {
		t.s.compactRev.Store(t.compact)
		t.s.watch.compacted(t.compact)
		t.s.compactor.schedule(t.compact)
	}
	return nil
}

// Abort discards the transaction.
func (t *TxnWrite) Abort() {
	t.b.Close()
	t.s.writeMu.Unlock()
}
