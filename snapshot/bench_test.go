package snapshot

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/mvcc"
)

// BenchmarkWriteEtcd writes a store of 100,000 keys of 1 KiB (one
// version each) as an etcd snapshot.
func BenchmarkWriteEtcd(b *testing.B) {
	eng := newEngine(b)
	batch := eng.NewWriteBatch()
	val := make([]byte, 1024)
	for i := range 100000 {
		v := mvcc.Version{Key: fmt.Appendf(nil, "key/%08d", i), Value: val, Create: int64(i + 2), Mod: int64(i + 2), Ver: 1}
		if err := mvcc.ImportVersion(batch, &v); err != nil {
			b.Fatal(err)
		}
	}
	must(b, mvcc.ImportMeta(batch, mvcc.Meta{Rev: 100001}))
	must(b, batch.Commit())
	batch.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := WriteEtcd(eng, filepath.Join(b.TempDir(), "s.db"), EtcdOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
