package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/cairnkv/cairn/api/v3lockpb"
	"github.com/cairnkv/cairn/internal/testcluster"
)

// rawAuth is a raw gRPC connection to a member, on which a test handles
// tokens itself (clientv3 re-authenticates on its own, hiding what a
// stale token gets).
type rawAuth struct {
	conn *grpc.ClientConn
}

func newRawAuth(t *testing.T, endpoint string) *rawAuth {
	conn, err := grpc.NewClient(strings.TrimPrefix(endpoint, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawAuth{conn: conn}
}

func (r *rawAuth) token(t *testing.T, ctx context.Context, user, pw string) string {
	t.Helper()
	resp, err := pb.NewAuthClient(r.conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: user, Password: pw})
	if err != nil {
		t.Fatalf("authenticate %s: %v", user, err)
	}
	return resp.Token
}

// get reads key with token and returns the outcome.
func (r *rawAuth) get(ctx context.Context, token, key string) string {
	ctx = metadata.AppendToOutgoingContext(ctx, "token", token)
	_, err := pb.NewKVClient(r.conn).Range(ctx, &pb.RangeRequest{Key: []byte(key)})
	return outcome(err)
}

// TestAuthTokensFollowChanges: a simple token stops working when its user
// is deleted or changes password; a role revoked takes effect on the next
// request made with a token issued before.
func TestAuthTokensFollowChanges(t *testing.T) {
	m, admin, ctx := start(t, "--log-level=debug")
	setupAuth(t, ctx, admin)
	root := authClient(t, m, "root")
	raw := newRawAuth(t, m.ClientURL)
	tok := raw.token(t, ctx, "ukey", "ukeypw")
	if got := raw.get(ctx, tok, "k1"); got != "ok" {
		t.Fatalf("read with a fresh token: %s", got)
	}
	if _, err := root.UserRevokeRole(ctx, "ukey", "rkey"); err != nil {
		t.Fatal(err)
	}
	if got := raw.get(ctx, tok, "k1"); got != denied {
		t.Fatalf("read after the role was revoked: %s", got)
	}
	if _, err := root.UserGrantRole(ctx, "ukey", "rkey"); err != nil {
		t.Fatal(err)
	}
	if got := raw.get(ctx, tok, "k1"); got != "ok" {
		t.Fatalf("read after the role was granted again: %s", got)
	}
	if _, err := root.UserChangePassword(ctx, "ukey", "new"); err != nil {
		t.Fatal(err)
	}
	const invalid = "Unauthenticated: etcdserver: invalid auth token"
	if got := raw.get(ctx, tok, "k1"); got != invalid {
		t.Fatalf("read after a password change: %s", got)
	}
	tok = raw.token(t, ctx, "ukey", "new")
	if _, err := root.UserDelete(ctx, "ukey"); err != nil {
		t.Fatal(err)
	}
	if got := raw.get(ctx, tok, "k1"); got != invalid {
		t.Fatalf("read after the user was deleted: %s", got)
	}
	if got := raw.get(ctx, "forged.12", "k1"); got != invalid {
		t.Fatalf("read with a forged token: %s", got)
	}
	// No password, hash or token in the member's log, even at debug
	// level (etcd's CVE-2021-28235 class of bug). etcd 3.7.3 itself logs
	// simple tokens at debug level, so this part is Cairn's alone.
	if testcluster.Reference() {
		return
	}
	logs := m.Logs()
	for _, secret := range []string{"ukeypw", "rootpw", "$2a$", tok, strings.SplitN(tok, ".", 2)[0]} {
		if strings.Contains(logs, secret) {
			t.Errorf("the member's log holds a secret (%.6s...)", secret)
		}
	}
}

// TestAuthSimpleTokenTTL: --auth-token-ttl ends a token unused that long.
func TestAuthSimpleTokenTTL(t *testing.T) {
	m, admin, ctx := start(t, "--auth-token-ttl=2")
	setupAuth(t, ctx, admin)
	raw := newRawAuth(t, m.ClientURL)
	tok := raw.token(t, ctx, "ukey", "ukeypw")
	if got := raw.get(ctx, tok, "k1"); got != "ok" {
		t.Fatalf("read with a fresh token: %s", got)
	}
	time.Sleep(4 * time.Second)
	if got := raw.get(ctx, tok, "k1"); got != "Unauthenticated: etcdserver: invalid auth token" {
		t.Fatalf("read with a token unused past its TTL: %s", got)
	}
}

// TestAuthJWT: --auth-token jwt signs tokens with the auth revision; one
// signed before an auth change is refused as old, and one past its TTL as
// invalid.
func TestAuthJWT(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	pubb, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	priv, pub := filepath.Join(dir, "jwt.key"), filepath.Join(dir, "jwt.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubb}), 0o600); err != nil {
		t.Fatal(err)
	}
	m, admin, ctx := start(t, "--auth-token=jwt,pub-key="+pub+",priv-key="+priv+",sign-method=ES256,ttl=3s")
	setupAuth(t, ctx, admin)
	raw := newRawAuth(t, m.ClientURL)
	tok := raw.token(t, ctx, "ukey", "ukeypw")
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q is not a JWT", tok)
	}
	if got := raw.get(ctx, tok, "k1"); got != "ok" {
		t.Fatalf("read with a fresh JWT: %s", got)
	}
	root := authClient(t, m, "root")
	if _, err := root.RoleAdd(ctx, "another"); err != nil {
		t.Fatal(err)
	}
	if got := raw.get(ctx, tok, "k1"); got != "InvalidArgument: etcdserver: revision of auth store is old" {
		t.Fatalf("read with a JWT from before an auth change: %s", got)
	}
	tok = raw.token(t, ctx, "ukey", "ukeypw")
	time.Sleep(4 * time.Second)
	if got := raw.get(ctx, tok, "k1"); got != "Unauthenticated: etcdserver: invalid auth token" {
		t.Fatalf("read with an expired JWT: %s", got)
	}
}

