package apply

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/storage"
)

// Alarms is the replicated set of raised alarms (NOSPACE, CORRUPT), kept
// in the engine under 'm' "alarm" memberID(8) type(4) so they survive a
// restart, and in memory for the checks on every write.
type Alarms struct {
	mu  sync.RWMutex
	set map[alarmKey]struct{}
	// raised has bit 1<<type set while any member has an alarm of that
	// type: every request checks it, without taking mu.
	raised atomic.Uint32
}

type alarmKey struct {
	member uint64
	typ    pb.AlarmType
}

var alarmPrefix = []byte("malarm/")

func alarmEngineKey(k alarmKey) []byte {
	b := append([]byte(nil), alarmPrefix...)
	b = binary.BigEndian.AppendUint64(b, k.member)
	return binary.BigEndian.AppendUint32(b, uint32(k.typ))
}

// LoadAlarms reads the raised alarms from r.
func LoadAlarms(r storage.Reader) (*Alarms, error) {
	a := &Alarms{}
	return a, a.Reload(r)
}

// Reload replaces the alarm set with the one stored in r.
func (a *Alarms) Reload(r storage.Reader) error {
	set := map[alarmKey]struct{}{}
	upper := append([]byte(nil), alarmPrefix...)
	upper[len(upper)-1]++
	it, err := r.NewIter(alarmPrefix, upper)
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[len(alarmPrefix):]
		if len(k) != 12 {
			return fmt.Errorf("apply: malformed alarm key %x", it.Key())
		}
		set[alarmKey{binary.BigEndian.Uint64(k), pb.AlarmType(binary.BigEndian.Uint32(k[8:]))}] = struct{}{}
	}
	if err := it.Error(); err != nil {
		return err
	}
	a.mu.Lock()
	a.set = set
	a.updateRaised()
	a.mu.Unlock()
	return nil
}

// NoSpace reports whether a NOSPACE alarm is raised.
func (a *Alarms) NoSpace() bool { return a.has(pb.AlarmType_NOSPACE) }

// Corrupt reports whether a CORRUPT alarm is raised.
func (a *Alarms) Corrupt() bool { return a.has(pb.AlarmType_CORRUPT) }

func (a *Alarms) has(t pb.AlarmType) bool {
	return t >= 0 && t < 32 && a.raised.Load()&(1<<uint(t)) != 0
}

// updateRaised recomputes raised; a.mu must be held for writing.
func (a *Alarms) updateRaised() {
	var bits uint32
	for k := range a.set {
		if k.typ >= 0 && k.typ < 32 {
			bits |= 1 << uint(k.typ)
		}
	}
	a.raised.Store(bits)
}

// List returns the raised alarms, optionally only those of member (0: all)
// and type (NONE: all).
func (a *Alarms) List(member uint64, typ pb.AlarmType) []*pb.AlarmMember {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []*pb.AlarmMember
	for k := range a.set {
		if (member == 0 || k.member == member) && (typ == pb.AlarmType_NONE || k.typ == typ) {
			out = append(out, &pb.AlarmMember{MemberID: k.member, Alarm: k.typ})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].MemberID != out[j].MemberID {
			return out[i].MemberID < out[j].MemberID
		}
		return out[i].Alarm < out[j].Alarm
	})
	return out
}

// apply raises or clears an alarm, as etcd: the response lists the alarms
// changed (for ACTIVATE/DEACTIVATE) or matching (for GET).
func (a *Alarms) apply(b storage.Batch, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp := &pb.AlarmResponse{}
	switch r.Action {
	case pb.AlarmRequest_GET:
		resp.Alarms = a.List(r.MemberID, r.Alarm)
	case pb.AlarmRequest_ACTIVATE:
		if r.Alarm == pb.AlarmType_NONE {
			return resp, nil
		}
		k := alarmKey{r.MemberID, r.Alarm}
		if err := b.Set(alarmEngineKey(k), nil); err != nil {
			return nil, err
		}
		a.mu.Lock()
		a.set[k] = struct{}{}
		a.updateRaised()
		a.mu.Unlock()
		resp.Alarms = []*pb.AlarmMember{{MemberID: r.MemberID, Alarm: r.Alarm}}
	case pb.AlarmRequest_DEACTIVATE:
		var keys []alarmKey
		a.mu.RLock()
		for k := range a.set {
			if k.member == r.MemberID && (r.Alarm == pb.AlarmType_NONE || k.typ == r.Alarm) {
				keys = append(keys, k)
			}
		}
		a.mu.RUnlock()
		for _, k := range keys {
			if err := b.Delete(alarmEngineKey(k)); err != nil {
				return nil, err
			}
			a.mu.Lock()
			delete(a.set, k)
			a.updateRaised()
			a.mu.Unlock()
			resp.Alarms = append(resp.Alarms, &pb.AlarmMember{MemberID: k.member, Alarm: k.typ})
		}
	}
	return resp, nil
}
