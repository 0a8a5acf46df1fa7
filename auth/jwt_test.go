package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The sign methods etcd 3.7.3 takes in --auth-token jwt,sign-method=...:
// whatever jwt.GetSigningMethod knows and its jwtOptions.Key handles
// (server/auth/options.go): RSA, RSA-PSS, ECDSA, Ed25519 and HMAC.
var jwtMethods = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
	"HS256", "HS384", "HS512",
}

// testKey is a key pair made for a test: the signing key (for tokens the
// test forges) and the PEM files NewJWTTokens reads (HMAC: the secret's
// bytes as priv-key, no pub-key).
type testKey struct {
	sign     any
	priv     []byte
	pub      []byte
	verifier any // the public key (HMAC: the secret)
}

var rsaKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

// newJWTKey makes a key for method; other picks a second, unrelated key.
func newJWTKey(t testing.TB, method string, other bool) testKey {
	t.Helper()
	pkix := func(pub any) []byte {
		b, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: b})
	}
	switch method[:2] {
	case "RS", "PS":
		k, k2 := rsaKeys()
		if other {
			k = k2
		}
		return testKey{sign: k, verifier: &k.PublicKey, pub: pkix(&k.PublicKey),
			priv: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})}
	case "ES":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[method]
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return testKey{sign: k, verifier: &k.PublicKey, pub: pkix(&k.PublicKey),
			priv: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})}
	case "Ed":
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return testKey{sign: k, verifier: pub, pub: pkix(pub),
			priv: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b})}
	case "HS":
		secret := make([]byte, 64)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		return testKey{sign: secret, verifier: secret, priv: secret}
	}
	t.Fatalf("no key for %s", method)
	return testKey{}
}

// jwtOpts writes k's files and returns --auth-token's options after
// "jwt," (withPriv false: a verify-only member, public key only).
func jwtOpts(t testing.TB, method string, k testKey, withPriv bool, ttl string) string {
	t.Helper()
	dir := t.TempDir()
	opts := []string{"sign-method=" + method}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if withPriv {
		opts = append(opts, "priv-key="+write("key", k.priv))
	}
	if k.pub != nil {
		opts = append(opts, "pub-key="+write("key.pub", k.pub))
	}
	if ttl != "" {
		opts = append(opts, "ttl="+ttl)
	}
	return strings.Join(opts, ",")
}

// jwtStore is a Store resolving tokens with tp.
func jwtStore(t *testing.T, tp TokenProvider) *Store {
	t.Helper()
	s, err := Load(newTestEngine(t), Options{BcryptCost: 4, Tokens: tp})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forge signs claims with method and key, as an attacker (or a test) may.
func forge(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("forge %s: %v", method.Alg(), err)
	}
	return tok
}

func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{"username": "alice", "revision": 7, "exp": time.Now().Add(time.Hour).Unix()}
}

// TestJWTSignMethods: for every sign method etcd supports, a token the
// member signs verifies on it and on a verify-only member (public key
// only), carries the user, the auth revision and an expiry ttl away, and
// every forgery is refused with etcd's "invalid auth token".
func TestJWTSignMethods(t *testing.T) {
	for _, method := range jwtMethods {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			k := newJWTKey(t, method, false)
			tp, err := NewJWTTokens(jwtOpts(t, method, k, true, "10m"))
			if err != nil {
				t.Fatal(err)
			}
			s := jwtStore(t, tp)
			before := time.Now()
			tok, err := tp.assign("alice", 7, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			ai, err := s.Token(context.Background(), tok)
			if err != nil || ai != (Info{User: "alice", Revision: 7}) {
				t.Fatalf("round trip: %+v, %v", ai, err)
			}
			// The claims etcd signs: username, revision, exp = now + ttl.
			var claims jwt.MapClaims
			if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
				t.Fatal(err)
			}
			if alg, _ := jwtHeader(t, tok)["alg"].(string); alg != method {
				t.Errorf("alg %q, want %q", alg, method)
			}
			exp, _ := claims["exp"].(float64)
			if want := before.Add(10 * time.Minute).Unix(); int64(exp) < want || int64(exp) > want+2 {
				t.Errorf("exp %v, want about %d (ttl 10m)", exp, want)
			}
			if len(claims) != 3 || claims["username"] != "alice" || claims["revision"] != float64(7) {
				t.Errorf("claims %v", claims)
			}

			if k.pub != nil {
				// A member with the public key only verifies, and cannot sign.
				vo, err := NewJWTTokens(jwtOpts(t, method, k, false, ""))
				if err != nil {
					t.Fatal(err)
				}
				if ai, err := jwtStore(t, vo).Token(context.Background(), tok); err != nil || ai.User != "alice" {
					t.Fatalf("verify-only member: %+v, %v", ai, err)
				}
				if _, err := vo.assign("alice", 7, "", 0); !errors.Is(err, ErrVerifyOnly) {
					t.Fatalf("verify-only member signed: %v", err)
				}
			}

			m := jwt.GetSigningMethod(method)
			for what, forged := range forgeries(t, method, m, k, tok) {
				if ai, err := s.Token(context.Background(), forged); err != ErrInvalidAuthToken {
					t.Errorf("%s: got %+v, %v; want %q", what, ai, err, ErrInvalidAuthToken)
				}
			}
		})
	}
}