// TestAuthJWTRS256: --auth-token jwt with an RS256 key pair: the member's
// tokens work, and tokens signed with another RSA key, with alg none, or
// with HS256 and the public key as the HMAC secret are invalid.
func TestAuthJWTRS256(t *testing.T) {
	dir := t.TempDir()
	keys := make([]*rsa.PrivateKey, 2)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	pubb, err := x509.MarshalPKIXPublicKey(&keys[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubb})
	priv, pub := filepath.Join(dir, "jwt.key"), filepath.Join(dir, "jwt.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keys[0])}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	m, admin, ctx := start(t, "--auth-token=jwt,pub-key="+pub+",priv-key="+priv+",sign-method=RS256")
	setupAuth(t, ctx, admin)
	raw := newRawAuth(t, m.ClientURL)
	tok := raw.token(t, ctx, "ukey", "ukeypw")
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil || parsed.Method.Alg() != "RS256" {
		t.Fatalf("token %q: %v", tok, err)
	}
	if got := raw.get(ctx, tok, "k1"); got != "ok" {
		t.Fatalf("read with the member's JWT: %s", got)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	sign := func(method jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const invalid = "Unauthenticated: etcdserver: invalid auth token"
	for what, forged := range map[string]string{
		"the member's own claims re-signed": sign(jwt.SigningMethodRS256, keys[0]),
		"signed with another RSA key":       sign(jwt.SigningMethodRS256, keys[1]),
		"alg none":                          sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
		"HS256 with the public key":         sign(jwt.SigningMethodHS256, pubPEM),
		"truncated":                         tok[:len(tok)-8],
	} {
		want := invalid
		if what == "the member's own claims re-signed" {
			want = "ok" // the test's check of its own signing
		}
		if got := raw.get(ctx, forged, "k1"); got != want {
			t.Errorf("read with a JWT %s: %s, want %s", what, got, want)
		}
	}
}

// TestAuthGateway: the JSON gateway's /v3/auth/authenticate, then the
// token in the Authorization header.
func TestAuthGateway(t *testing.T) {
	m, admin, ctx := start(t)
	setupAuth(t, ctx, admin)
	post := func(path, token, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.ClientURL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("/v3/auth/authenticate", "", `{"name":"ukey","password":"ukeypw"}`)
	var ar struct{ Token string }
	if err := json.Unmarshal([]byte(body), &ar); code != 200 || err != nil || ar.Token == "" {
		t.Fatalf("authenticate: %d %s", code, body)
	}
	if code, body := post("/v3/kv/put", ar.Token, `{"key":"azE=","value":"dg=="}`); code != 200 {
		t.Fatalf("put k1 with the token: %d %s", code, body)
	}
	if code, body := post("/v3/kv/put", ar.Token, `{"key":"cjM=","value":"dg=="}`); code != 403 || !strings.Contains(body, "permission denied") {
		t.Fatalf("put r3 with the token: %d %s", code, body)
	}
	if code, body := post("/v3/kv/range", "", `{"key":"azE="}`); code == 200 {
		t.Fatalf("range without a token: %d %s", code, body)
	}
}

// TestAuthLockAndElection: the Lock and Election services act with the
// caller's permissions (their keys need write on the name's prefix).
func TestAuthLockAndElection(t *testing.T) {
	m, admin, ctx := start(t)
	setupAuth(t, ctx, admin)
	if _, err := authClient(t, m, "root").RoleGrantPermission(ctx, "rprefix", "p/", "p0", clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		t.Fatal(err)
	}
	allowed := authClient(t, m, "uprefix")
	s, err := concurrency.NewSession(allowed, concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mu := concurrency.NewMutex(s, "p/lock")
	if err := mu.Lock(ctx); err != nil {
		t.Fatalf("lock under p/ as uprefix: %v", err)
	}
	if err := mu.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	// The Lock RPC, through the member's own service.
	lc := v3lockpb.NewLockClient(allowed.ActiveConnection())
	if _, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("p/rpc"), Lease: int64(s.Lease())}); err != nil {
		t.Fatalf("Lock RPC under p/ as uprefix: %v", err)
	}
	other := authClient(t, m, "ukey")
	ds, err := concurrency.NewSession(other, concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := v3lockpb.NewLockClient(other.ActiveConnection()).Lock(lctx, &v3lockpb.LockRequest{Name: []byte("p/rpc2"), Lease: int64(ds.Lease())}); outcome(err) != "Unknown: etcdserver: permission denied" {
		// etcd's Lock service passes its client's error on as a plain
		// error, so the code is lost (Unknown); Cairn does the same.
		t.Fatalf("Lock RPC under p/ as ukey: %s", outcome(err))
	}
}

// TestAuthCertificateUser: with --client-cert-auth, a client certificate's
// CN is the user when the request has no token; a token wins when both
// are given.
func TestAuthCertificateUser(t *testing.T) {
	t.Parallel()
	p := newKubeadmPKI(t)
	m := testcluster.NewMember(t, testcluster.Config{TLS: p.tls})
	ctx := testContext(t)
	admin := m.Client(t) // CN kube-apiserver-etcd-client, no user yet
	setupAuth(t, ctx, admin)
	// Now the admin's CN is no user: it cannot even read.
	if _, err := admin.Get(ctx, "k1"); outcome(err) != denied {
		t.Fatalf("read as an unknown certificate user: %s", outcome(err))
	}
	tc, err := p.tls.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	rootCli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, TLS: tc, Username: "root", Password: rootPassword,
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer rootCli.Close()
	// A user with no password, for certificate authentication only.
	if _, err := rootCli.UserAddWithOptions(ctx, "kube-apiserver-etcd-client", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := rootCli.UserGrantRole(ctx, "kube-apiserver-etcd-client", "rkey"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Put(ctx, "k1", "by-cert"); err != nil {
		t.Fatalf("write as the certificate user: %v", err)
	}
	if _, err := admin.Put(ctx, "r3", "by-cert"); outcome(err) != denied {
		t.Fatalf("write outside the certificate user's role: %s", outcome(err))
	}
	// root's token, over the same certificate, wins.
	if _, err := rootCli.Put(ctx, "r3", "by-token"); err != nil {
		t.Fatalf("write as root by token over the certificate: %v", err)
	}
}

// TestAuthRevocationUnderLoad: readers hammer k1 with tokens issued
// before a role is revoked and a user deleted; no request sent after the
// change was acknowledged succeeds.
func TestAuthRevocationUnderLoad(t *testing.T) {
	m, admin, ctx := start(t)
	setupAuth(t, ctx, admin)
	root := authClient(t, m, "root")
	raw := newRawAuth(t, m.ClientURL)
	tokens := []string{raw.token(t, ctx, "ukey", "ukeypw"), raw.token(t, ctx, "ukey", "ukeypw")}
	var changedAt atomic.Int64 // unix nanos of the acknowledgement, 0 before
	stale := make(chan string, 100)
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for lctx.Err() == nil {
				sent := time.Now().UnixNano()
				got := raw.get(lctx, tokens[i%len(tokens)], "k1")
				if at := changedAt.Load(); got == "ok" && at != 0 && sent > at {
					select {
					case stale <- got:
					default:
					}
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := root.UserRevokeRole(ctx, "ukey", "rkey"); err != nil {
		t.Fatal(err)
	}
	changedAt.Store(time.Now().UnixNano())
	time.Sleep(300 * time.Millisecond)
	if _, err := root.UserDelete(ctx, "ukey"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	if n := len(stale); n > 0 {
		t.Fatalf("%d reads sent after the role was revoked succeeded", n)
	}
}
