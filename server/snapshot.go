package server

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/snapshot"
)

// snapshotStore moves the store's contents with raft's MsgSnap: the
// leader streams a consistent copy of its store (mvcc.WriteSnapshot); the
// follower saves it under member/snap before raft sees the message, and
// the apply loop restores the store from the file.
//
// The store may be ahead of the raft snapshot's index (raftnode names the
// leader's applied index when the message left raft; the store is written
// when the transport sends it, later). That is safe: after the
// restore the apply loop skips log entries at or below the store's own
// applied index, and re-applies only membership changes to raft.
type snapshotStore struct{ s *Server }

func (ss snapshotStore) dir() string { return filepath.Join(ss.s.cfg.DataDir, "member", "snap") }

func (ss snapshotStore) path(index uint64) string {
	return filepath.Join(ss.dir(), fmt.Sprintf("%016x.cairnsnap", index))
}

func (ss snapshotStore) Write(m *raftpb.Message, w io.Writer) error {
	_, err := ss.s.store.WriteSnapshot(w)
	return err
}

func (ss snapshotStore) Receive(m *raftpb.Message, r io.Reader) error {
	if err := os.MkdirAll(ss.dir(), 0o700); err != nil {
		return err
	}
	// snap/ itself may be new: its entry in member/ must survive a power
	// cut along with the snapshot the WAL is about to point at.
	if err := syncDir(filepath.Dir(ss.dir())); err != nil {
		return err
	}
	index := m.GetSnapshot().GetMetadata().GetIndex()
	final := ss.path(index)
	f, err := os.CreateTemp(ss.dir(), "incoming-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("server: receive snapshot %d: %w", index, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Read the file back, from a new descriptor, and check its SHA-256
	// before raft hears of it: once raft has taken the snapshot the
	// member must restore from this file, and a corrupt one would stop
	// it for good. Refused here, the leader sends it again.
	if err := verifySnapshot(f.Name()); err != nil {
		return fmt.Errorf("server: receive snapshot %d: %w", index, err)
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return err
	}
	return syncDir(ss.dir())
}

// verifySnapshot reads the snapshot file at path and checks its SHA-256.
func verifySnapshot(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := mvcc.ReadSnapshot(f, func(k, v []byte) error { return nil }); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// restore replaces the store with the received snapshot for raft snapshot
// snap, then reloads every layer that keeps state in the engine.
func (s *Server) restoreSnapshot(snap *raftpb.Snapshot) error {
	s.metrics.SnapshotApplying.Set(1)
	defer s.metrics.SnapshotApplying.Set(0)
	path := snapshotStore{s}.path(snap.GetMetadata().GetIndex())
	if err := s.restoreFrom(path); err != nil {
		return err
	}
	// Older snapshot files are no longer needed; a newer one may have
	// arrived meanwhile and is still to be restored. (Names are the
	// index in fixed-width hex, so they sort by index.)
	files, _ := filepath.Glob(filepath.Join(snapshotStore{s}.dir(), "*.cairnsnap"))
	for _, f := range files {
		if filepath.Base(f) < filepath.Base(path) {
			os.Remove(f)
		}
	}
	return nil
}

func (s *Server) restoreFrom(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("server: open snapshot: %w", err)
	}
	defer f.Close()
	if err := s.store.Restore(f, path); err != nil {
		return err
	}
	if err := s.lessor.Reload(s.eng); err != nil {
		return err
	}
	if err := s.alarms.Reload(s.eng); err != nil {
		return err
	}
	if err := s.members.Reload(s.eng); err != nil {
		return err
	}
	if err := s.auth.Reload(s.eng); err != nil {
		return err
	}
	s.syncPeers()
	s.noteMembership()
	s.lg.Info("server: restored the store from a snapshot", "path", path, "revision", s.store.Rev(), "applied", s.store.AppliedIndex())
	return nil
}

// SnapshotFile writes the member's snapshot for Maintenance.Snapshot (and
// scheduled backups) to a temporary file under member/snap: in etcd's
// format unless --snapshot-format cairn. The file sits in the data
// directory, not in the system's temporary directory, which may be
// memory-backed and small.
func (s *Server) SnapshotFile() (path string, rev int64, remove func(), err error) {
	dir := snapshotStore{s}.dir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, nil, err
	}
	f, err := os.CreateTemp(dir, "client-*.snapshot")
	if err != nil {
		return "", 0, nil, err
	}
	path = f.Name()
	// The clean-up is its own variable: the error returns below set the
	// named result remove to nil before this deferred call runs.
	name := path
	rm := func() { os.Remove(name) }
	remove = rm
	defer func() {
		if err != nil {
			rm()
		}
	}()
	if s.cfg.SnapshotFormat == "cairn" {
		defer f.Close()
		rev, err = s.store.WriteSnapshot(f)
		if err != nil {
			return "", 0, nil, err
		}
		return path, rev, remove, f.Close()
	}
	f.Close()
	os.Remove(path) // bbolt creates its file
	view := s.store.Snapshot()
	defer view.Close()
	rev, _, err = snapshot.WriteEtcd(view, path, snapshot.EtcdOptions{Term: s.Term(), ClusterVersion: s.ClusterVersion()})
	if err != nil {
		return "", 0, nil, err
	}
	return path, rev, remove, nil
}
