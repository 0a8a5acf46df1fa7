package auth

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"sync"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/storage"
)

// Errors, with etcd's words (the api package maps each to its rpctypes
// error).
var (
	ErrRootUserNotExist     = errors.New("auth: root user does not exist")
	ErrRootRoleNotExist     = errors.New("auth: root user does not have root role")
	ErrUserAlreadyExist     = errors.New("auth: user already exists")
	ErrUserEmpty            = errors.New("auth: user name is empty")
	ErrUserNotFound         = errors.New("auth: user not found")
	ErrRoleAlreadyExist     = errors.New("auth: role already exists")
	ErrRoleNotFound         = errors.New("auth: role not found")
	ErrRoleEmpty            = errors.New("auth: role name is empty")
	ErrPermissionNotGiven   = errors.New("auth: permission not given")
	ErrAuthFailed           = errors.New("auth: authentication failed, invalid user ID or password")
	ErrNoPasswordUser       = errors.New("auth: authentication failed, password was given for no password user")
	ErrPermissionDenied     = errors.New("auth: permission denied")
	ErrRoleNotGranted       = errors.New("auth: role is not granted to the user")
	ErrPermissionNotGranted = errors.New("auth: permission is not granted to the role")
	ErrAuthNotEnabled       = errors.New("auth: authentication is not enabled")
	ErrAuthOldRevision      = errors.New("auth: revision in header is old")
	ErrInvalidAuthToken     = errors.New("auth: invalid auth token")
	ErrInvalidAuthMgmt      = errors.New("auth: invalid auth management")
)

const (
	rootUser = "root"
	rootRole = "root"
)

// rootPerm is what RoleGet shows for the root role: every key.
var rootPerm = &authpb.Permission{PermType: authpb.READWRITE, Key: []byte{}, RangeEnd: []byte{0}}

var (
	keyEnabled  = []byte("mauth/enabled")
	keyRevision = []byte("mauth/rev")
	userPrefix  = []byte("mauth/user/")
	rolePrefix  = []byte("mauth/role/")
)

// Info says who a request comes from: the user, and the auth revision its
// credentials were checked at. The zero Info is "nobody".
type Info struct {
	User     string
	Revision uint64
}

// Options configure a Store.
type Options struct {
	// BcryptCost hashes new passwords (--bcrypt-cost; out-of-range
	// values mean bcrypt's default, as in etcd).
	BcryptCost int
	// Tokens issues and resolves tokens (simple or JWT).
	Tokens TokenProvider
	Logger *slog.Logger
}

// Store is the auth state of the member: a copy, kept in memory, of what
// the engine holds under "mauth/", plus each user's merged permissions.
type Store struct {
	opts Options
	lg   *slog.Logger

	mu      sync.RWMutex
	enabled bool
	rev     uint64
	users   map[string]*authpb.User
	roles   map[string]*authpb.Role
	perms   map[string]*userPerms
}

// Load reads the auth state from r.
func Load(r storage.Reader, opts Options) (*Store, error) {
	if opts.BcryptCost < bcrypt.MinCost || opts.BcryptCost > bcrypt.MaxCost {
		opts.BcryptCost = bcrypt.DefaultCost
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Tokens == nil {
		opts.Tokens = NewSimpleTokens(0, nil)
	}
	s := &Store{opts: opts, lg: opts.Logger}
	return s, s.Reload(r)
}

// Reload replaces the state with the one stored in r (after a snapshot
// restore).
func (s *Store) Reload(r storage.Reader) error {
	enabled, rev := false, uint64(1) // etcd starts the revision at 1
	if v, ok, err := r.Get(keyEnabled); err != nil {
		return err
	} else if ok {
		enabled = len(v) == 1 && v[0] == 1
	}
	if v, ok, err := r.Get(keyRevision); err != nil {
		return err
	} else if ok && len(v) == 8 {
		rev = binary.BigEndian.Uint64(v)
	}
	users := map[string]*authpb.User{}
	if err := scan(r, userPrefix, func(v []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(v, u); err != nil {
			return err
		}
		users[string(u.Name)] = u
		return nil
	}); err != nil {
		return err
	}
	roles := map[string]*authpb.Role{}
	if err := scan(r, rolePrefix, func(v []byte) error {
		ro := &authpb.Role{}
		if err := proto.Unmarshal(v, ro); err != nil {
			return err
		}
		roles[string(ro.Name)] = ro
		return nil
	}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enabled, s.rev, s.users, s.roles = enabled, rev, users, roles
	s.refreshPerms()
	if enabled {
		s.opts.Tokens.enable()
	} else {
		s.opts.Tokens.disable()
	}
	return nil
}

func scan(r storage.Reader, prefix []byte, f func(v []byte) error) error {
	end := slices.Clone(prefix)
	end[len(end)-1]++
	it, err := r.NewIter(prefix, end)
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := f(it.Value()); err != nil {
			it.Close()
			return fmt.Errorf("auth: decode %q: %w", it.Key(), err)
		}
	}
	return it.Close()
}

// refreshPerms rebuilds every user's merged permissions; s.mu is held.
func (s *Store) refreshPerms() {
	s.perms = make(map[string]*userPerms, len(s.users))
	for name, u := range s.users {
		var roles []*authpb.Role
		for _, rn := range u.Roles {
			if r := s.roles[rn]; r != nil {
				roles = append(roles, r)
			}
		}
		s.perms[name] = mergePerms(roles)
	}
}

// Enabled reports whether authentication is on.
func (s *Store) Enabled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enabled
}

