package audit

import (
	"path/filepath"
	"testing"
	"time"
)

var benchEntry = Entry{
	User: "kube-apiserver", Remote: "10.0.0.7:53211", Method: "/etcdserverpb.KV/Txn",
	Key: []byte("/registry/pods/default/web-7d9c8b6f5-x2k4z"), Revision: 123456,
	Code: "OK", Latency: 1234 * time.Microsecond,
}

// BenchmarkRecord is the cost a request pays when its line is queued:
// copy the keys, take the read lock, send. The timer stops while the
// writer drains the queue, so no line is dropped and the writer's work
// is not counted.
func BenchmarkRecord(b *testing.B) {
	const queue = 4096
	l := newLog(Config{Path: "x", BufferSize: queue, Logger: discardLogger()}, discardSink{}, time.Hour)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%queue == 0 && i > 0 {
			b.StopTimer()
			for len(l.ch) > 0 {
				time.Sleep(10 * time.Microsecond)
			}
			b.StartTimer()
		}
		l.Record(benchEntry)
	}
	b.StopTimer()
	l.Close()
	if l.Dropped() != 0 {
		b.Fatalf("%d dropped", l.Dropped())
	}
}

// BenchmarkRecordFull is Record when the queue is full: the drop path,
// which a request takes while the disk is stuck.
func BenchmarkRecordFull(b *testing.B) {
	s := newStallSink()
	l := newLog(Config{Path: "x", BufferSize: 1, Logger: discardLogger()}, s, time.Hour)
	l.Record(benchEntry)
	<-s.entered
	l.Record(benchEntry) // fills the queue
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Record(benchEntry)
		}
	})
	b.StopTimer()
	close(s.release)
	l.Close()
}

// BenchmarkRecordSkippedRead is a read with Reads off: the common case
// on a read-heavy cluster, which must cost next to nothing.
func BenchmarkRecordSkippedRead(b *testing.B) {
	l := newLog(Config{Path: "x", Logger: discardLogger()}, discardSink{}, time.Hour)
	e := benchEntry
	e.Read = true
	b.ReportAllocs()
	for b.Loop() {
		l.Record(e)
	}
	l.Close()
}

// BenchmarkWriteFile is the writer's throughput to a real file: each op
// is one line recorded and written, with Close (the final flush) inside
// the timing and a queue large enough that nothing is dropped.
func BenchmarkWriteFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.log")
	l, err := Open(Config{Path: path, BufferSize: b.N + 1, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Record(benchEntry)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	if l.Dropped() != 0 {
		b.Fatalf("%d dropped", l.Dropped())
	}
}

// BenchmarkEncode is the writer's per-line encoding cost.
func BenchmarkEncode(b *testing.B) {
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEntry(buf[:0], benchEntry, "m1")
	}
}
