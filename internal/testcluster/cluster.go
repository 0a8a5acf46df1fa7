package testcluster

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config describes the cluster a test wants. The zero value is one member
// with the server's defaults.
type Config struct {
	// Size is the number of members; 0 means 1.
	Size int
	// Flags are extra server flags given to every member, after the ones
	// the harness sets (name, data dir, URLs, initial cluster), so a flag
	// here overrides the harness's.
	Flags []string
	// StartTimeout bounds how long a member may take to start serving;
	// 0 means 30 seconds (twice that when the server is built with -race).
	StartTimeout time.Duration
}

// Cluster is a set of members started together with one --initial-cluster.
type Cluster struct {
	t       testing.TB
	cfg     Config
	Members []*Member
}

// startAttempts bounds how often New picks new ports when another process
// took one of the picked ones before the members could listen on it.
const startAttempts = 3

// New starts a cluster of cfg.Size members and waits until every one of
// them serves clients. It fails the test if they do not.
func New(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if cfg.Size == 0 {
		cfg.Size = 1
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
		if raceServer() {
			cfg.StartTimeout *= 2
		}
	}
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, cfg: cfg}
	root := t.TempDir() // before Cleanup below, so members die before it is removed
	for i := range cfg.Size {
		name := fmt.Sprintf("m%d", i)
		if cfg.Size == 1 {
			// etcd's default name, so a single member looks like etcd's default.
			name = "default"
		}
		c.Members = append(c.Members, &Member{
			Name:    name,
			DataDir: filepath.Join(root, name+".data"),
			t:       t,
			c:       c,
			binary:  bin,
		})
	}
	t.Cleanup(c.cleanup)

	for attempt := 1; ; attempt++ {
		if err := c.pickPorts(); err != nil {
			t.Fatal(err)
		}
		err := c.startAll()
		if err == nil {
			return c
		}
		if !isAddrInUse(err) || attempt == startAttempts {
			t.Fatal(err)
		}
		t.Logf("testcluster: %v; retrying on other ports", err)
		c.killAll()
		for _, m := range c.Members {
			m.wipe()
		}
	}
}

// NewMember starts a one-member cluster and returns its member.
func NewMember(t testing.TB, cfg Config) *Member {
	t.Helper()
	cfg.Size = 1
	return New(t, cfg).Members[0]
}

func (c *Cluster) pickPorts() error {
	ports, err := freePorts(2 * len(c.Members))
	if err != nil {
		return err
	}
	for i, m := range c.Members {
		m.ClientURL = fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		m.PeerURL = fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
	}
	return nil
}

// initialCluster is the --initial-cluster value naming every member.
func (c *Cluster) initialCluster() string {
	parts := make([]string, len(c.Members))
	for i, m := range c.Members {
		parts[i] = m.Name + "=" + m.PeerURL
	}
	return strings.Join(parts, ",")
}

// startAll launches every member at once (members of a new multi-member
// cluster wait for each other before they serve) and waits for all.
func (c *Cluster) startAll() error {
	for _, m := range c.Members {
		if err := m.launch(); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.Members))
	for i, m := range c.Members {
		wg.Go(func() { errs[i] = m.waitReady(c.cfg.StartTimeout) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) killAll() {
	for _, m := range c.Members {
		if m.Running() {
			m.kill()
		}
	}
}

// cleanup kills what is still running, then reports what the members
// said if the test failed or a race-enabled member found a data race.
func (c *Cluster) cleanup() {
	c.killAll()
	for _, m := range c.Members {
		logs := m.Logs()
		if raceServer() && strings.Contains(logs, "WARNING: DATA RACE") {
			c.t.Errorf("testcluster: member %s reported a data race", m.Name)
		}
		if c.t.Failed() {
			c.t.Logf("testcluster: output of member %s (%s):\n%s", m.Name, m.ClientURL, logs)
		}
	}
}

// Endpoints are the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientURL
	}
	return eps
}

// Client returns a client of the whole cluster, closed when t ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return newClient(t, c.Endpoints())
}