// Revision is the auth revision: every change of users, roles or
// permissions, and every disable, bumps it.
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// BcryptCost is the cost new password hashes are made with.
func (s *Store) BcryptCost() int { return s.opts.BcryptCost }

// HashPassword is the stored form of a new password, for a UserAdd or
// UserChangePassword request (base64 of the bcrypt hash, as etcd puts it
// in the log entry). It is slow on purpose and runs on the caller's
// goroutine.
func (s *Store) HashPassword(ctx context.Context, password string) (string, error) {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.opts.BcryptCost)
	<-hashSlots
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

// CheckPassword checks name's password on the caller's goroutine and
// returns the auth revision it was checked at. At most one check fewer
// than the cores runs at a time (hashSlots): a flood of Authenticate
// calls uses every core but one, and the write path keeps that one.
func (s *Store) CheckPassword(ctx context.Context, name, password string) (uint64, error) {
	s.mu.RLock()
	enabled, u, rev := s.enabled, s.users[name], s.rev
	s.mu.RUnlock()
	switch {
	case !enabled:
		return 0, ErrAuthNotEnabled
	case u == nil:
		return 0, ErrAuthFailed
	case u.Options != nil && u.Options.NoPassword:
		return 0, ErrNoPasswordUser
	}
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	err := bcrypt.CompareHashAndPassword(u.Password, []byte(password))
	<-hashSlots
	if err != nil {
		return 0, ErrAuthFailed
	}
	return rev, nil
}

// hashSlots bounds the bcrypt computations running at once to one fewer
// than the cores (at least one), for password checks and new hashes.
var hashSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))

// NewTokenPrefix is the random part of a simple token, made by the
// member that proposes an Authenticate entry.
func (s *Store) NewTokenPrefix() (string, error) { return s.opts.Tokens.newPrefix() }

// Token resolves a token to the user it was issued to. The Info's
// revision is the store's for a simple token (its user's permissions are
// read at each check) and the one signed into a JWT.
func (s *Store) Token(ctx context.Context, token string) (Info, error) {
	s.mu.RLock()
	rev := s.rev
	s.mu.RUnlock()
	user, tokRev, ok := s.opts.Tokens.info(ctx, token)
	if !ok {
		return Info{}, ErrInvalidAuthToken
	}
	if tokRev == 0 {
		tokRev = rev
	}
	return Info{User: user, Revision: tokRev}, nil
}

// CertUser is the Info of a client certificate's common name: the store's
// revision, as for a simple token.
func (s *Store) CertUser(cn string) Info { return Info{User: cn, Revision: s.Revision()} }

// AuthStatus is the AuthStatus answer, read locally.
func (s *Store) AuthStatus() *pb.AuthStatusResponse {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &pb.AuthStatusResponse{Enabled: s.enabled, AuthRevision: s.rev}
}

