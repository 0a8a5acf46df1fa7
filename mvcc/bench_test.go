package mvcc

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Hot-path benchmarks (issue 4): the apply-side put, a 1,000-key range,
// and watch fan-out to many watchers of one key.

func BenchmarkPut(b *testing.B) {
	s := newStore(b)
	val := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tw := s.Write()
		if _, err := tw.Put([]byte(fmt.Sprintf("key%d", i%100000)), val, 0); err != nil {
			b.Fatal(err)
		}
		if err := tw.End(uint64(i + 1)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRange1000(b *testing.B) {
	s := newStore(b)
	val := make([]byte, 256)
	for i := 0; i < 1000; i++ {
		tw := s.Write()
		if _, err := tw.Put([]byte(fmt.Sprintf("r/%04d", i)), val, 0); err != nil {
			b.Fatal(err)
		}
		if err := tw.End(uint64(i + 1)); err != nil {
			b.Fatal(err)
		}
	}
	req := &pb.RangeRequest{Key: []byte("r/"), RangeEnd: []byte("r0")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := s.Range(context.Background(), req)
		if err != nil || len(resp.Kvs) != 1000 {
			b.Fatalf("%v %d", err, len(resp.Kvs))
		}
	}
}

// BenchmarkWatchFanOut: one put delivered to 1,000 watchers of the same
// key, on 10 streams whose channels are drained as fast as possible; an
// op ends when every watcher has the event (the watchers may fall behind
// and catch up on the way, as in a real server).
func BenchmarkWatchFanOut(b *testing.B) {
	s := newStore(b)
	const streams, perStream = 10, 100
	done := make(chan struct{})
	defer close(done)
	var delivered atomic.Int64
	for i := 0; i < streams; i++ {
		ws := s.NewWatchStream(256)
		for j := 0; j < perStream; j++ {
			if _, err := ws.Watch(WatchOptions{Key: []byte("hot")}); err != nil {
				b.Fatal(err)
			}
		}
		go func() {
			for {
				select {
				case r := <-ws.C:
					ws.Freed()
					delivered.Add(int64(len(r.Events)))
				case <-done:
					return
				}
			}
		}()
	}
	val := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tw := s.Write()
		if _, err := tw.Put([]byte("hot"), val, 0); err != nil {
			b.Fatal(err)
		}
		if err := tw.End(uint64(i + 1)); err != nil {
			b.Fatal(err)
		}
	}
	for want := int64(b.N) * streams * perStream; delivered.Load() < want; {
		time.Sleep(100 * time.Microsecond)
	}
}
