package wal

import (
	"fmt"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkSave measures one Save — encode, one write, one fdatasync — of a
// Ready carrying n entries of 256 bytes and a new commit index.
func BenchmarkSave(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			w := mustOpen(b, b.TempDir(), Options{})
			defer mustClose(b, w)
			data := make([]byte, 256)
			ents := make([]*raftpb.Entry, n)
			for i := range ents {
				ents[i] = ent(uint64(i+1), 1, "")
				ents[i].Data = data
			}
			hs := hardState(1, 1, 0)
			next := uint64(1)
			b.SetBytes(int64(n * len(data)))
			b.ReportAllocs()
			for b.Loop() {
				for i, e := range ents {
					*e.Index = next + uint64(i)
				}
				next += uint64(n)
				*hs.Commit = next - 1
				if err := w.Save(hs, ents); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
