package server

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Member is one cluster member as recorded at bootstrap.
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// clusterInfo is what a member remembers about its cluster across
// restarts (kept in DataDir/member/cluster.json).
type clusterInfo struct {
	ClusterID uint64   `json:"clusterID"`
	MemberID  uint64   `json:"memberID"`
	Members   []Member `json:"members"`
}

// memberID computes a member's ID the way etcd does for a new cluster:
// the first 8 bytes of SHA-1 over its sorted peer URLs and the cluster
// token, so the same flags give the same IDs as etcd.
func memberID(peerURLs []url.URL, token string) uint64 {
	strs := urlStrings(peerURLs)
	sort.Strings(strs)
	b := append([]byte(strings.Join(strs, "")), token...)
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// clusterID is SHA-1 over the sorted member IDs, as etcd computes it.
func clusterID(ids []uint64) uint64 {
	sorted := append([]uint64(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b := make([]byte, 0, 8*len(sorted))
	for _, id := range sorted {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i := range us {
		out[i] = us[i].String()
	}
	return out
}

// bootstrapCluster derives the cluster from the --initial-cluster flags.
func bootstrapCluster(cfg *Config) (*clusterInfo, error) {
	if len(cfg.InitialCluster) == 0 {
		return nil, errors.New("server: --initial-cluster is empty")
	}
	self, ok := cfg.InitialCluster[cfg.Name]
	if !ok {
		return nil, fmt.Errorf("server: couldn't find local name %q in the initial cluster configuration", cfg.Name)
	}
	if len(cfg.InitialAdvertisePeerURLs) > 0 && !sameURLs(self, cfg.InitialAdvertisePeerURLs) {
		return nil, fmt.Errorf("server: --initial-cluster has %s=%s but missing from --initial-advertise-peer-urls=%s",
			cfg.Name, strings.Join(urlStrings(self), ","), strings.Join(urlStrings(cfg.InitialAdvertisePeerURLs), ","))
	}
	info := &clusterInfo{}
	var ids []uint64
	names := make([]string, 0, len(cfg.InitialCluster))
	for name := range cfg.InitialCluster {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		urls := cfg.InitialCluster[name]
		m := Member{ID: memberID(urls, cfg.InitialClusterToken), Name: name, PeerURLs: urlStrings(urls)}
		if name == cfg.Name {
			m.ClientURLs = urlStrings(cfg.AdvertiseClientURLs)
			info.MemberID = m.ID
		}
		info.Members = append(info.Members, m)
		ids = append(ids, m.ID)
	}
	info.ClusterID = clusterID(ids)
	return info, nil
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

// pbMembers renders the member list for the Cluster API.
func (info *clusterInfo) pbMembers() []*pb.Member {
	out := make([]*pb.Member, 0, len(info.Members))
	for _, m := range info.Members {
		out = append(out, &pb.Member{
			ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner,
		})
	}
	return out
}
