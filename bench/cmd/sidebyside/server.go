package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A target is a server implementation under test: etcd, Cairn, or the
// do-nothing ceiling.
type target struct {
	name string
	bin  string
	// noop marks the ceiling: one process, no cluster flags.
	noop bool
}

// A cluster is the processes of one target started for one pass.
type cluster struct {
	procs     []*exec.Cmd
	dataDirs  []string
	endpoints []string
	logs      []string // each member's log file, appended to on restart
	// pki, for a TLS row: members serve mutual TLS and every client
	// presents the client certificate.
	pki *benchPKI
	tls *tls.Config
	// auth: auth is on and clients authenticate as benchUser.
	auth bool
}

// clientConfig is a clientv3 config for the cluster's endpoints (over TLS
// for a TLS row).
func (cl *cluster) clientConfig() clientv3.Config {
	cfg := clientv3.Config{Endpoints: cl.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), TLS: cl.tls}
	if cl.auth {
		cfg.Username, cfg.Password = benchUser, benchPassword
	}
	return cfg
}

// The user of the auth rows.
const (
	benchUser     = "bench"
	benchPassword = "bench-pw"
)

// enableAuth makes root, a role granting read-write on every key, a user
// holding it, and turns auth on; from then on the cluster's clients
// authenticate as that user.
func (cl *cluster) enableAuth(ctx context.Context) error {
	c, err := clientv3.New(cl.clientConfig())
	if err != nil {
		return err
	}
	defer c.Close()
	for _, step := range []func() error{
		func() error { _, err := c.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := c.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := c.RoleAdd(ctx, "bench"); return err },
		func() error {
			_, err := c.RoleGrantPermission(ctx, "bench", "\x00", "\x00", clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := c.UserAdd(ctx, benchUser, benchPassword); return err },
		func() error { _, err := c.UserGrantRole(ctx, benchUser, "bench"); return err },
		func() error { _, err := c.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			return fmt.Errorf("enable auth: %w", err)
		}
	}
	cl.auth = true
	return nil
}

// running holds every process the harness started and has not yet reaped,
// so an interrupt can stop them by PID.
var running struct {
	sync.Mutex
	procs map[int]*exec.Cmd
}

func track(c *exec.Cmd) {
	running.Lock()
	defer running.Unlock()
	if running.procs == nil {
		running.procs = map[int]*exec.Cmd{}
	}
	running.procs[c.Process.Pid] = c
}

func untrack(c *exec.Cmd) {
	running.Lock()
	defer running.Unlock()
	delete(running.procs, c.Process.Pid)
}

// killAll stops every process still tracked; for the interrupt path.
func killAll() {
	running.Lock()
	defer running.Unlock()
	for pid, c := range running.procs {
		_ = c.Process.Kill()
		_ = c.Wait()
		delete(running.procs, pid)
	}
}

// freePorts returns n loopback ports that were free a moment ago. They
// come from 20000–32767, below the kernel's ephemeral range (32768 and
// up), so an outgoing connection of another process on this shared
// machine cannot take one between the check and the server's bind.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for attempt := 0; len(ports) < n; attempt++ {
		if attempt > 1000 {
			return nil, fmt.Errorf("no free loopback port in 20000-32767 after %d tries", attempt)
		}
		port := 20000 + rand.IntN(32768-20000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		ports = append(ports, port)
	}
	return ports, nil
}

// start launches members of t with fresh data directories under dir and
// waits until a Put through the cluster succeeds. Both servers get the
// same flags: fsync on (the default of both), the same snapshot count and a
// quota large enough never to matter.
//
// extra is appended to each member's flags (for example --enable-pprof).
// A non-nil pki serves https client and peer URLs with mutual TLS.
func start(ctx context.Context, t target, members int, dir string, snapshotCount int, pki *benchPKI, extra ...string) (*cluster, error) {
	ports, err := freePorts(2 * members)
	if err != nil {
		return nil, err
	}
	cl := &cluster{pki: pki}
	scheme := "http"
	if pki != nil {
		scheme = "https"
		if cl.tls, err = pki.clientConfig(); err != nil {
			return nil, err
		}
		extra = append(pki.serverFlags(), extra...)
	}
	if t.noop {
		cl.endpoints = []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}
		cmd := pinned(serverCPUs, t.bin, "--listen", cl.endpoints[0])
		if err := launch(cl, cmd, filepath.Join(dir, "noopkv.log")); err != nil {
			return nil, err
		}
		return cl, waitReady(ctx, cl)
	}
	var initial []string
	for i := range members {
		initial = append(initial, fmt.Sprintf("m%d=%s://127.0.0.1:%d", i, scheme, ports[2*i+1]))
	}
	for i := range members {
		client := fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i])
		peer := fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1])
		data := filepath.Join(dir, fmt.Sprintf("m%d.data", i))
		cl.dataDirs = append(cl.dataDirs, data)
		cl.endpoints = append(cl.endpoints, strings.TrimPrefix(client, scheme+"://"))
		cmd := pinned(serverCPUs, t.bin,
			"--name", fmt.Sprintf("m%d", i),
			"--data-dir", data,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "bench", "--initial-cluster-state", "new",
			"--snapshot-count", strconv.Itoa(snapshotCount),
			"--quota-backend-bytes", strconv.Itoa(8<<30),
			"--log-level", "warn",
		)
		cmd.Args = append(cmd.Args, extra...)
		if err := launch(cl, cmd, filepath.Join(dir, fmt.Sprintf("m%d.log", i))); err != nil {
			cl.stop()
			return nil, err
		}
	}
	if err := waitReady(ctx, cl); err != nil {
		cl.stop()
		return nil, fmt.Errorf("%s: %w (logs in %s)", t.name, err, dir)
	}
	return cl, nil
}