// forgeries are tokens a member with key k for method must refuse; tok is
// one it issued.
func forgeries(t *testing.T, name string, m jwt.SigningMethod, k testKey, tok string) map[string]string {
	other := newJWTKey(t, name, true)
	parts := strings.Split(tok, ".")
	enc := base64.RawURLEncoding.EncodeToString
	none := forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims())
	f := map[string]string{
		"signed with another key":  forge(t, m, other.sign, goodClaims()),
		"alg none":                 none,
		"alg none, signature kept": strings.TrimSuffix(none, ".") + "." + parts[2],
		"expired":                  forge(t, m, k.sign, jwt.MapClaims{"username": "alice", "revision": 7, "exp": time.Now().Add(-time.Minute).Unix()}),
		"not yet valid":            forge(t, m, k.sign, jwt.MapClaims{"username": "alice", "revision": 7, "nbf": time.Now().Add(time.Hour).Unix()}),
		"no revision claim":        forge(t, m, k.sign, jwt.MapClaims{"username": "alice", "exp": time.Now().Add(time.Hour).Unix()}),
		"revision a string":        forge(t, m, k.sign, jwt.MapClaims{"username": "alice", "revision": "7", "exp": time.Now().Add(time.Hour).Unix()}),
		"no username claim":        forge(t, m, k.sign, jwt.MapClaims{"revision": 7, "exp": time.Now().Add(time.Hour).Unix()}),
		"username a number":        forge(t, m, k.sign, jwt.MapClaims{"username": 1, "revision": 7, "exp": time.Now().Add(time.Hour).Unix()}),
		"tampered claims":          parts[0] + "." + enc([]byte(`{"exp":9999999999,"revision":7,"username":"root"}`)) + "." + parts[2],
		"tampered header":          enc([]byte(`{"alg":"`+name+`","typ":"JWT","kid":"x"}`)) + "." + parts[1] + "." + parts[2],
		"truncated signature":      tok[:len(tok)-4],
		"no signature":             parts[0] + "." + parts[1] + ".",
		"two parts":                parts[0] + "." + parts[1],
		"four parts":               tok + "." + parts[2],
		"empty":                    "",
		"garbage":                  "not.a.jwt",
	}
	// A method switched: the right claims, signed with the other family.
	if name[:2] == "HS" {
		f["alg switched to RS256"] = forge(t, jwt.SigningMethodRS256, newJWTKey(t, "RS256", false).sign, goodClaims())
	} else {
		// The classic confusion: HS256 with the public key's PEM (and its
		// DER) as the HMAC secret.
		f["alg switched to HS256, public PEM as secret"] = forge(t, jwt.SigningMethodHS256, k.pub, goodClaims())
		blk, _ := pem.Decode(k.pub)
		f["alg switched to HS256, public DER as secret"] = forge(t, jwt.SigningMethodHS256, blk.Bytes, goodClaims())
	}
	// Another size of the same family, signed with the right key where
	// the family allows it.
	sibling := map[string]string{"RS256": "RS512", "RS384": "RS256", "RS512": "PS512", "PS256": "RS256", "PS384": "PS256", "PS512": "PS384",
		"HS256": "HS512", "HS384": "HS256", "HS512": "HS384"}[name]
	if sibling != "" {
		f["alg switched to "+sibling+", same key"] = forge(t, jwt.GetSigningMethod(sibling), k.sign, goodClaims())
	}
	return f
}

func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	tk, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return tk.Header
}

