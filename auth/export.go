package auth

import (
	"encoding/binary"

	"go.etcd.io/etcd/api/v3/authpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/storage"
)

// State is the whole auth state as snapshot formats other than the
// store's own carry it.
type State struct {
	Enabled  bool
	Revision uint64
	Users    []*authpb.User
	Roles    []*authpb.Role
}

// Export reads the auth state stored in r.
func Export(r storage.Reader) (*State, error) {
	s, err := Load(r, Options{})
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := &State{Enabled: s.enabled, Revision: s.rev}
	for _, name := range sortedKeys(s.users) {
		st.Users = append(st.Users, s.users[name])
	}
	for _, name := range sortedKeys(s.roles) {
		st.Roles = append(st.Roles, s.roles[name])
	}
	return st, nil
}

// Import writes st into an engine that no auth store has open (a data
// directory being built from a snapshot).
func Import(b storage.Batch, st *State) error {
	enabled := []byte{0}
	if st.Enabled {
		enabled = []byte{1}
	}
	if err := b.Set(keyEnabled, enabled); err != nil {
		return err
	}
	if err := b.Set(keyRevision, binary.BigEndian.AppendUint64(nil, st.Revision)); err != nil {
		return err
	}
	for _, u := range st.Users {
		data, err := proto.Marshal(u)
		if err != nil {
			return err
		}
		if err := b.Set(append(append([]byte(nil), userPrefix...), u.Name...), data); err != nil {
			return err
		}
	}
	for _, ro := range st.Roles {
		data, err := proto.Marshal(ro)
		if err != nil {
			return err
		}
		if err := b.Set(append(append([]byte(nil), rolePrefix...), ro.Name...), data); err != nil {
			return err
		}
	}
	return nil
}
