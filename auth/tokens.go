package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TokenProvider issues the tokens Authenticate answers with and resolves
// the tokens requests carry: simple tokens (NewSimpleTokens) or JWTs
// (NewJWTTokens). Tokens are not replicated state: a member that restarts
// forgets its simple tokens and clients authenticate again, as with etcd.
type TokenProvider interface {
	newPrefix() (string, error)
	// assign issues a token to user, checked at auth revision rev, for the
	// Authenticate entry at index with the proposer's prefix.
	assign(user string, rev uint64, prefix string, index uint64) (string, error)
	// info resolves a token; rev is 0 when the token carries none.
	info(ctx context.Context, token string) (user string, rev uint64, ok bool)
	invalidateUser(user string)
	enable()
	disable()
}

// DefaultTokenTTL is --auth-token-ttl's default: a simple token unused
// this long stops working.
const DefaultTokenTTL = 300 * time.Second

const (
	tokenLetters      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	tokenPrefixLength = 16
)

// simpleTokens are etcd's "simple" tokens: 16 random letters chosen by
// the proposing member, a dot, and the Raft index of the Authenticate
// entry ("AbCd...xYz.42"). Every member that applies the entry learns the
// token, so it works on any member; one that has not applied it yet waits
// for that index before it answers.
type simpleTokens struct {
	ttl  time.Duration
	wait func(ctx context.Context, index uint64) bool

	// mu guards the map; a token's expiry is atomic, so a request using
	// a token takes only the read lock (requests of every client share
	// this table).
	mu        sync.RWMutex
	enabled   bool
	tokens    map[string]*simpleToken
	lastSweep time.Time
}

type simpleToken struct {
	user    string
	expires atomic.Int64 // unix nanoseconds
}

// NewSimpleTokens makes simple tokens living ttl since their last use
// (0: DefaultTokenTTL). wait returns once this member has applied index,
// false if ctx ends first (nil: do not wait).
func NewSimpleTokens(ttl time.Duration, wait func(ctx context.Context, index uint64) bool) TokenProvider {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	return &simpleTokens{ttl: ttl, wait: wait, tokens: map[string]*simpleToken{}}
}

func (t *simpleTokens) newPrefix() (string, error) {
	b := make([]byte, tokenPrefixLength)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(tokenLetters))))
		if err != nil {
			return "", err
		}
		b[i] = tokenLetters[n.Int64()]
	}
	return string(b), nil
}

func (t *simpleTokens) assign(user string, _ uint64, prefix string, index uint64) (string, error) {
	if prefix == "" {
		return "", fmt.Errorf("auth: simple token without a prefix")
	}
	tok := prefix + "." + strconv.FormatUint(index, 10)
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.enabled {
		st := &simpleToken{user: user}
		st.expires.Store(now.Add(t.ttl).UnixNano())
		t.tokens[tok] = st
		t.sweep(now)
	}
	return tok, nil
}

// sweep drops expired tokens, at most once a second; t.mu is held.
func (t *simpleTokens) sweep(now time.Time) {
	if now.Sub(t.lastSweep) < time.Second {
		return
	}
	t.lastSweep = now
	for k, v := range t.tokens {
		if now.UnixNano() > v.expires.Load() {
			delete(t.tokens, k)
		}
	}
}

func (t *simpleTokens) info(ctx context.Context, token string) (string, uint64, bool) {
	prefix, idx, ok := strings.Cut(token, ".")
	if !ok || prefix == "" || strings.Contains(idx, ".") {
		return "", 0, false
	}
	index, err := strconv.ParseUint(idx, 10, 64)
	if err != nil {
		return "", 0, false
	}
	if t.wait != nil && !t.wait(ctx, index) {
		return "", 0, false
	}
	now := time.Now().UnixNano()
	t.mu.RLock()
	st, ok := t.tokens[token]
	t.mu.RUnlock()
	if !ok || now > st.expires.Load() {
		// An expired token is dropped by the next sweep.
		return "", 0, false
	}
	st.expires.Store(now + int64(t.ttl))
	return st.user, 0, true
}

func (t *simpleTokens) invalidateUser(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range t.tokens {
		if v.user == user {
			delete(t.tokens, k)
		}
	}
}

func (t *simpleTokens) enable() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.enabled = true
}

func (t *simpleTokens) disable() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.enabled = false
	clear(t.tokens)
}