// TestJWTTTL: a token stops verifying once its ttl is past.
func TestJWTTTL(t *testing.T) {
	t.Parallel()
	k := newJWTKey(t, "ES256", false)
	tp, err := NewJWTTokens(jwtOpts(t, "ES256", k, true, "1s"))
	if err != nil {
		t.Fatal(err)
	}
	s := jwtStore(t, tp)
	tok, err := tp.assign("alice", 3, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(context.Background(), tok); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	// exp is in whole seconds: past it within two.
	time.Sleep(2100 * time.Millisecond)
	if _, err := s.Token(context.Background(), tok); err != ErrInvalidAuthToken {
		t.Fatalf("token past its ttl: %v, want %v", err, ErrInvalidAuthToken)
	}
}

// TestJWTOptions: the option errors etcd gives.
func TestJWTOptions(t *testing.T) {
	t.Parallel()
	rs, es := newJWTKey(t, "RS256", false), newJWTKey(t, "ES256", false)
	rsOther := newJWTKey(t, "RS256", true)
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rsPriv, rsPub, otherPub, esPriv := file("rs", rs.priv), file("rs.pub", rs.pub), file("other.pub", rsOther.pub), file("es", es.priv)
	for _, c := range []struct {
		opts string
		want error
	}{
		{"sign-method=RS256", ErrMissingKey},
		{"sign-method=HS256", ErrMissingKey},
		{"sign-method=XX256,priv-key=" + rsPriv, ErrInvalidAuthOpts},
		{"priv-key=" + rsPriv, ErrInvalidAuthOpts},
		{"sign-method=RS256,priv-key=" + rsPriv + ",ttl=often", ErrInvalidAuthOpts},
		{"sign-method=RS256,priv-key=" + rsPriv + ",pub-key=" + otherPub, ErrKeyMismatch},
		{"sign-method=RS256,priv-key=" + filepath.Join(dir, "missing"), ErrInvalidAuthOpts},
	} {
		if _, err := NewJWTTokens(c.opts); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.opts, err, c.want)
		}
	}
	// "none" is a method jwt knows and etcd's options.Key does not.
	if _, err := NewJWTTokens("sign-method=none,priv-key=" + rsPriv); err == nil || err.Error() != "unsupported signing method: *jwt.signingMethodNone" {
		t.Errorf("sign-method=none: %v, want etcd's unsupported signing method", err)
	}
	// A key of another kind than the method's is refused.
	if _, err := NewJWTTokens("sign-method=RS256,priv-key=" + esPriv); err == nil {
		t.Error("RS256 with an EC key was accepted")
	}
	if _, err := NewJWTTokens("sign-method=RS256,priv-key=" + rsPriv + ",pub-key=" + rsPub); err != nil {
		t.Errorf("a matching pair: %v", err)
	}
}

// FuzzJWT feeds arbitrary strings to the JWT verify path of a member of
// each key family: nothing panics, and nothing is accepted but a token
// the member signed (the signed part, header and claims, unchanged).
func FuzzJWT(f *testing.F) {
	type member struct {
		tp     *jwtTokens
		issued map[string]bool // header.claims of the tokens it signed
	}
	var members []member
	for _, method := range []string{"RS256", "PS384", "ES256", "EdDSA", "HS256"} {
		k := newJWTKey(f, method, false)
		tp, err := NewJWTTokens(jwtOpts(f, method, k, true, ""))
		if err != nil {
			f.Fatal(err)
		}
		m := member{tp: tp.(*jwtTokens), issued: map[string]bool{}}
		tok, err := m.tp.assign("alice", 7, "", 0)
		if err != nil {
			f.Fatal(err)
		}
		i := strings.LastIndexByte(tok, '.')
		m.issued[tok[:i]] = true
		members = append(members, m)
		f.Add(tok)
		f.Add(tok[:i] + ".")
		f.Add(tok[:i])
		f.Add(forge(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims()))
		if k.pub != nil {
			f.Add(forge(f, jwt.SigningMethodHS256, k.pub, goodClaims()))
		}
	}
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.x")
	f.Add("eyJhbGciOiJub25lIn0.eyJ1c2VybmFtZSI6InJvb3QiLCJyZXZpc2lvbiI6MX0.")
	f.Add(fmt.Sprintf("%s.%s.%s", strings.Repeat("A", 100), strings.Repeat("B", 100), strings.Repeat("C", 100)))
	f.Fuzz(func(t *testing.T, tok string) {
		for _, m := range members {
			user, rev, ok := m.tp.info(context.Background(), tok)
			if !ok {
				continue
			}
			i := strings.LastIndexByte(tok, '.')
			if i < 0 || !m.issued[tok[:i]] || user != "alice" || rev != 7 {
				t.Fatalf("%s member accepted %q as %q rev %d", m.tp.method.Alg(), tok, user, rev)
			}
		}
	})
}
