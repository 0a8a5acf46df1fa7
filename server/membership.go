package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/membership"
)

// clusterInfo is what a member remembers about its identity across
// restarts (DataDir/member/cluster.json). The member list itself is
// replicated state and lives in the store (package membership).
type clusterInfo struct {
	ClusterID uint64 `json:"clusterID"`
	MemberID  uint64 `json:"memberID"`
}

// bootResult is how the member starts raft and whom it talks to first.
type bootResult struct {
	peers     []*membership.Member
	raftPeers []raft.Peer
	join      bool
	single    bool
}

// bootstrap works out the member's identity: from cluster.json on a
// restart, from --initial-cluster for a new cluster, or from a running
// cluster's member list for a member joining with
// --initial-cluster-state existing.
func (s *Server) bootstrap(infoPath, walDir string) (*bootResult, error) {
	cfg, lg := s.cfg, s.lg
	info, err := loadClusterInfo(infoPath)
	switch {
	case err == nil:
		s.info = info
		peers := s.members.Members()
		boot := &bootResult{}
		if len(peers) == 0 {
			// Nothing applied yet: a member that joined and has not
			// caught up, or one killed (or cut off by a power loss)
			// between saving cluster.json and its WAL's first record.
			// Reach the cluster through the members named at start; a
			// member of a new cluster (its saved cluster ID is the one
			// --initial-cluster gives) bootstraps raft again from them if
			// its WAL turns out empty (raftnode ignores the peers
			// otherwise), and any other waits to hear from the leader.
			if peers, err = initialMembers(cfg); err != nil {
				return nil, err
			}
			ids := make([]uint64, 0, len(peers))
			for _, m := range peers {
				ids = append(ids, m.ID)
			}
			if cfg.InitialClusterState != "existing" && membership.ClusterID(ids) == info.ClusterID {
				for _, m := range peers {
					boot.raftPeers = append(boot.raftPeers, raft.Peer{ID: m.ID, Context: membership.Context(m)})
				}
			} else {
				boot.join = true
			}
		}
		if cfg.Discovery != nil {
			lg.Warn("discovery token is ignored since cluster already initialized; valid logs are found", "wal-dir", walDir)
		}
		lg.Info("server: restarting member", "name", cfg.Name, "member-id", fmt.Sprintf("%x", info.MemberID),
			"cluster-id", fmt.Sprintf("%x", info.ClusterID), "data-dir", cfg.DataDir)
		boot.peers, boot.single = peers, len(peers) == 1 && peers[0].ID == info.MemberID
		return boot, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}

	if cfg.Discovery != nil && (cfg.InitialClusterState == "" || cfg.InitialClusterState == "new") {
		if err := s.discover(); err != nil {
			return nil, err
		}
	}
	initial, err := initialMembers(cfg)
	if err != nil {
		return nil, err
	}
	self := memberByURLs(initial, urlStrings(cfg.InitialAdvertisePeerURLs))
	boot := &bootResult{}
	switch cfg.InitialClusterState {
	case "", "new":
		if self == nil {
			return nil, fmt.Errorf("server: couldn't find local name %q in the initial cluster configuration", cfg.Name)
		}
		ids := make([]uint64, 0, len(initial))
		for _, m := range initial {
			ids = append(ids, m.ID)
			boot.raftPeers = append(boot.raftPeers, raft.Peer{ID: m.ID, Context: membership.Context(m)})
		}
		info = &clusterInfo{ClusterID: membership.ClusterID(ids), MemberID: self.ID}
		boot.peers = initial
		boot.single = len(initial) == 1
	case "existing":
		var urls []string
		for _, m := range initial {
			if self == nil || m.ID != self.ID {
				urls = append(urls, m.PeerURLs...)
			}
		}
		cid, remote, err := fetchCluster(urls, 5*time.Second)
		if err != nil {
			return nil, err
		}
		me := memberByURLs(remote, urlStrings(cfg.InitialAdvertisePeerURLs))
		if me == nil {
			return nil, fmt.Errorf("server: this member (peer URLs %s) is not in the cluster's member list; add it with 'etcdctl member add' first",
				strings.Join(urlStrings(cfg.InitialAdvertisePeerURLs), ","))
		}
		info = &clusterInfo{ClusterID: cid, MemberID: me.ID}
		boot.peers = remote
		boot.join = true
	default:
		return nil, fmt.Errorf("server: unknown --initial-cluster-state %q", cfg.InitialClusterState)
	}
	if err := saveClusterInfo(infoPath, info); err != nil {
		return nil, fmt.Errorf("server: save cluster info: %w", err)
	}
	s.info = info
	lg.Info("server: starting new member", "name", cfg.Name, "member-id", fmt.Sprintf("%x", info.MemberID),
		"cluster-id", fmt.Sprintf("%x", info.ClusterID), "state", cfg.InitialClusterState, "data-dir", cfg.DataDir)
	return boot, nil
}

