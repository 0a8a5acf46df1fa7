package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWT errors, with etcd's words.
var (
	ErrInvalidAuthOpts   = errors.New("auth: invalid auth options")
	ErrInvalidAuthMethod = errors.New("auth: invalid auth signature method")
	ErrMissingKey        = errors.New("auth: missing key data")
	ErrKeyMismatch       = errors.New("auth: public and private keys don't match")
	ErrVerifyOnly        = errors.New("auth: token signing attempted with verify-only key")
)

// DefaultJWTTTL is a JWT's lifetime when the options give none.
const DefaultJWTTTL = 5 * time.Minute

// jwtTokens are etcd's JWT tokens: claims "username", "revision" (the
// auth revision at Authenticate) and "exp", signed by the member. Any
// member with the key verifies them; a token signed before an auth change
// is ErrAuthOldRevision (the client authenticates again).
type jwtTokens struct {
	method     jwt.SigningMethod
	key        any
	ttl        time.Duration
	verifyOnly bool
}

// NewJWTTokens parses --auth-token's options after "jwt,":
// "pub-key=FILE,priv-key=FILE,sign-method=RS256,ttl=5m", as etcd does
// (RS, PS, ES, EdDSA and HS methods; an HS key is priv-key's bytes; only a
// public key makes a verify-only member).
func NewJWTTokens(opts string) (TokenProvider, error) {
	m := map[string]string{}
	for _, kv := range strings.Split(opts, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, ErrInvalidAuthOpts
		}
		m[k] = v
	}
	t := &jwtTokens{ttl: DefaultJWTTTL}
	var err error
	if v := m["ttl"]; v != "" {
		if t.ttl, err = time.ParseDuration(v); err != nil {
			return nil, ErrInvalidAuthOpts
		}
	}
	var pub, priv []byte
	if f := m["pub-key"]; f != "" {
		if pub, err = os.ReadFile(f); err != nil {
			return nil, ErrInvalidAuthOpts
		}
	}
	if f := m["priv-key"]; f != "" {
		if priv, err = os.ReadFile(f); err != nil {
			return nil, ErrInvalidAuthOpts
		}
	}
	if t.method = jwt.GetSigningMethod(m["sign-method"]); t.method == nil {
		return nil, ErrInvalidAuthOpts
	}
	if t.key, t.verifyOnly, err = jwtKey(t.method, pub, priv); err != nil {
		return nil, err
	}
	return t, nil
}

// jwtKey is the signing key (or, with a public key only, the verifying
// one) for method.
func jwtKey(method jwt.SigningMethod, pub, priv []byte) (any, bool, error) {
	type pair struct {
		parsePriv func([]byte) (crypto.Signer, error)
		parsePub  func([]byte) (crypto.PublicKey, error)
	}
	var p pair
	switch method.(type) {
	case *jwt.SigningMethodHMAC:
		if len(priv) == 0 {
			return nil, false, ErrMissingKey
		}
		return priv, false, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		p = pair{func(b []byte) (crypto.Signer, error) { return jwt.ParseRSAPrivateKeyFromPEM(b) },
			func(b []byte) (crypto.PublicKey, error) { return jwt.ParseRSAPublicKeyFromPEM(b) }}
	case *jwt.SigningMethodECDSA:
		p = pair{func(b []byte) (crypto.Signer, error) { return jwt.ParseECPrivateKeyFromPEM(b) },
			func(b []byte) (crypto.PublicKey, error) { return jwt.ParseECPublicKeyFromPEM(b) }}
	case *jwt.SigningMethodEd25519:
		p = pair{func(b []byte) (crypto.Signer, error) {
			k, err := jwt.ParseEdPrivateKeyFromPEM(b)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, ErrMissingKey
			}
			return s, nil
		}, jwt.ParseEdPublicKeyFromPEM}
	default:
		return nil, false, fmt.Errorf("unsupported signing method: %T", method)
	}
	var sk crypto.Signer
	var pk crypto.PublicKey
	var err error
	if len(priv) > 0 {
		if sk, err = p.parsePriv(priv); err != nil {
			return nil, false, err
		}
	}
	if len(pub) > 0 {
		if pk, err = p.parsePub(pub); err != nil {
			return nil, false, err
		}
	}
	switch {
	case sk == nil && pk == nil:
		return nil, false, ErrMissingKey
	case sk == nil:
		return pk, true, nil
	case pk != nil && !publicEqual(pk, sk.Public()):
		return nil, false, ErrKeyMismatch
	}
	return sk, false, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func (t *jwtTokens) newPrefix() (string, error) { return "", nil }
func (t *jwtTokens) invalidateUser(string)      {}
func (t *jwtTokens) enable()                    {}
func (t *jwtTokens) disable()                   {}

func (t *jwtTokens) assign(user string, rev uint64, _ string, _ uint64) (string, error) {
	if t.verifyOnly {
		return "", ErrVerifyOnly
	}
	tk := jwt.NewWithClaims(t.method, jwt.MapClaims{
		"username": user,
		"revision": rev,
		"exp":      time.Now().Add(t.ttl).Unix(),
	})
	return tk.SignedString(t.key)
}

func (t *jwtTokens) info(_ context.Context, token string) (string, uint64, bool) {
	parsed, err := jwt.Parse(token, func(tk *jwt.Token) (any, error) {
		if tk.Method.Alg() != t.method.Alg() {
			return nil, errors.New("invalid signing method")
		}
		switch k := t.key.(type) {
		case *rsa.PrivateKey:
			return &k.PublicKey, nil
		case *ecdsa.PrivateKey:
			return &k.PublicKey, nil
		case ed25519.PrivateKey:
			return k.Public(), nil
		}
		return t.key, nil
	})
	if err != nil || !parsed.Valid {
		return "", 0, false
	}
	claims, ok := parsed.Claims.(jwt.MapClaims)
	if !ok {
		return "", 0, false
	}
	user, ok := claims["username"].(string)
	if !ok {
		return "", 0, false
	}
	rev, ok := claims["revision"].(float64)
	if !ok || rev < 1 {
		return "", 0, false
	}
	return user, uint64(rev), true
}
