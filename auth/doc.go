// Package auth owns who may do what: etcd's users, roles and key
// permissions (RBAC), whether authentication is on, the auth revision that
// every change of them bumps, and the tokens that say which user a request
// comes from.
//
// Auth state changes only when the apply loop applies an Auth* entry
// (Store.Apply), inside that entry's engine batch, so every member holds
// the same users and roles at the same log index and a snapshot carries
// them. The permission checks of a write are made again when it is
// applied, against the state of that moment and the auth revision the
// request was authorised under, so a role revoked while a write is in
// flight takes effect before the write does (ErrAuthOldRevision).
//
// It never decides an order and never talks to the network. Passwords
// are hashed and checked (bcrypt) by the caller's goroutine, never on the
// apply loop, so a flood of Authenticate calls runs on every core and
// queues no write behind it. A password, a token or a password hash is
// never logged and never put in an error.
//
// Engine keys: "mauth/enabled", "mauth/rev", "mauth/user/" name -> an
// authpb.User, "mauth/role/" name -> an authpb.Role.
package auth
