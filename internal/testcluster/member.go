package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// stopTimeout bounds a graceful stop before the harness gives up and kills.
const stopTimeout = 20 * time.Second

// Member is one server process of a Cluster. Its name, data directory and
// URLs stay the same across restarts.
type Member struct {
	// Name is the member's --name.
	Name string
	// DataDir is the member's --data-dir, under the test's temp dir.
	DataDir string
	// ClientURL and PeerURL are the member's loopback URLs: where it
	// listens for clients and for peers.
	ClientURL string
	PeerURL   string
	// ProxyURL is the URL of the fault-injecting proxy in front of
	// PeerURL, which the member advertises to its peers instead; empty
	// without Config.Proxy.
	ProxyURL string
	// ClientProxyURL is the URL of the fault-injecting TCP proxy in
	// front of ClientURL; empty without Config.ClientProxy.
	ClientProxyURL string
	// InitialCluster and ClusterState are the member's
	// --initial-cluster and --initial-cluster-state. Empty, they are the
	// members New started, and "new"; Join sets them for a member added
	// to a running cluster. A server reads them only on its first start.
	InitialCluster string
	ClusterState   string
	// Flags are extra flags for this member alone, given after the
	// cluster's; change them between a stop and a start to restart the
	// member with other settings.
	Flags []string

	t      testing.TB
	c      *Cluster
	index  int // in c.Members
	binary string
	logs   logBuffer

	mu    sync.Mutex
	proc  *process // nil when not running
	id    uint64   // the member ID, once learnt
	runs  int      // how many times the member was launched
	admin *clientv3.Client
}

// process is one run of a member.
type process struct {
	cmd  *exec.Cmd
	out  logBuffer     // this run's output alone
	done chan struct{} // closed once the process has exited
	err  error         // from Wait; read after done
}

// Endpoint is the member's client URL, for clientv3.Config.Endpoints.
func (m *Member) Endpoint() string { return m.ClientURL }

// Client returns a client of this member alone, closed when t ends.
func (m *Member) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return m.c.newClient(t, []string{m.ClientURL})
}

// AdvertisePeerURL is the peer URL the other members know this member
// by: ProxyURL if there is one, else PeerURL.
func (m *Member) AdvertisePeerURL() string {
	if m.ProxyURL != "" {
		return m.ProxyURL
	}
	return m.PeerURL
}

// ID is the member's ID as the cluster's member list gives it, or 0 if
// the harness has not learnt it yet (see Cluster.MemberIDs).
func (m *Member) ID() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

// Status asks the member alone for its status.
func (m *Member) Status(ctx context.Context) (*clientv3.StatusResponse, error) {
	cli, err := m.adminClient()
	if err != nil {
		return nil, err
	}
	return cli.Status(ctx, m.ClientURL)
}

// dropAdminClient closes the kept admin client, so the next one is made
// with the cluster's current credentials.
func (m *Member) dropAdminClient() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.admin != nil {
		m.admin.Close()
		m.admin = nil
	}
}

// adminClient is the harness's own client of this member alone, kept
// for the life of the cluster.
func (m *Member) adminClient() (*clientv3.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.admin != nil {
		return m.admin, nil
	}
	cli, err := m.c.clientFor([]string{m.ClientURL}, time.Second)
	if err != nil {
		return nil, fmt.Errorf("testcluster: client for member %s: %w", m.Name, err)
	}
	m.admin = cli
	return cli, nil
}

func (m *Member) closeAdmin() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.admin != nil {
		m.admin.Close()
		m.admin = nil
	}
}

func (m *Member) setID(id uint64) {
	m.mu.Lock()
	m.id = id
	m.mu.Unlock()
	if m.c.net != nil {
		m.c.net.setID(m.index, id)
	}
}

// Logs returns everything the member wrote to stdout and stderr over all
// its runs, with a line from the harness where each run starts and ends.
func (m *Member) Logs() string { return m.logs.String() }

// PID is the process ID of the running member, or 0.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return 0
	}
	return m.proc.cmd.Process.Pid
}

