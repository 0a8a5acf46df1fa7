package wal_test

import (
	"fmt"
	"log"
	"os"

	"github.com/cairnkv/cairn/wal"
	"go.etcd.io/raft/v3/raftpb"
)

func Example() {
	dir, err := os.MkdirTemp("", "wal-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// First run: persist what raft hands over in two Readys.
	w, err := wal.Open(dir, wal.Options{})
	if err != nil {
		log.Fatal(err)
	}
	entry := func(index uint64, data string) *raftpb.Entry {
		return &raftpb.Entry{Index: new(index), Term: new(uint64(1)), Data: []byte(data)}
	}
	hs := &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(uint64(0))}
	if err := w.Save(hs, []*raftpb.Entry{entry(1, "put a=1"), entry(2, "put b=2")}); err != nil {
		log.Fatal(err)
	}
	hs.Commit = new(uint64(2))
	if err := w.Save(hs, []*raftpb.Entry{entry(3, "put c=3")}); err != nil {
		log.Fatal(err)
	}
	// A snapshot covering index 2 was written elsewhere; mark it.
	if err := w.SaveSnapshot(&raftpb.SnapshotMetadata{Index: new(uint64(2)), Term: new(uint64(1))}); err != nil {
		log.Fatal(err)
	}
	w.Close()

	// After a restart: read back and hand to raft's storage.
	w, err = wal.Open(dir, wal.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	snap, hs, ents, err := w.ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("snapshot at %d, commit %d\n", snap.GetIndex(), hs.GetCommit())
	for _, e := range ents {
		fmt.Printf("entry %d: %s\n", e.GetIndex(), e.GetData())
	}
	// Output:
	// snapshot at 2, commit 2
	// entry 3: put c=3
}
