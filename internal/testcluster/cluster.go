package testcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
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
	// Proxy puts a fault-injecting proxy in front of each member's peer
	// port, which Partition, Isolate and Heal control. Each member then
	// listens on Member.PeerURL but advertises Member.ProxyURL.
	Proxy bool
	// ClientProxy puts a fault-injecting TCP proxy in front of each
	// member's client port, which CutClient and HealClient control:
	// clients of ProxiedEndpoints reach the members through them, while
	// the harness's own clients (Status, WaitLeader, ...) go direct.
	ClientProxy bool
	// BuildTags build the server with these tags (for example
	// cairn_failpoints), into a binary of its own.
	BuildTags []string
	// Env are extra NAME=value environment variables for every member
	// (for example CAIRN_FAILPOINTS=skipReadIndex).
	Env []string
	// TLS, when set, runs every member with mutual TLS on its client and
	// peer URLs (https), and the harness's clients with TLS.ClientCert.
	TLS *TLS
	// Binary, when set, is the server binary the members run instead of
	// Cairn (EtcdBinary, for a cluster of etcd beside Cairn's).
	Binary string
	// NoInitialCluster starts the members without --initial-cluster and
	// --initial-cluster-state, for a cluster that finds its members
	// another way (v3 discovery flags in Flags).
	NoInitialCluster bool
	// DataDir, when set, names each member's --data-dir (on a test file
	// system, say); nil puts it in the test's temp dir.
	DataDir func(name string) string
}

// TLS is the certificate files of a mutual-TLS cluster. Every member serves
// Cert and trusts CAFile on both ports; the harness's clients present
// ClientCert/ClientKey.
type TLS struct {
	CAFile, CertFile, KeyFile     string
	ClientCertFile, ClientKeyFile string
}

// Flags are the server flags for t, as kubeadm sets them.
func (t *TLS) Flags() []string {
	return []string{
		"--cert-file=" + t.CertFile, "--key-file=" + t.KeyFile,
		"--trusted-ca-file=" + t.CAFile, "--client-cert-auth=true",
		"--peer-cert-file=" + t.CertFile, "--peer-key-file=" + t.KeyFile,
		"--peer-trusted-ca-file=" + t.CAFile, "--peer-client-cert-auth=true",
	}
}

// ClientConfig is a crypto/tls client config with the client
// certificate, trusting CAFile (read once: the harness does not rotate).
func (t *TLS) ClientConfig() (*tls.Config, error) {
	return (transport.TLSInfo{CertFile: t.ClientCertFile, KeyFile: t.ClientKeyFile, TrustedCAFile: t.CAFile}).ClientConfig()
}

func (c *Cluster) scheme() string {
	if c.cfg.TLS != nil {
		return "https"
	}
	return "http"
}

// Cluster is a set of members started together with one --initial-cluster.
type Cluster struct {
	t   testing.TB
	cfg Config
	// Members are every member the cluster has had, in the order they
	// were made: those of New, then those of NewJoiningMember. A removed
	// member keeps its index.
	Members []*Member

	root    string       // the test's temp dir, holding the data dirs
	net     *network     // nil without Config.Proxy
	proxies []*peerProxy // by member index, with Config.Proxy
	// clientProxies are by member index, with Config.ClientProxy.
	clientProxies []*tcpProxy

	credMu         sync.Mutex
	user, password string // see SetCredentials
}

