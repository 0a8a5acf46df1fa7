package server

import (
	"context"
	"fmt"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/auth"
)

// newTokenProvider builds the tokens --auth-token asks for: "simple"
// (etcd's default) or "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...".
func newTokenProvider(cfg *Config, wait func(context.Context, uint64) bool) (auth.TokenProvider, error) {
	kind, opts, _ := strings.Cut(cfg.AuthToken, ",")
	switch kind {
	case "", "simple":
		return auth.NewSimpleTokens(cfg.AuthTokenTTL, wait), nil
	case "jwt":
		return auth.NewJWTTokens(opts)
	}
	return nil, fmt.Errorf("unknown token type %q", kind)
}

// waitAppliedIndex returns once this member has applied index, false if
// ctx ends first or the member stops.
func (s *Server) waitAppliedIndex(ctx context.Context, index uint64) bool {
	select {
	case <-s.applied.wait(index):
		return true
	case <-ctx.Done():
	case <-s.stopc:
	}
	return false
}

// asRoot is the header of a request the member makes for itself (an
// expired lease's revocation), made as root so that auth never stops it.
func (s *Server) asRoot() *pb.RequestHeader {
	return &pb.RequestHeader{Username: "root", AuthRevision: s.auth.Revision()}
}