// IsAdmin reports (nil) whether ai may manage auth and membership: auth
// off, or a user holding the root role. It does not look at the revision,
// as etcd's IsAdminPermitted does not.
func (s *Store) IsAdmin(ai Info) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.isAdmin(ai)
}

func (s *Store) isAdmin(ai Info) error {
	if !s.enabled {
		return nil
	}
	if ai.User == "" {
		return ErrUserEmpty
	}
	u := s.users[ai.User]
	if u == nil {
		return ErrUserNotFound
	}
	if !hasRoot(u) {
		return ErrPermissionDenied
	}
	return nil
}

// RequireUser is etcd's requireAuthInfo: with auth on, a request must come
// from some user (any user, even one with no roles).
func (s *Store) RequireUser(ai Info) error {
	if s.Enabled() && ai.User == "" {
		return ErrUserEmpty
	}
	return nil
}

func hasRoot(u *authpb.User) bool {
	_, ok := slices.BinarySearch(u.Roles, rootRole)
	return ok
}

// Type is a permission's kind: Read or Write.
type Type = authpb.Permission_Type

// Permission types, for callers that do not import authpb.
const (
	Read  = authpb.READ
	Write = authpb.WRITE
)

// Check reports (nil) whether ai may read or write [key, end) (one key
// when end is empty; every key from key on when end is "\x00"), by etcd's
// rules: auth off allows all; a request with no user is ErrUserEmpty;
// credentials older than the store's revision are ErrAuthOldRevision; the
// root role allows all; otherwise the user's roles must grant the whole
// range.
func (s *Store) Check(ai Info, typ Type, key, end []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.check(ai, typ, key, end)
}

func (s *Store) check(ai Info, typ Type, key, end []byte) error {
	if !s.enabled {
		return nil
	}
	if ai.Revision == 0 {
		return ErrUserEmpty
	}
	if ai.Revision < s.rev {
		return ErrAuthOldRevision
	}
	u := s.users[ai.User]
	if u == nil {
		return ErrPermissionDenied
	}
	if hasRoot(u) {
		return nil
	}
	if p := s.perms[ai.User]; p != nil && p.allows(typ, key, end) {
		return nil
	}
	return ErrPermissionDenied
}

// HasRole reports whether user holds role.
func (s *Store) hasRole(user, role string) bool {
	u := s.users[user]
	if u == nil {
		return false
	}
	_, ok := slices.BinarySearch(u.Roles, role)
	return ok
}

// IsAuthRequest reports whether req is one Store.Apply applies.
func IsAuthRequest(req *pb.InternalRaftRequest) bool {
	return req.AuthEnable != nil || req.AuthDisable != nil || req.AuthStatus != nil || req.Authenticate != nil ||
		req.AuthUserAdd != nil || req.AuthUserDelete != nil || req.AuthUserChangePassword != nil ||
		req.AuthUserGrantRole != nil || req.AuthUserRevokeRole != nil || req.AuthUserGet != nil || req.AuthUserList != nil ||
		req.AuthRoleAdd != nil || req.AuthRoleDelete != nil || req.AuthRoleGet != nil || req.AuthRoleList != nil ||
		req.AuthRoleGrantPermission != nil || req.AuthRoleRevokePermission != nil
}

// needsAdmin lists the entries only root may make (etcd's
// needAdminPermission); UserGet and RoleGet have their own rule.
func needsAdmin(req *pb.InternalRaftRequest) bool {
	return req.AuthEnable != nil || req.AuthDisable != nil || req.AuthUserAdd != nil || req.AuthUserDelete != nil ||
		req.AuthUserChangePassword != nil || req.AuthUserGrantRole != nil || req.AuthUserRevokeRole != nil ||
		req.AuthRoleAdd != nil || req.AuthRoleGrantPermission != nil || req.AuthRoleRevokePermission != nil ||
		req.AuthRoleDelete != nil || req.AuthUserList != nil || req.AuthRoleList != nil
}

