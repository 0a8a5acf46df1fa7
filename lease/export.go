package lease

import (
	"encoding/binary"
	"fmt"

	"github.com/cairnkv/cairn/storage"
)

// ForEach calls fn with every lease stored in r, in ID order: for
// snapshot formats other than the store's own.
func ForEach(r storage.Reader, fn func(id, ttl int64) error) error {
	it, err := r.NewIter([]byte{prefixLease}, []byte{prefixLease + 1})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		ttl, n := binary.Uvarint(it.Value())
		if len(k) != 9 || n <= 0 {
			return fmt.Errorf("lease: malformed record %x", k)
		}
		if err := fn(int64(binary.BigEndian.Uint64(k[1:])), int64(ttl)); err != nil {
			return err
		}
	}
	return it.Error()
}

// Import writes lease id with ttl seconds into an engine that no lessor
// has open (a data directory being built from a snapshot).
func Import(b storage.Batch, id, ttl int64) error {
	return b.Set(leaseKey(id), binary.AppendUvarint(nil, uint64(ttl)))
}

// ImportAttach records, in such an engine, that key belongs to lease id.
func ImportAttach(b storage.Batch, id int64, key []byte) error {
	return b.Set(append(attachPrefix(id), key...), nil)
}