// initialMembers turns --initial-cluster into members with etcd's IDs.
func initialMembers(cfg *Config) ([]*membership.Member, error) {
	if len(cfg.InitialCluster) == 0 {
		return nil, errors.New("server: --initial-cluster is empty")
	}
	if self, ok := cfg.InitialCluster[cfg.Name]; ok && len(cfg.InitialAdvertisePeerURLs) > 0 && !sameURLs(self, cfg.InitialAdvertisePeerURLs) {
		return nil, fmt.Errorf("server: --initial-cluster has %s=%s but missing from --initial-advertise-peer-urls=%s",
			cfg.Name, strings.Join(urlStrings(self), ","), strings.Join(urlStrings(cfg.InitialAdvertisePeerURLs), ","))
	}
	names := make([]string, 0, len(cfg.InitialCluster))
	for name := range cfg.InitialCluster {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]*membership.Member, 0, len(names))
	for _, name := range names {
		urls := urlStrings(cfg.InitialCluster[name])
		out = append(out, &membership.Member{ID: membership.ComputeID(urls, cfg.InitialClusterToken, nil), Name: name, PeerURLs: urls})
	}
	return out, nil
}

// memberByURLs finds the member whose peer URLs are exactly urls.
func memberByURLs(ms []*membership.Member, urls []string) *membership.Member {
	want := append([]string(nil), urls...)
	sort.Strings(want)
	for _, m := range ms {
		got := append([]string(nil), m.PeerURLs...)
		sort.Strings(got)
		if strings.Join(got, ",") == strings.Join(want, ",") {
			return m
		}
	}
	return nil
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i := range us {
		out[i] = us[i].String()
	}
	return out
}

func sameURLs(a, b []url.URL) bool {
	as, bs := urlStrings(a), urlStrings(b)
	sort.Strings(as)
	sort.Strings(bs)
	return strings.Join(as, ",") == strings.Join(bs, ",")
}

func loadClusterInfo(path string) (*clusterInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var info clusterInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("server: parse %s: %w", path, err)
	}
	return &info, nil
}

func saveClusterInfo(path string, info *clusterInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// syncDirs fsyncs each directory, making the entries in it durable.
func syncDirs(dirs ...string) error {
	for _, dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// discover replaces the initial cluster with the one the v3 discovery
// service gathers (see package discovery). As in etcd, member and cluster
// IDs are then computed with the discovery token as the cluster token, so
// Cairn and etcd members discovered together agree on them.
func (s *Server) discover() error {
	cfg := s.cfg
	cfg.InitialClusterToken = cfg.Discovery.Token
	urls := urlStrings(cfg.InitialAdvertisePeerURLs)
	id := membership.ComputeID(urls, cfg.InitialClusterToken, nil)
	parts := make([]string, len(urls))
	for i, u := range urls {
		parts[i] = cfg.Name + "=" + u
	}
	sort.Strings(parts)
	s.lg.Info("Bootstrapping cluster using v3 discovery.")
	ctx, cancel := s.stopContext()
	defer cancel()
	str, err := discovery.Join(ctx, s.lg, *cfg.Discovery, id, strings.Join(parts, ","))
	if err != nil {
		return fmt.Errorf("error validating peerURLs: discovery: join: %w", err)
	}
	ic := map[string][]url.URL{}
	seen := map[string]bool{}
	for _, part := range strings.Split(str, ",") {
		name, raw, _ := strings.Cut(part, "=")
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("discovery: %w", err)
		}
		if seen[u.String()] {
			return fmt.Errorf("discovery cluster %s has duplicate url", str)
		}
		seen[u.String()] = true
		ic[name] = append(ic[name], *u)
	}
	cfg.InitialCluster = ic
	return nil
}