// Apply applies an auth entry at Raft index, as the user in req.Header,
// writing the change to b. The in-memory state changes only once b is
// committed: the caller calls the returned commit after a successful
// commit of b (nil for entries that change nothing).
func (s *Store) Apply(b storage.Batch, index uint64, req *pb.InternalRaftRequest) (resp any, commit func(), err error) {
	ai := Info{}
	if req.Header != nil {
		ai = Info{User: req.Header.Username, Revision: req.Header.AuthRevision}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if needsAdmin(req) {
		if err := s.isAdmin(ai); err != nil {
			return nil, nil, err
		}
	}
	next := s.clone()
	switch {
	case req.AuthStatus != nil:
		return &pb.AuthStatusResponse{Enabled: s.enabled, AuthRevision: s.rev}, nil, nil
	case req.AuthEnable != nil:
		if s.enabled {
			return &pb.AuthEnableResponse{}, nil, nil
		}
		u := s.users[rootUser]
		if u == nil {
			return nil, nil, ErrRootUserNotExist
		}
		if !hasRoot(u) {
			return nil, nil, ErrRootRoleNotExist
		}
		next.enabled = true
		resp = &pb.AuthEnableResponse{}
	case req.AuthDisable != nil:
		if !s.enabled {
			return &pb.AuthDisableResponse{}, nil, nil
		}
		next.enabled = false
		next.rev++
		resp = &pb.AuthDisableResponse{}
	case req.Authenticate != nil:
		return s.applyAuthenticate(index, req.Authenticate)
	case req.AuthUserGet != nil:
		if err := s.isAdmin(ai); err != nil && req.AuthUserGet.Name != ai.User {
			return nil, nil, err
		}
		u := s.users[req.AuthUserGet.Name]
		if u == nil {
			return nil, nil, ErrUserNotFound
		}
		return &pb.AuthUserGetResponse{Roles: slices.Clone(u.Roles)}, nil, nil
	case req.AuthRoleGet != nil:
		if err := s.isAdmin(ai); err != nil && !s.hasRole(ai.User, req.AuthRoleGet.Role) {
			return nil, nil, err
		}
		r := s.roles[req.AuthRoleGet.Role]
		if r == nil {
			return nil, nil, ErrRoleNotFound
		}
		if req.AuthRoleGet.Role == rootRole {
			return &pb.AuthRoleGetResponse{Perm: []*authpb.Permission{rootPerm}}, nil, nil
		}
		return &pb.AuthRoleGetResponse{Perm: r.KeyPermission}, nil, nil
	case req.AuthUserList != nil:
		return &pb.AuthUserListResponse{Users: sortedKeys(s.users)}, nil, nil
	case req.AuthRoleList != nil:
		return &pb.AuthRoleListResponse{Roles: sortedKeys(s.roles)}, nil, nil
	default:
		var invalidate string
		var changed bool
		resp, invalidate, changed, err = next.applyChange(req)
		if err != nil {
			return nil, nil, err
		}
		if !changed {
			return resp, nil, nil
		}
		next.rev++
		if err := next.persist(b, s); err != nil {
			return nil, nil, err
		}
		return resp, func() {
			s.install(next)
			if invalidate != "" {
				s.opts.Tokens.invalidateUser(invalidate)
			}
		}, nil
	}
	if err := next.persist(b, s); err != nil {
		return nil, nil, err
	}
	return resp, func() { s.install(next) }, nil
}

// state is a copy of the replicated auth state being changed by one entry.
type state struct {
	enabled bool
	rev     uint64
	users   map[string]*authpb.User
	roles   map[string]*authpb.Role
}

func (s *Store) clone() *state {
	return &state{enabled: s.enabled, rev: s.rev, users: maps(s.users), roles: maps(s.roles)}
}

func maps[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// applyChange applies a user or role change to st; invalidate names a
// user whose tokens must stop working, and changed is false for a request
// etcd answers without changing anything (a role granted twice).
func (st *state) applyChange(req *pb.InternalRaftRequest) (resp any, invalidate string, changed bool, err error) {
	resp, invalidate, err = st.change(req)
	if errors.Is(err, errUnchanged) {
		return resp, "", false, nil
	}
	return resp, invalidate, err == nil, err
}

// errUnchanged: the request succeeds and changes nothing.
var errUnchanged = errors.New("auth: unchanged")

func (st *state) change(req *pb.InternalRaftRequest) (resp any, invalidate string, err error) {
	switch {
	case req.AuthUserAdd != nil:
		r := req.AuthUserAdd
		if r.Name == "" {
			return nil, "", ErrUserEmpty
		}
		if st.users[r.Name] != nil {
			return nil, "", ErrUserAlreadyExist
		}
		opts := r.Options
		if opts == nil {
			opts = &authpb.UserAddOptions{}
		}
		var pw []byte
		if !opts.NoPassword {
			if pw, err = base64.StdEncoding.DecodeString(r.HashedPassword); err != nil {
				return nil, "", ErrNoPasswordUser
			}
		}
		st.users[r.Name] = &authpb.User{Name: []byte(r.Name), Password: pw, Options: opts}
		return &pb.AuthUserAddResponse{}, "", nil
	case req.AuthUserDelete != nil:
		name := req.AuthUserDelete.Name
		if st.enabled && name == rootUser {
			return nil, "", ErrInvalidAuthMgmt
		}
		if st.users[name] == nil {
			return nil, "", ErrUserNotFound
		}
		delete(st.users, name)
		return &pb.AuthUserDeleteResponse{}, name, nil
	case req.AuthUserChangePassword != nil:
		r := req.AuthUserChangePassword
		u := st.users[r.Name]
		if u == nil {
			return nil, "", ErrUserNotFound
		}
		var pw []byte
		if u.Options == nil || !u.Options.NoPassword {
			if pw, err = base64.StdEncoding.DecodeString(r.HashedPassword); err != nil {
				return nil, "", ErrNoPasswordUser
			}
		}
		st.users[r.Name] = &authpb.User{Name: u.Name, Roles: u.Roles, Password: pw, Options: u.Options}
		return &pb.AuthUserChangePasswordResponse{}, r.Name, nil
	case req.AuthUserGrantRole != nil:
		r := req.AuthUserGrantRole
		u := st.users[r.User]
		if u == nil {
			return nil, "", ErrUserNotFound
		}
		if r.Role != rootRole && st.roles[r.Role] == nil {
			return nil, "", ErrRoleNotFound
		}
		i, found := slices.BinarySearch(u.Roles, r.Role)
		if found {
			// etcd answers OK, changes nothing, keeps the revision.
			return &pb.AuthUserGrantRoleResponse{}, "", errUnchanged
		}
		st.users[r.User] = &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options, Roles: slices.Insert(slices.Clone(u.Roles), i, r.Role)}
		return &pb.AuthUserGrantRoleResponse{}, "", nil
	case req.AuthUserRevokeRole != nil:
		r := req.AuthUserRevokeRole
		if st.enabled && r.Name == rootUser && r.Role == rootRole {
			return nil, "", ErrInvalidAuthMgmt
		}
		u := st.users[r.Name]
		if u == nil {
			return nil, "", ErrUserNotFound
		}
		i, found := slices.BinarySearch(u.Roles, r.Role)
		if !found {
			return nil, "", ErrRoleNotGranted
		}
		st.users[r.Name] = &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options, Roles: slices.Delete(slices.Clone(u.Roles), i, i+1)}
		return &pb.AuthUserRevokeRoleResponse{}, "", nil
	case req.AuthRoleAdd != nil:
		name := req.AuthRoleAdd.Name
		if name == "" {
			return nil, "", ErrRoleEmpty
		}
		if st.roles[name] != nil {
			return nil, "", ErrRoleAlreadyExist
		}
		st.roles[name] = &authpb.Role{Name: []byte(name)}
		return &pb.AuthRoleAddResponse{}, "", nil
	case req.AuthRoleDelete != nil:
		name := req.AuthRoleDelete.Role
		if st.enabled && name == rootRole {
			return nil, "", ErrInvalidAuthMgmt
		}
		if st.roles[name] == nil {
			return nil, "", ErrRoleNotFound
		}
		delete(st.roles, name)
		for un, u := range st.users {
			if i, found := slices.BinarySearch(u.Roles, name); found {
				st.users[un] = &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options, Roles: slices.Delete(slices.Clone(u.Roles), i, i+1)}
			}
		}
		return &pb.AuthRoleDeleteResponse{}, "", nil
	case req.AuthRoleGrantPermission != nil:
		r := req.AuthRoleGrantPermission
		if r.Perm == nil {
			return nil, "", ErrPermissionNotGiven
		}
		if !validPermRange(r.Perm.Key, r.Perm.RangeEnd) {
			return nil, "", ErrInvalidAuthMgmt
		}
		role := st.roles[r.Name]
		if role == nil {
			return nil, "", ErrRoleNotFound
		}
		perms := slices.Clone(role.KeyPermission)
		i := sort.Search(len(perms), func(i int) bool { return string(perms[i].Key) >= string(r.Perm.Key) })
		np := &authpb.Permission{Key: r.Perm.Key, RangeEnd: r.Perm.RangeEnd, PermType: r.Perm.PermType}
		if i < len(perms) && string(perms[i].Key) == string(r.Perm.Key) && string(perms[i].RangeEnd) == string(r.Perm.RangeEnd) {
			perms[i] = np
		} else {
			perms = append(perms, np)
			sort.SliceStable(perms, func(a, b int) bool { return string(perms[a].Key) < string(perms[b].Key) })
		}
		st.roles[r.Name] = &authpb.Role{Name: role.Name, KeyPermission: perms}
		return &pb.AuthRoleGrantPermissionResponse{}, "", nil
	case req.AuthRoleRevokePermission != nil:
		r := req.AuthRoleRevokePermission
		role := st.roles[r.Role]
		if role == nil {
			return nil, "", ErrRoleNotFound
		}
		var kept []*authpb.Permission
		for _, p := range role.KeyPermission {
			if string(p.Key) != string(r.Key) || string(p.RangeEnd) != string(r.RangeEnd) {
				kept = append(kept, p)
			}
		}
		if len(kept) == len(role.KeyPermission) {
			return nil, "", ErrPermissionNotGranted
		}
		st.roles[r.Role] = &authpb.Role{Name: role.Name, KeyPermission: kept}
		return &pb.AuthRoleRevokePermissionResponse{}, "", nil
	}
	return nil, "", fmt.Errorf("auth: unsupported request %v", req)
}

