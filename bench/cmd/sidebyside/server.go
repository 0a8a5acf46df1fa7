package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// start launches members of t with fresh data directories under dir and
// waits until a Put through the cluster succeeds. Both servers get the
// same flags: fsync on (the default of both), the same snapshot count and a
// quota large enough never to matter.
func start(ctx context.Context, t target, members int, dir string, snapshotCount int) (*cluster, error) {
	ports, err := freePorts(2 * members)
	if err != nil {
		return nil, err
	}
	cl := &cluster{}
	if t.noop {
		cl.endpoints = []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}
		cmd := exec.Command(t.bin, "--listen", cl.endpoints[0])
		if err := launch(cl, cmd, filepath.Join(dir, "noopkv.log")); err != nil {
			return nil, err
		}
		return cl, waitReady(ctx, cl)
	}
	var initial []string
	for i := range members {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i+1]))
	}
	for i := range members {
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		data := filepath.Join(dir, fmt.Sprintf("m%d.data", i))
		cl.dataDirs = append(cl.dataDirs, data)
		cl.endpoints = append(cl.endpoints, strings.TrimPrefix(client, "http://"))
		cmd := exec.Command(t.bin,
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
	log, err := os.Create(logPath)
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
	return nil
}

func waitReady(ctx context.Context, cl *cluster) error {
	c, err := clientv3.New(clientv3.Config{Endpoints: cl.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
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

func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM")
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