// Running reports whether the member's process is running: started and
// not yet seen to exit.
func (m *Member) Running() bool {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Start starts the stopped member on its data and ports and waits until
// it serves clients. With several members, a member may not be able to
// serve until enough of the others run: start those without waiting
// through Launch, then Wait.
func (m *Member) Start() {
	m.t.Helper()
	if err := m.launch(); err != nil {
		m.t.Fatal(err)
	}
	m.Wait()
}

// Launch starts the stopped member's process without waiting for it.
func (m *Member) Launch() {
	m.t.Helper()
	if err := m.launch(); err != nil {
		m.t.Fatal(err)
	}
}

// Wait waits until the launched member serves clients.
func (m *Member) Wait() {
	m.t.Helper()
	if err := m.waitReady(m.c.cfg.StartTimeout, nil); err != nil {
		m.t.Fatal(err)
	}
}

// Kill sends SIGKILL and waits for the process to exit: a crash, with
// nothing flushed that the member had not already made durable.
func (m *Member) Kill() {
	m.t.Helper()
	if !m.Running() {
		m.t.Fatalf("testcluster: Kill: member %s is not running", m.Name)
	}
	m.kill()
}

// Stop sends SIGTERM and waits for the process to exit. It fails the test
// if the member takes longer than stopTimeout (it is then killed) or
// exits with a non-zero status (death by the SIGTERM itself is accepted:
// etcd re-raises it after a graceful shutdown).
func (m *Member) Stop() {
	m.t.Helper()
	if !m.Running() {
		m.t.Fatalf("testcluster: Stop: member %s is not running", m.Name)
	}
	if err := m.stop(); err != nil {
		m.t.Error(err)
	}
}

// Restart stops the member gracefully if it runs, then starts it again on
// the same data directory and ports.
func (m *Member) Restart() {
	m.t.Helper()
	if m.Running() {
		m.Stop()
	} else {
		m.reap()
	}
	m.Start()
}

// Exited returns a channel closed when the current run of the member
// exits, and nil when it has not been launched.
func (m *Member) Exited() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return nil
	}
	return m.proc.done
}

func (m *Member) args() []string {
	initial, state := m.InitialCluster, m.ClusterState
	if initial == "" {
		initial = m.c.initialCluster()
	}
	if state == "" {
		state = "new"
	}
	args := []string{
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.AdvertisePeerURL(),
	}
	if !m.c.cfg.NoInitialCluster || m.InitialCluster != "" {
		args = append(args, "--initial-cluster", initial, "--initial-cluster-state", state)
	}
	if m.c.cfg.TLS != nil {
		args = append(args, m.c.cfg.TLS.Flags()...)
	}
	args = append(args, m.c.cfg.Flags...)
	return append(args, m.Flags...)
}

// launch starts the process. A previous run must have exited.
func (m *Member) launch() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		select {
		case <-m.proc.done:
		default:
			return fmt.Errorf("testcluster: member %s is already running (pid %d)", m.Name, m.proc.cmd.Process.Pid)
		}
	}
	p := &process{done: make(chan struct{})}
	args := m.args()
	p.cmd = exec.Command(m.binary, args...)
	p.cmd.Stdout = io.MultiWriter(&m.logs, &p.out)
	p.cmd.Stderr = p.cmd.Stdout
	p.cmd.SysProcAttr = sysProcAttr()
	// ETCD_* variables of the test's environment would change the member.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, m.c.cfg.Env...)
	m.logs.mark(fmt.Sprintf("start %s %s", m.binary, strings.Join(args, " ")))
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("testcluster: start member %s: %w", m.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		m.logs.mark(fmt.Sprintf("pid %d exited: %v", p.cmd.Process.Pid, exitDesc(p.err)))
		close(p.done)
	}()
	m.proc = p
	m.runs++
	return nil
}

// everStarted reports whether the member was ever launched.
func (m *Member) everStarted() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs > 0
}

func exitDesc(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// current returns the latest run, or nil.
func (m *Member) current() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// reap forgets a run that has exited.
func (m *Member) reap() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		select {
		case <-m.proc.done:
			m.proc = nil
		default:
		}
	}
}

func (m *Member) kill() {
	p := m.current()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	m.reap()
}