// persist writes what differs between st and the store's state to b.
func (st *state) persist(b storage.Batch, s *Store) error {
	enabled := []byte{0}
	if st.enabled {
		enabled[0] = 1
	}
	if err := b.Set(keyEnabled, enabled); err != nil {
		return err
	}
	var rev [8]byte
	binary.BigEndian.PutUint64(rev[:], st.rev)
	if err := b.Set(keyRevision, rev[:]); err != nil {
		return err
	}
	if err := persistMap(b, userPrefix, s.users, st.users); err != nil {
		return err
	}
	return persistMap(b, rolePrefix, s.roles, st.roles)
}

func persistMap[V proto.Message](b storage.Batch, prefix []byte, old, cur map[string]V) error {
	for name, v := range cur {
		if o, ok := old[name]; ok && proto.Message(o) == proto.Message(v) {
			continue
		}
		data, err := proto.Marshal(v)
		if err != nil {
			return err
		}
		if err := b.Set(append(slices.Clone(prefix), name...), data); err != nil {
			return err
		}
	}
	for name := range old {
		if _, ok := cur[name]; !ok {
			if err := b.Delete(append(slices.Clone(prefix), name...)); err != nil {
				return err
			}
		}
	}
	return nil
}

// install makes st the store's state, once its batch is committed.
func (s *Store) install(st *state) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wasEnabled := s.enabled
	s.enabled, s.rev, s.users, s.roles = st.enabled, st.rev, st.users, st.roles
	s.refreshPerms()
	switch {
	case st.enabled && !wasEnabled:
		s.opts.Tokens.enable()
	case !st.enabled && wasEnabled:
		s.opts.Tokens.disable()
	}
}

// applyAuthenticate issues a token for an Authenticate entry whose
// password the proposer has checked. A simple token is registered on
// every member that applies the entry, so it works on any of them.
func (s *Store) applyAuthenticate(index uint64, r *pb.InternalAuthenticateRequest) (any, func(), error) {
	if !s.enabled {
		return nil, nil, ErrAuthNotEnabled
	}
	u := s.users[r.Name]
	if u == nil || (u.Options != nil && u.Options.NoPassword) {
		return nil, nil, ErrAuthFailed
	}
	tok, err := s.opts.Tokens.assign(r.Name, s.rev, r.SimpleToken, index)
	if err != nil {
		return nil, nil, err
	}
	return &pb.AuthenticateResponse{Token: tok}, nil, nil
}
