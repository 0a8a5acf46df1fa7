package cluster

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// TestEtcdctlLockHeldThroughLeaderKill: the official etcdctl holds a lock
// on a 3-member cluster while the leader is killed with SIGKILL; the
// holder's command runs to its end and releases the lock, and a second
// etcdctl waiting for the same lock gets it only after that, never while
// the first still holds it. Both exit 0. The same test passes against
// etcd 3.7.3 (the reference step runs it).
func TestEtcdctlLockHeldThroughLeaderKill(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	leader := c.WaitLeader(t)
	var mu sync.Mutex
	var lines []string
	start := func(who string, args ...string) chan int {
		cmd := exec.Command(testcluster.Etcdctl(t), append([]string{"--endpoints=" + strings.Join(c.Endpoints(), ","), "--dial-timeout=2s"}, args...)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ETCDCTL_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan int, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				lines = append(lines, who+": "+sc.Text())
				mu.Unlock()
			}
			_ = cmd.Wait()
			done <- cmd.ProcessState.ExitCode()
		}()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return done
	}
	printed := func(line string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(lines, line)
	}
	waitFor := func(line string, d time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(d); !printed(line); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("%q not printed within %v; output:\n%s", line, d, strings.Join(lines, "\n"))
			}
		}
	}

	a := start("a", "lock", "L", "--", "sh", "-c", "echo holds; sleep 6; echo done")
	waitFor("a: holds", 15*time.Second)
	b := start("b", "lock", "L", "--", "sh", "-c", "echo holds")
	time.Sleep(500 * time.Millisecond)
	c.Members[leader].Kill()
	c.WaitNewLeader(t, leader)
	if printed("b: holds") && !printed("a: done") {
		t.Fatal("the second locker got the lock while the first held it")
	}
	for who, done := range map[string]chan int{"a": a, "b": b} {
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("etcdctl lock %s exited %d", who, code)
			}
		case <-time.After(40 * time.Second):
			t.Fatalf("etcdctl lock %s did not end", who)
		}
	}
	mu.Lock()
	got := slices.Clone(lines)
	mu.Unlock()
	if ia, ib := slices.Index(got, "a: done"), slices.Index(got, "b: holds"); ia < 0 || ib < 0 || ib < ia {
		t.Fatalf("want a's command to end before b holds the lock; output:\n%s", strings.Join(got, "\n"))
	}
	c.Members[leader].Start()
	c.WaitConverged(t)
}
