package api

import (
	"context"
	"errors"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"

	"github.com/cairnkv/cairn/auth"
)

// authErrors maps package auth's errors to etcd's.
var authErrors = []struct{ err, grpc error }{
	{auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{auth.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	// auth.ErrNoPasswordUser is left unmapped, as etcd leaves it: code
	// Unknown with the auth package's words.
	{auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
	{auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
}

func authToGRPC(err error) (error, bool) {
	for _, e := range authErrors {
		if errors.Is(err, e.err) {
			return e.grpc, true
		}
	}
	return nil, false
}

// authInfo is who the request in ctx comes from, by etcd's rules: with
// auth off, nobody (every check passes); a token in the "token" metadata
// (or the gateway's Authorization header, "Bearer " optional) names its
// user, and a token that does not resolve is ErrInvalidAuthToken; without
// a token, with --client-cert-auth, the verified client certificate's
// common name is the user.
func (s *Server) authInfo(ctx context.Context) (auth.Info, error) {
	as := s.m.Auth()
	if as == nil || !as.Enabled() {
		return auth.Info{}, nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ts := md.Get(rpctypes.TokenFieldNameGRPC)
		if len(ts) == 0 {
			ts = md.Get(rpctypes.TokenFieldNameSwagger)
		}
		if len(ts) > 0 {
			ai, err := as.Token(ctx, strings.TrimPrefix(ts[0], "Bearer "))
			if err != nil {
				return auth.Info{}, rpctypes.ErrGRPCInvalidAuthToken
			}
			return ai, nil
		}
	}
	if s.opts.ClientCertAuth {
		if cn := ClientCommonName(ctx); cn != "" {
			return as.CertUser(cn), nil
		}
	}
	return auth.Info{}, nil
}

// authorize runs check with the request's user, mapping errors to etcd's.
func (s *Server) authorize(ctx context.Context, check func(as *auth.Store, ai auth.Info) error) (auth.Info, error) {
	ai, err := s.authInfo(ctx)
	if err != nil {
		return ai, err
	}
	as := s.m.Auth()
	if as == nil || !as.Enabled() {
		return ai, nil
	}
	return ai, toGRPC(check(as, ai))
}

// requireUser is etcd's requireAuthInfo: any user will do.
func (s *Server) requireUser(ctx context.Context) error {
	_, err := s.authorize(ctx, func(as *auth.Store, ai auth.Info) error { return as.RequireUser(ai) })
	return err
}

// requireAdmin: a user holding the root role (etcd's isPermitted and
// checkMembershipOperationPermission).
func (s *Server) requireAdmin(ctx context.Context) error {
	_, err := s.authorize(ctx, func(as *auth.Store, ai auth.Info) error { return as.IsAdmin(ai) })
	return err
}

// serveRead checks a read with chk, serves it, and, as etcd's doSerialize
// does, refuses the answer when the auth state changed while it was
// served by credentials with a revision.
func (s *Server) serveRead(ctx context.Context, chk func(as *auth.Store, ai auth.Info) error, read func() error) error {
	ai, err := s.authorize(ctx, chk)
	if err != nil {
		return err
	}
	if err := read(); err != nil {
		return err
	}
	if as := s.m.Auth(); as != nil && ai.Revision != 0 && ai.Revision != as.Revision() {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	return nil
}

// leaseKeys lists a lease's attached keys from the store (nil if the
// lease does not exist).
func (s *Server) leaseKeys(id int64) [][]byte {
	if !s.m.Lessor().Exists(id) {
		return nil
	}
	keys, err := s.m.Lessor().Keys(s.m.Store().Engine(), id)
	if err != nil {
		return [][]byte{nil} // unreadable: refuse rather than allow
	}
	return keys
}

// authServer is etcd's Auth service. Every call but Authenticate goes
// through the log, as in etcd, with the caller's user in the entry's
// header; the apply loop decides with the auth state of that position.
type authServer struct {
	pb.UnimplementedAuthServer
	s *Server
}

func (a *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthEnable: r}, func(o *pb.AuthEnableResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthDisable: r}, func(o *pb.AuthDisableResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthStatus: r}, func(o *pb.AuthStatusResponse, h *pb.ResponseHeader) { o.Header = h })
}

// Authenticate checks the password on this goroutine (bcrypt is slow on
// purpose and must not hold up the log), then has the token issued
// through the log, again if the auth state changed meanwhile.
func (a *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	as := a.s.m.Auth()
	if err := a.s.m.LinearizableRead(ctx); err != nil {
		return nil, toGRPC(err)
	}
	for {
		rev, err := as.CheckPassword(ctx, r.Name, r.Password)
		if err != nil {
			return nil, toGRPC(err)
		}
		prefix, err := as.NewTokenPrefix()
		if err != nil {
			return nil, toGRPC(err)
		}
		// No password in the entry: the log must never hold one.
		out, err := authCall(a, ctx, &pbInternal{Authenticate: &pb.InternalAuthenticateRequest{Name: r.Name, SimpleToken: prefix}},
			func(o *pb.AuthenticateResponse, h *pb.ResponseHeader) { o.Header = h })
		if err != nil || rev == as.Revision() {
			return out, err
		}
	}
}

func (a *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	req := &pb.AuthUserAddRequest{Name: r.Name, Options: r.Options}
	if r.Options == nil || !r.Options.NoPassword {
		h, err := a.s.m.Auth().HashPassword(ctx, r.Password)
		if err != nil {
			return nil, toGRPC(err)
		}
		req.HashedPassword = h
	}
	return authCall(a, ctx, &pbInternal{AuthUserAdd: req}, func(o *pb.AuthUserAddResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	req := &pb.AuthUserChangePasswordRequest{Name: r.Name, HashedPassword: r.HashedPassword}
	if r.Password != "" {
		h, err := a.s.m.Auth().HashPassword(ctx, r.Password)
		if err != nil {
			return nil, toGRPC(err)
		}
		req.HashedPassword = h
	}
	return authCall(a, ctx, &pbInternal{AuthUserChangePassword: req}, func(o *pb.AuthUserChangePasswordResponse, h *pb.ResponseHeader) { o.Header = h })
}

// authCall proposes req and fills the header of its answer.
func authCall[T any](a *authServer, ctx context.Context, req *pbInternal, setHeader func(T, *pb.ResponseHeader)) (T, error) {
	var zero T
	resp, _, err := a.s.propose(ctx, req)
	if err != nil {
		return zero, err
	}
	out := resp.(T)
	setHeader(out, a.s.header(0))
	return out, nil
}

func (a *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthUserGet: r}, func(o *pb.AuthUserGetResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthUserList: r}, func(o *pb.AuthUserListResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthUserDelete: r}, func(o *pb.AuthUserDeleteResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthUserGrantRole: r}, func(o *pb.AuthUserGrantRoleResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthUserRevokeRole: r}, func(o *pb.AuthUserRevokeRoleResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthRoleAdd: r}, func(o *pb.AuthRoleAddResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthRoleGet: r}, func(o *pb.AuthRoleGetResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthRoleList: r}, func(o *pb.AuthRoleListResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthRoleDelete: r}, func(o *pb.AuthRoleDeleteResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthRoleGrantPermission: r}, func(o *pb.AuthRoleGrantPermissionResponse, h *pb.ResponseHeader) { o.Header = h })
}

func (a *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return authCall(a, ctx, &pbInternal{AuthRoleRevokePermission: r}, func(o *pb.AuthRoleRevokePermissionResponse, h *pb.ResponseHeader) { o.Header = h })
}