func (m *Member) stop() error {
	p := m.current()
	if p == nil {
		return nil
	}
	defer m.reap()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("testcluster: member %s did not stop within %v of SIGTERM; killed it", m.Name, stopTimeout)
	}
	if !stoppedCleanly(p.err) {
		return fmt.Errorf("testcluster: member %s stopped on SIGTERM with %v; want exit status 0", m.Name, p.err)
	}
	return nil
}

// stoppedCleanly reports whether a process sent SIGTERM ended well: with
// status 0 (Cairn) or killed by that SIGTERM, which etcd raises again on
// itself once it has shut down.
func stoppedCleanly(err error) bool {
	if err == nil {
		return true
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// wipe removes the member's data, for a retry of a first start.
func (m *Member) wipe() {
	_ = os.RemoveAll(m.DataDir)
}

// waitReady polls the member until a Status shows a leader and a
// linearizable read succeeds, failing early if the process exits or
// giveUp (which may be nil) is closed.
func (m *Member) waitReady(timeout time.Duration, giveUp <-chan struct{}) error {
	p := m.current()
	if p == nil {
		return fmt.Errorf("testcluster: member %s was not launched", m.Name)
	}
	// With credentials the client authenticates as it is made, which
	// fails until the member serves: it is made in the loop.
	var cli *clientv3.Client
	defer func() {
		if cli != nil {
			cli.Close()
		}
	}()

	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		select {
		case <-p.done:
			return &startError{name: m.Name, err: exitDesc(p.err), out: p.out.String()}
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testcluster: member %s not ready within %v: last error: %v", m.Name, timeout, lastErr)
		}
		if cli == nil {
			var err error
			if cli, err = m.c.clientFor([]string{m.ClientURL}, time.Second); err != nil {
				cli, lastErr = nil, fmt.Errorf("testcluster: client for member %s: %w", m.Name, err)
			}
		}
		if cli != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			lastErr = ready(ctx, cli, m.ClientURL)
			cancel()
			if lastErr == nil {
				return nil
			}
		}
		select {
		case <-p.done:
		case <-giveUp:
			return fmt.Errorf("testcluster: member %s: gave up waiting (another member failed to start): last error: %v", m.Name, lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ready reports whether the member has a leader and serves reads:
// linearizable ones, or serializable ones from a learner, which serves
// no other kind.
func ready(ctx context.Context, cli *clientv3.Client, ep string) error {
	st, err := cli.Status(ctx, ep)
	if err != nil {
		return err
	}
	if st.Leader == 0 {
		return errors.New("no leader yet")
	}
	var opts []clientv3.OpOption
	if st.IsLearner {
		opts = append(opts, clientv3.WithSerializable())
	}
	_, err = cli.Get(ctx, "testcluster-ready-probe", opts...)
	if errors.Is(err, errNotForLearner) {
		// A learner whose Status does not say so; that is for a test to
		// catch, not for the harness to wait out.
		_, err = cli.Get(ctx, "testcluster-ready-probe", clientv3.WithSerializable())
	}
	return err
}

// startError is a member that exited before it served.
type startError struct {
	name, err, out string
}

func (e *startError) Error() string {
	return fmt.Sprintf("testcluster: member %s exited while starting (%s); its output:\n%s", e.name, e.err, e.out)
}

func isAddrInUse(err error) bool {
	var se *startError
	return errors.As(err, &se) && strings.Contains(se.out, "address already in use")
}

// clientFor is a client of endpoints, over TLS in a TLS cluster.
func (c *Cluster) clientFor(endpoints []string, dialTimeout time.Duration) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: dialTimeout, Logger: zap.NewNop()}
	c.credMu.Lock()
	cfg.Username, cfg.Password = c.user, c.password
	c.credMu.Unlock()
	if c.cfg.TLS != nil {
		tc, err := c.cfg.TLS.ClientConfig()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	return clientv3.New(cfg)
}

func (c *Cluster) newClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := c.clientFor(endpoints, 5*time.Second)
	if err != nil {
		t.Fatalf("testcluster: client for %v: %v", endpoints, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func raceServer() bool {
	return os.Getenv(envRace) == "1" && os.Getenv(envBinary) == ""
}
