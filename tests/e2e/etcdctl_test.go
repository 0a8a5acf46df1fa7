package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// ctl runs etcdctl against the member, with stdin if given, and returns
// its standard output; it fails the test if etcdctl fails.
type ctl struct {
	t    *testing.T
	path string
	m    *testcluster.Member
}

func (c ctl) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.path, append([]string{"--endpoints=" + c.m.Endpoint(), "--command-timeout=20s"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

func (c ctl) run(stdin string, args ...string) string {
	c.t.Helper()
	out, errOut, err := c.try(stdin, args...)
	if err != nil {
		c.t.Fatalf("etcdctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (c ctl) try(stdin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.cmd(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (c ctl) want(stdin, want string, args ...string) {
	c.t.Helper()
	if got := c.run(stdin, args...); got != want {
		c.t.Errorf("etcdctl %s printed:\n%q\nwant:\n%q", strings.Join(args, " "), got, want)
	}
}

func TestEtcdctlKV(t *testing.T) {
	path := testcluster.Etcdctl(t)
	m, _, _ := start(t)
	c := ctl{t, path, m}

	c.want("", "OK\n", "put", "foo", "bar")
	c.want("", "foo\nbar\n", "get", "foo")
	c.want("", "OK\nfoo\nbar\n", "put", "foo", "bar2", "--prev-kv")
	c.want("", "OK\n", "put", "fox", "baz")
	c.want("", "foo\nbar2\nfox\nbaz\n", "get", "fo", "--prefix")
	c.want("", "bar2\nbaz\n", "get", "fo", "--prefix", "--print-value-only")
	c.want("", "foo\n\nfox\n\n", "get", "fo", "--prefix", "--keys-only")
	c.want("", "fox\nbaz\n", "get", "fo", "--prefix", "--sort-by=VALUE", "--order=DESCEND", "--limit=1")
	c.want("", "foo\nbar\n", "get", "foo", "--rev=2")

	var js struct {
		Header struct {
			ClusterID uint64 `json:"cluster_id"`
			MemberID  uint64 `json:"member_id"`
			Revision  int64  `json:"revision"`
			RaftTerm  uint64 `json:"raft_term"`
		} `json:"header"`
		Kvs []struct {
			Key            []byte `json:"key"`
			Value          []byte `json:"value"`
			CreateRevision int64  `json:"create_revision"`
			ModRevision    int64  `json:"mod_revision"`
			Version        int64  `json:"version"`
		} `json:"kvs"`
		Count int64 `json:"count"`
	}
	if err := json.Unmarshal([]byte(c.run("", "get", "foo", "-w", "json")), &js); err != nil {
		t.Fatal(err)
	}
	if js.Header.Revision != 4 || js.Header.ClusterID == 0 || js.Header.MemberID == 0 || js.Header.RaftTerm == 0 ||
		js.Count != 1 || len(js.Kvs) != 1 || string(js.Kvs[0].Value) != "bar2" || js.Kvs[0].CreateRevision != 2 || js.Kvs[0].ModRevision != 3 || js.Kvs[0].Version != 2 {
		t.Errorf("get -w json: %+v", js)
	}

	c.want("", "1\n", "del", "foo")
	c.want("", "0\n", "del", "nothing")
	c.want("", "1\nfox\nbaz\n", "del", "fox", "--prev-kv")
	c.want("", "", "get", "fo", "--prefix")
}

func TestEtcdctlTxn(t *testing.T) {
	path := testcluster.Etcdctl(t)
	m, _, _ := start(t)
	c := ctl{t, path, m}
	c.want("", "OK\n", "put", "a", "x")

	script := "value(\"a\") = \"x\"\nmod(\"a\") > \"0\"\n\nput a y\nget a\ndel b\n\nput a z\n\n"
	c.want(script, "SUCCESS\n\nOK\n\na\ny\n\n0\n", "txn")
	c.want(script, "FAILURE\n\nOK\n", "txn")
	c.want("", "a\nz\n", "get", "a")

	var js struct {
		Succeeded bool `json:"succeeded"`
		Header    struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(c.run("version(\"a\") = \"3\"\n\nput b 1\n\n\n", "txn", "-w", "json")), &js); err != nil {
		t.Fatal(err)
	}
	if !js.Succeeded || js.Header.Revision != 5 {
		t.Errorf("txn -w json: %+v; want succeeded at revision 5", js)
	}
}

func TestEtcdctlWatch(t *testing.T) {
	path := testcluster.Etcdctl(t)
	m, cli, ctx := start(t)
	c := ctl{t, path, m}
	c.want("", "OK\n", "put", "w", "v1")

	// From revision 2 the watch replays v1 at once, so its output shows
	// when it is established, with no sleep.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := c.cmd(wctx, "watch", "w", "--prefix", "--rev=2", "--prev-kv")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel() // kills the etcdctl started above
		_ = cmd.Wait()
	}()
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	read := func(want ...string) {
		t.Helper()
		for _, w := range want {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("etcdctl watch ended; want %q", w)
				}
				if l != w {
					t.Fatalf("etcdctl watch printed %q; want %q", l, w)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("etcdctl watch printed nothing; want %q", w)
			}
		}
	}
	read("PUT", "w", "v1")
	put(t, ctx, cli, "w/x", "v2")
	read("PUT", "w/x", "v2")
	put(t, ctx, cli, "w", "v3")
	read("PUT", "w", "v1", "w", "v3") // with --prev-kv: the previous pair first
	if _, err := cli.Delete(ctx, "w/x"); err != nil {
		t.Fatal(err)
	}
	read("DELETE", "w/x", "v2", "w/x", "") // the previous pair, then the key with no value
}

func TestEtcdctlLeaseAndCompaction(t *testing.T) {
	path := testcluster.Etcdctl(t)
	m, _, _ := start(t)
	c := ctl{t, path, m}

	out := c.run("", "lease", "grant", "100")
	match := regexp.MustCompile(`^lease ([0-9a-f]+) granted with TTL\(100s\)\n$`).FindStringSubmatch(out)
	if match == nil {
		t.Fatalf("lease grant printed %q", out)
	}
	id := match[1]
	c.want("", "OK\n", "put", "--lease="+id, "lk", "v")
	if out := c.run("", "lease", "timetolive", id, "--keys"); !regexp.MustCompile(`^lease ` + id + ` granted with TTL\(100s\), remaining\((9[0-9]|100)s\), attached keys\(\[lk\]\)\n$`).MatchString(out) {
		t.Errorf("lease timetolive --keys printed %q", out)
	}
	c.want("", "found 1 leases\n"+id+"\n", "lease", "list")
	c.want("", "lease "+id+" keepalived with TTL(100)\n", "lease", "keep-alive", "--once", id)
	c.want("", "lease "+id+" revoked\n", "lease", "revoke", id)
	c.want("", "lease "+id+" already expired\n", "lease", "timetolive", id)
	c.want("", "", "get", "lk")

	for i := range 3 {
		c.want("", "OK\n", "put", "k", fmt.Sprint(i)) // 4, 5, 6
	}
	c.want("", "compacted revision 5\n", "compaction", "5")
	_, errOut, err := c.try("", "compaction", "5")
	if err == nil || !strings.Contains(errOut, "Error: etcdserver: mvcc: required revision has been compacted") {
		t.Errorf("compacting twice: %v, stderr %q", err, errOut)
	}
	_, errOut, err = c.try("", "get", "k", "--rev=4")
	if err == nil || !strings.Contains(errOut, "Error: etcdserver: mvcc: required revision has been compacted") {
		t.Errorf("get below compaction: %v, stderr %q", err, errOut)
	}
	c.want("", "k\n1\n", "get", "k", "--rev=5")
}

func TestEtcdctlEndpointAndMember(t *testing.T) {
	path := testcluster.Etcdctl(t)
	m, cli, ctx := start(t)
	c := ctl{t, path, m}
	st, err := cli.Status(ctx, m.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%x", st.Header.MemberId)

	// ENDPOINT, ID, VERSION, STORAGE VERSION, DB SIZE, IN USE, NOT IN USE %,
	// QUOTA, IS LEADER, IS LEARNER, RAFT TERM, RAFT INDEX, APPLIED INDEX,
	// ERRORS, DOWNGRADE TARGET, DOWNGRADE ENABLED.
	out := c.run("", "endpoint", "status")
	fields := strings.Split(strings.TrimSuffix(out, "\n"), ", ")
	if len(fields) != 16 || fields[0] != m.Endpoint() || fields[1] != id || fields[2] != "3.7.3" ||
		fields[8] != "true" || fields[9] != "false" || fields[13] != "" || fields[15] != "false" {
		t.Errorf("endpoint status printed %q", out)
	}
	var js []struct {
		Endpoint string
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
			Version string `json:"version"`
			Leader  uint64 `json:"leader"`
			DBSize  int64  `json:"dbSize"`
		}
	}
	if err := json.Unmarshal([]byte(c.run("", "endpoint", "status", "-w", "json")), &js); err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 || js[0].Status.Leader != st.Header.MemberId || js[0].Status.Header.MemberID != st.Header.MemberId || js[0].Status.DBSize <= 0 {
		t.Errorf("endpoint status -w json: %+v", js)
	}
	if out := c.run("", "endpoint", "health"); !strings.HasPrefix(out, m.Endpoint()+" is healthy: successfully committed proposal: took = ") {
		t.Errorf("endpoint health printed %q", out)
	}
	c.want("", fmt.Sprintf("%s, started, default, %s, %s, false\n", id, m.PeerURL, m.Endpoint()), "member", "list")
}
