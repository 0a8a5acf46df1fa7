package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/apply"
	"github.com/cairnkv/cairn/membership"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/snapshot"
	"github.com/cairnkv/cairn/storage"
	"github.com/cairnkv/cairn/wal"
)

// RestoreConfig is `cairnutl snapshot restore`'s input (etcdutl's flags).
type RestoreConfig struct {
	SnapshotPath string
	// Name, PeerURLs, InitialCluster and InitialClusterToken describe the
	// new cluster and this member in it, as the member's own flags do.
	Name                string
	PeerURLs            []url.URL
	InitialCluster      map[string][]url.URL
	InitialClusterToken string
	DataDir             string // "<name>.etcd" if empty, as etcdutl
	WALDir              string // DataDir/member/wal if empty
	SkipHashCheck       bool
	// BumpRevision raises the store's revision, and MarkCompacted then
	// marks the new revision compacted (etcdutl requires both or neither).
	BumpRevision  uint64
	MarkCompacted bool
	Logger        *slog.Logger
}

// RestoreDataDir builds a new member's data directory from a snapshot in
// either format: the store, leases and auth state of the snapshot, the
// new cluster's members, and a WAL that starts the member as a restarted
// member of that cluster at the log position just past its bootstrap (as
// etcdutl's restore leaves an etcd data directory). Every member of the
// new cluster restores the same snapshot with its own name and URLs and
// the same --initial-cluster and token; the members then start with
// their usual flags and elect a leader.
//
// Nothing is left behind on failure: the directory is built beside the
// target under a temporary name and renamed into place only when
// complete. An existing, non-empty data directory or an existing WAL
// directory is refused, as etcdutl refuses them.
func RestoreDataDir(cfg RestoreConfig) (err error) {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	if (cfg.BumpRevision == 0) == cfg.MarkCompacted {
		return errors.New("--mark-compacted required if --revision-bump > 0")
	}
	sc := &Config{Name: cfg.Name, InitialCluster: cfg.InitialCluster, InitialClusterToken: cfg.InitialClusterToken,
		InitialAdvertisePeerURLs: cfg.PeerURLs}
	members, err := initialMembers(sc)
	if err != nil {
		return err
	}
	self := memberByURLs(members, urlStrings(cfg.PeerURLs))
	if self == nil || self.Name != cfg.Name {
		return fmt.Errorf("couldn't find local name %q in the initial cluster configuration", cfg.Name)
	}
	dataDir := cfg.DataDir
	if dataDir == "" {
		dataDir = cfg.Name + ".etcd"
	}
	if ents, err := os.ReadDir(dataDir); err == nil && len(ents) > 0 || err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("data-dir %q not empty or could not be read", dataDir)
	}
	walDir := cfg.WALDir
	if walDir != "" {
		if _, err := os.Stat(walDir); err == nil {
			return fmt.Errorf("wal-dir %q exists", walDir)
		}
	}

	// Build beside the targets, then rename.
	tmpData := filepath.Clean(dataDir) + ".restoring"
	os.RemoveAll(tmpData)
	tmpWAL := filepath.Join(tmpData, "member", "wal")
	if walDir != "" {
		tmpWAL = filepath.Clean(walDir) + ".restoring"
		os.RemoveAll(tmpWAL)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmpData)
			if walDir != "" {
				os.RemoveAll(tmpWAL)
			}
		}
	}()
	memberDir := filepath.Join(tmpData, "member")
	if err := os.MkdirAll(memberDir, 0o700); err != nil {
		return err
	}
	lg.Info("restoring snapshot", "path", cfg.SnapshotPath, "wal-dir", firstNonEmpty(walDir, filepath.Join(dataDir, "member", "wal")),
		"data-dir", dataDir)
	format, meta, err := restoreEngine(filepath.Join(memberDir, "db"), cfg, members)
	if err != nil {
		return err
	}
	ids := make([]uint64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	info := &clusterInfo{ClusterID: membership.ClusterID(ids), MemberID: self.ID}
	if err := saveClusterInfo(filepath.Join(memberDir, "cluster.json"), info); err != nil {
		return err
	}
	if err := writeRestoredWAL(tmpWAL, ids, meta.Applied); err != nil {
		return err
	}
	// The entries made inside the new directory (db/, wal/, cluster.json
	// in member/; member/ itself) must be durable before the rename that
	// publishes it.
	if err := syncDirs(memberDir, tmpData); err != nil {
		return err
	}
	if walDir != "" {
		if err := os.MkdirAll(filepath.Dir(filepath.Clean(walDir)), 0o700); err != nil {
			return err
		}
		if err := os.Rename(tmpWAL, walDir); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(filepath.Clean(walDir))); err != nil {
			return err
		}
	}
	os.Remove(dataDir) // an empty directory may stand in the way
	if err := os.Rename(tmpData, dataDir); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(filepath.Clean(dataDir))); err != nil {
		return err
	}
	lg.Info("restored snapshot", "path", cfg.SnapshotPath, "format", format.String(), "data-dir", dataDir,
		"revision", meta.Rev, "compact-revision", meta.Compact, "member-id", fmt.Sprintf("%x", self.ID),
		"cluster-id", fmt.Sprintf("%x", info.ClusterID))
	return nil
}

// restoreEngine loads the snapshot into a new engine at dir and gives it
// the new cluster's state: members, applied index, bumped revision.
func restoreEngine(dir string, cfg RestoreConfig, members []*membership.Member) (snapshot.Format, mvcc.Meta, error) {
	eng, err := storage.OpenPebble(dir, storage.PebbleOptions{Logger: cfg.Logger, Split: mvcc.SplitKey})
	if err != nil {
		return 0, mvcc.Meta{}, err
	}
	defer eng.Close()
	meta, format, err := snapshot.Load(cfg.SnapshotPath, eng, cfg.SkipHashCheck)
	if err != nil {
		return format, meta, err
	}
	// The new cluster's log holds the members' bootstrap, one entry each;
	// the store has applied exactly that much.
	meta.Applied = uint64(len(members))
	if cfg.BumpRevision > 0 {
		meta.Rev += int64(cfg.BumpRevision)
		if cfg.MarkCompacted {
			meta.Compact = meta.Rev
		}
	}
	b := eng.NewWriteBatch()
	defer b.Close()
	for _, f := range []func(storage.Batch) error{
		func(b storage.Batch) error { return membership.Replace(b, members) },
		apply.ForgetLog,
		func(b storage.Batch) error { return mvcc.ImportMeta(b, meta) },
	} {
		if err := f(b); err != nil {
			return format, meta, err
		}
	}
	if err := b.Commit(); err != nil {
		return format, meta, err
	}
	return format, meta, eng.Flush()
}

// writeRestoredWAL starts a WAL whose snapshot marker is the new
// cluster's bootstrap: index n (one entry per member), term 1, all
// members voters, committed.
func writeRestoredWAL(dir string, ids []uint64, n uint64) error {
	w, err := wal.Open(dir, wal.Options{})
	if err != nil {
		return err
	}
	term := uint64(1)
	if err := w.SaveSnapshot(&raftpb.SnapshotMetadata{Index: &n, Term: &term, ConfState: &raftpb.ConfState{Voters: ids}}); err != nil {
		w.Close()
		return err
	}
	vote := ids[0]
	if err := w.Save(&raftpb.HardState{Term: &term, Vote: &vote, Commit: &n}, nil); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			return x
		}
	}
	return ""
}
