package snapshot

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// etcd's bucket and key names (etcd 3.7's storage schema).
var (
	bucketKey            = []byte("key")
	bucketMeta           = []byte("meta")
	bucketLease          = []byte("lease")
	bucketAlarm          = []byte("alarm")
	bucketCluster        = []byte("cluster")
	bucketMembers        = []byte("members")
	bucketMembersRemoved = []byte("members_removed")
	bucketAuth           = []byte("auth")
	bucketAuthUsers      = []byte("authUsers")
	bucketAuthRoles      = []byte("authRoles")

	allBuckets = [][]byte{bucketKey, bucketMeta, bucketLease, bucketAlarm, bucketCluster,
		bucketMembers, bucketMembersRemoved, bucketAuth, bucketAuthUsers, bucketAuthRoles}

	metaConsistentIndex = []byte("consistent_index")
	metaTerm            = []byte("term")
	metaConfState       = []byte("confState")
	metaScheduled       = []byte("scheduledCompactRev")
	metaFinished        = []byte("finishedCompactRev")
	metaStorageVersion  = []byte("storageVersion")
	clusterVersionKey   = []byte("clusterVersion")
	authEnabledKey      = []byte("authEnabled")
	authRevisionKey     = []byte("authRevision")
)

// storageVersion is the etcd storage version Cairn's snapshots claim and
// the newest it reads.
const storageVersion = "3.7.0"

// revBytes is etcd's revision key: 8-byte main, '_', 8-byte sub, and a
// trailing 't' for a tombstone.
func revBytes(main, sub int64, tombstone bool) []byte {
	b := make([]byte, 0, 18)
	b = binary.BigEndian.AppendUint64(b, uint64(main))
	b = append(b, '_')
	b = binary.BigEndian.AppendUint64(b, uint64(sub))
	if tombstone {
		b = append(b, 't')
	}
	return b
}

func parseRevBytes(b []byte) (main, sub int64, tombstone bool, err error) {
	if (len(b) != 17 && len(b) != 18) || b[8] != '_' || (len(b) == 18 && b[17] != 't') {
		return 0, 0, false, fmt.Errorf("snapshot: malformed revision key %x in etcd's key bucket", b)
	}
	return int64(binary.BigEndian.Uint64(b[:8])), int64(binary.BigEndian.Uint64(b[9:17])), len(b) == 18, nil
}

// etcd's leasepb.Lease lives in etcd's server module, which Cairn does not
// import; its three fields are encoded with the protobuf library's wire
// helpers: ID = 1, TTL = 2, RemainingTTL = 3 (all int64).
func marshalLease(id, ttl, remaining int64) []byte {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		v   int64
	}{{1, id}, {2, ttl}, {3, remaining}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f.v))
		}
	}
	return b
}

func unmarshalLease(b []byte) (id, ttl, remaining int64, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, 0, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.VarintType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, 0, 0, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, 0, 0, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 1:
			id = int64(v)
		case 2:
			ttl = int64(v)
		case 3:
			remaining = int64(v)
		}
	}
	return id, ttl, remaining, nil
}

// etcdMember is a member as etcd stores it in its members bucket (field
// order as etcd's JSON).
type etcdMember struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// etcdConfState is raftpb.ConfState as etcd's meta bucket stores it.
type etcdConfState struct {
	Voters   []uint64 `json:"voters"`
	Learners []uint64 `json:"learners,omitempty"`
	// AutoLeave is always written, as etcd does.
	AutoLeave bool `json:"auto_leave"`
}