func launch(cl *cluster, cmd *exec.Cmd, logPath string) error {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so a ^C at the terminal reaches only the
	// harness, which then stops each server by PID.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	track(cmd)
	cl.procs = append(cl.procs, cmd)
	cl.logs = append(cl.logs, logPath)
	return nil
}

func waitReady(ctx context.Context, cl *cluster) error {
	c, err := clientv3.New(cl.clientConfig())
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Put(cctx, "bench-ready", "1")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready after 30s: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM to each member by PID, and SIGKILL to any still
// running after ten seconds.
func (cl *cluster) stop() {
	for _, c := range cl.procs {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range cl.procs {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
		untrack(c)
	}
}

// resetPeakRSS clears each member's high-water RSS (VmHWM) so the next
// reading covers one workload only.
func (cl *cluster) resetPeakRSS() {
	for _, c := range cl.procs {
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", c.Process.Pid), []byte("5"), 0)
	}
}

// peakRSS is the largest member's VmHWM in bytes.
func (cl *cluster) peakRSS() int64 {
	var peak int64
	for _, c := range cl.procs {
		if v, err := vmHWM(c.Process.Pid); err == nil {
			peak = max(peak, v)
		}
	}
	return peak
}

func vmHWM(pid int) (int64, error) { return procStatus(pid, "VmHWM") }

// cpuSeconds is the user+system CPU every member has used so far.
func (cl *cluster) cpuSeconds() float64 {
	var total float64
	for _, c := range cl.procs {
		if v, err := procCPU(c.Process.Pid); err == nil {
			total += v
		}
	}
	return total
}

// procCPU reads utime+stime from /proc/PID/stat, in seconds. The fields
// are counted in clock ticks of USER_HZ, 100 on Linux.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start with field 3 (state).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return (utime + stime) / 100, nil
}

// diskUsage is the largest member's data directory in allocated bytes, as
// du counts them (preallocated WAL segments count in full; holes do not).
func (cl *cluster) diskUsage() int64 {
	var peak int64
	for _, d := range cl.dataDirs {
		var n int64
		_ = filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			if info, err := e.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					n += st.Blocks * 512
				}
			}
			return nil
		})
		peak = max(peak, n)
	}
	return peak
}

// crashRestart kills every member with SIGKILL, as a crash would, starts
// each again with the same flags on the same data directory, and returns
// the time from starting the processes until a linearizable Get through
// the first member succeeds: the time to replay and reopen the store, plus
// (for one member) electing itself leader.
func (cl *cluster) crashRestart(ctx context.Context) (time.Duration, error) {
	old := cl.procs
	logs := cl.logs
	cl.procs, cl.logs = nil, nil
	for _, c := range old {
		_ = c.Process.Kill()
		_ = c.Wait()
		untrack(c)
	}
	began := time.Now()
	for i, c := range old {
		cmd := exec.Command(c.Path, c.Args[1:]...)
		if err := launch(cl, cmd, logs[i]); err != nil {
			return 0, err
		}
	}
	if err := waitServing(ctx, cl.endpoints[0], 10*time.Minute); err != nil {
		return 0, fmt.Errorf("after restart: %w (logs %s)", err, strings.Join(cl.logs, ", "))
	}
	return time.Since(began), nil
}

// waitServing polls endpoint until a linearizable Get succeeds. It waits
// for the port to accept connections first, then uses a fresh client per
// attempt, so gRPC's reconnect backoff (a second and growing) never adds
// to the measured time.
func waitServing(ctx context.Context, endpoint string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if conn, err := net.DialTimeout("tcp", endpoint, time.Second); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s does not accept connections after %s", endpoint, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err == nil {
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = c.Get(gctx, "bench-ready")
			cancel()
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no linearizable Get on %s after %s: %w", endpoint, limit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rss is the first member's current resident set (VmRSS) in bytes.
func (cl *cluster) rss() int64 {
	v, _ := procStatus(cl.procs[0].Process.Pid, "VmRSS")
	return v
}

// procStatus reads one "kB" field of /proc/PID/status (VmHWM, VmRSS,
// RssAnon, ...) in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// pin, serverCPUs and clientCPUs are -pin, -server-cpus and -client-cpus:
// with -pin, servers and the benchmark tool run under taskset on disjoint
// CPUs (by default, on this 2-core machine, core 1 and core 0).
var (
	pin                    bool
	serverCPUs, clientCPUs string
)

// pinned is exec.Command(bin, args...), run under taskset -c cpus when
// pinning is on. taskset execs bin, so the PID is bin's.
func pinned(cpus, bin string, args ...string) *exec.Cmd {
	if !pin || cpus == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpus, bin}, args...)...)
}

// pinnedContext is pinned for exec.CommandContext.
func pinnedContext(ctx context.Context, cpus, bin string, args ...string) *exec.Cmd {
	if !pin || cpus == "" {
		return exec.CommandContext(ctx, bin, args...)
	}
	return exec.CommandContext(ctx, "taskset", append([]string{"-c", cpus, bin}, args...)...)
}
