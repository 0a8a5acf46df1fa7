package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// auditLine is one line of the audit log (schema v1, docs/SECURITY.md).
type auditLine struct {
	V        int     `json:"v"`
	Member   string  `json:"member"`
	User     string  `json:"user"`
	Remote   string  `json:"remote"`
	Method   string  `json:"method"`
	Key      string  `json:"key"`
	RangeEnd string  `json:"range_end"`
	Revision int64   `json:"revision"`
	Code     string  `json:"code"`
	Error    string  `json:"error"`
	Latency  float64 `json:"latency_ms"`
	Read     bool    `json:"read"`
}

func readAudit(t *testing.T, path string) (lines []auditLine, raw string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines, string(b)
}

// TestAuditLogScriptedSession (Cairn only: etcd has no audit log): every
// write of a scripted session is in the log exactly once, with its user,
// key, revision and outcome; reads are not, but a refused read is; no
// value, password or token is ever written.
func TestAuditLogScriptedSession(t *testing.T) {
	if testcluster.Reference() {
		t.Skip("etcd has no audit log")
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	m, admin, ctx := start(t, "--audit-log-path="+path)
	setupAuth(t, ctx, admin)
	root := authClient(t, m, "root")
	ukey := authClient(t, m, "ukey")

	const secretValue = "value-that-must-never-be-logged"
	var wantWrites []string // method key user, one per write
	w := func(method, key, user string) { wantWrites = append(wantWrites, method+" "+key+" "+user) }
	resp, err := ukey.Put(ctx, "k1", secretValue)
	if err != nil {
		t.Fatal(err)
	}
	w("/etcdserverpb.KV/Put", "k1", "ukey")
	if _, err := ukey.Get(ctx, "k1"); err != nil { // a read: not logged
		t.Fatal(err)
	}
	if _, err := ukey.Get(ctx, "r3"); err == nil { // refused: logged
		t.Fatal("ukey read r3")
	}
	if _, err := root.Txn(ctx).If(clientv3.Compare(clientv3.Value("k1"), "=", secretValue)).Then(clientv3.OpPut("p/x", secretValue)).Commit(); err != nil {
		t.Fatal(err)
	}
	w("/etcdserverpb.KV/Txn", "k1", "root")
	if _, err := root.Delete(ctx, "p/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	w("/etcdserverpb.KV/DeleteRange", "p/", "root")
	lease, err := root.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	w("/etcdserverpb.Lease/LeaseGrant", "", "root")
	if _, err := root.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	w("/etcdserverpb.Lease/LeaseRevoke", "", "root")
	if _, err := root.UserAdd(ctx, "late", "late-secret-pw"); err != nil {
		t.Fatal(err)
	}
	w("/etcdserverpb.Auth/UserAdd", "", "root")
	if _, err := root.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	w("/etcdserverpb.KV/Compact", "", "root")
	// A write through the gateway is audited with the HTTP client's
	// address.
	tok := newRawAuth(t, m.ClientURL).token(t, ctx, "ukey", "ukeypw")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.ClientURL+"/v3/kv/put", strings.NewReader(`{"key":"azE=","value":"c2VjcmV0"}`))
	req.Header.Set("Authorization", tok)
	hr, err := http.DefaultClient.Do(req)
	if err != nil || hr.StatusCode != 200 {
		t.Fatalf("gateway put: %v %v", hr, err)
	}
	hr.Body.Close()
	w("/etcdserverpb.KV/Put", "k1", "ukey")

	m.Stop() // flushes the log
	lines, raw := readAudit(t, path)
	got := map[string]int{}
	var refusedRead bool
	for _, l := range lines {
		if l.V != 1 || l.Member == "" || l.Code == "" {
			t.Errorf("incomplete line %+v", l)
		}
		if l.Read {
			if l.Method == "/etcdserverpb.KV/Range" && l.Key == "r3" && l.Code == "PermissionDenied" && l.User == "ukey" {
				refusedRead = true
			} else if l.Code == "OK" {
				t.Errorf("a read was logged with reads off: %+v", l)
			}
			continue
		}
		if l.Code == "OK" {
			got[l.Method+" "+l.Key+" "+l.User]++
		}
	}
	for _, k := range wantWrites {
		if got[k] < 1 {
			t.Errorf("write %q is not in the audit log", k)
		}
	}
	if got["/etcdserverpb.KV/Put k1 ukey"] != 2 || got["/etcdserverpb.KV/DeleteRange p/ root"] != 1 || got["/etcdserverpb.KV/Txn k1 root"] != 1 {
		t.Errorf("writes not logged exactly once: %v", got)
	}
	if !refusedRead {
		t.Error("the refused read is not in the audit log")
	}
	for _, secret := range []string{secretValue, "c2VjcmV0", "late-secret-pw", "ukeypw", "rootpw", tok, "$2a$"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the audit log holds a secret: %.8s...", secret)
		}
	}
	if t.Failed() {
		t.Logf("audit log:\n%s", raw)
	}
}