// SetCredentials makes every client the harness makes from now on (its
// own, for Status and WaitLeader, and Client's) authenticate as user,
// for a cluster whose test has turned auth on.
func (c *Cluster) SetCredentials(user, password string) {
	c.credMu.Lock()
	c.user, c.password = user, password
	c.credMu.Unlock()
	for _, m := range c.Members {
		m.dropAdminClient()
	}
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
	bin, err := binary(cfg.BuildTags)
	if cfg.Binary != "" {
		bin, err = cfg.Binary, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, cfg: cfg, root: t.TempDir()} // TempDir before Cleanup below, so members die before it is removed
	if cfg.Proxy {
		c.net = newNetwork()
	}
	t.Cleanup(c.cleanup)
	for i := range cfg.Size {
		name := fmt.Sprintf("m%d", i)
		if cfg.Size == 1 {
			// etcd's default name, so a single member looks like etcd's default.
			name = "default"
		}
		if err := c.addMember(name, bin); err != nil {
			t.Fatal(err)
		}
	}

	for attempt := 1; ; attempt++ {
		if err := c.pickPorts(c.Members); err != nil {
			t.Fatal(err)
		}
		err := c.startAll()
		if err == nil {
			if cfg.Proxy {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := c.learnIDs(ctx); err != nil {
					t.Fatal(err)
				}
			}
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

// addMember appends a member, not started and without ports, opening
// its proxy's port if the cluster has proxies.
func (c *Cluster) addMember(name, bin string) error {
	dataDir := filepath.Join(c.root, name+".data")
	if c.cfg.DataDir != nil {
		dataDir = c.cfg.DataDir(name)
	}
	m := &Member{
		Name:    name,
		DataDir: dataDir,
		t:       c.t,
		c:       c,
		index:   len(c.Members),
		binary:  bin,
	}
	if c.cfg.Proxy {
		p, err := listenProxy(c.net, m.index)
		if err != nil {
			return err
		}
		c.proxies = append(c.proxies, p)
		m.ProxyURL = p.URL
	}
	if c.cfg.ClientProxy {
		p, err := listenTCPProxy()
		if err != nil {
			return err
		}
		c.clientProxies = append(c.clientProxies, p)
		// The proxy forwards bytes, TLS included: its URL has the
		// members' scheme so clients speak TLS through it.
		m.ClientProxyURL = strings.Replace(p.URL, "http://", c.scheme()+"://", 1)
	}
	c.Members = append(c.Members, m)
	return nil
}

// pickPorts gives the members new client and peer ports, and points
// their proxies at the peer ports.
func (c *Cluster) pickPorts(ms []*Member) error {
	ports, err := freePorts(2 * len(ms))
	if err != nil {
		return err
	}
	for i, m := range ms {
		m.ClientURL = fmt.Sprintf("%s://127.0.0.1:%d", c.scheme(), ports[2*i])
		m.PeerURL = fmt.Sprintf("%s://127.0.0.1:%d", c.scheme(), ports[2*i+1])
		if c.cfg.Proxy {
			if err := c.proxies[m.index].setTarget(m.PeerURL); err != nil {
				return err
			}
		}
		if c.cfg.ClientProxy {
			c.clientProxies[m.index].setTarget(fmt.Sprintf("127.0.0.1:%d", ports[2*i]))
		}
	}
	return nil
}

// initialCluster is the --initial-cluster value naming every member New
// started.
func (c *Cluster) initialCluster() string {
	parts := make([]string, c.cfg.Size)
	for i, m := range c.Members[:c.cfg.Size] {
		parts[i] = m.Name + "=" + m.AdvertisePeerURL()
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
	// A member that exits while starting (a crash, a port taken) ends
	// the wait for the others, which could not become ready without it.
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	giveUp := make(chan struct{})
	for _, m := range c.Members {
		wg.Go(func() {
			if err := m.waitReady(c.cfg.StartTimeout, giveUp); err != nil {
				once.Do(func() {
					firstErr = err
					close(giveUp)
				})
			}
		})
	}
	wg.Wait()
	return firstErr
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
	for _, p := range c.proxies {
		p.close()
	}
	for _, p := range c.clientProxies {
		p.close()
	}
	for _, m := range c.Members {
		m.closeAdmin()
	}
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
	return c.newClient(t, c.Endpoints())
}

// InitialClusterFlag is the --initial-cluster value naming every member
// New started (what each was started with), for tools that rebuild their
// data directories (cairnutl snapshot restore).
func (c *Cluster) InitialClusterFlag() string { return c.initialCluster() }
