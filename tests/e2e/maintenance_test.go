package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// versionAtLeast compares dotted versions such as "3.5.13".
func versionAtLeast(v, min string) bool {
	parse := func(s string) [3]int {
		var out [3]int
		for i, p := range strings.SplitN(strings.SplitN(s, "-", 2)[0], ".", 3) {
			out[i], _ = strconv.Atoi(p)
		}
		return out
	}
	a, b := parse(v), parse(min)
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

func TestStatus(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "k", "v")
	st, err := cli.Status(ctx, cli.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, st.Header, 2)
	if !versionAtLeast(st.Version, "3.5.13") {
		t.Errorf("version %q; want at least 3.5.13 (clients gate features on it)", st.Version)
	}
	if st.Leader != st.Header.MemberId {
		t.Errorf("leader %x; want this member, %x", st.Leader, st.Header.MemberId)
	}
	if st.RaftIndex == 0 || st.RaftTerm == 0 || st.RaftAppliedIndex == 0 || st.RaftAppliedIndex > st.RaftIndex {
		t.Errorf("raft index %d term %d applied %d", st.RaftIndex, st.RaftTerm, st.RaftAppliedIndex)
	}
	// etcdctl endpoint status shows it; etcd 3.7.3 reports 3.7.0.
	if st.StorageVersion != "3.7.0" {
		t.Errorf("storage version %q; want 3.7.0, as etcd 3.7.3 reports", st.StorageVersion)
	}
	if st.RaftTerm != st.Header.RaftTerm {
		t.Errorf("raft term %d; header says %d", st.RaftTerm, st.Header.RaftTerm)
	}
	if st.DbSize <= 0 || st.DbSizeInUse <= 0 || st.DbSizeInUse > st.DbSize {
		t.Errorf("db size %d in use %d", st.DbSize, st.DbSizeInUse)
	}
	if st.IsLearner || len(st.Errors) != 0 {
		t.Errorf("learner %v errors %q", st.IsLearner, st.Errors)
	}
	if st.DbSizeQuota != 2<<30 {
		t.Errorf("db size quota %d; want the 2 GiB default", st.DbSizeQuota)
	}

	// The raft index grows with each write.
	put(t, ctx, cli, "k", "v2")
	st2, err := cli.Status(ctx, cli.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	if st2.RaftIndex <= st.RaftIndex {
		t.Errorf("raft index %d after a write; was %d", st2.RaftIndex, st.RaftIndex)
	}
}

func TestHashStableAcrossRestart(t *testing.T) {
	m, cli, ctx := start(t)
	for i := range 50 {
		put(t, ctx, cli, fmt.Sprintf("h/%02d", i%10), fmt.Sprint(i))
	}
	if _, err := cli.Delete(ctx, "h/05"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, 20, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	ep := cli.Endpoints()[0]
	hkv, err := cli.HashKV(ctx, ep, 0)
	if err != nil {
		t.Fatal(err)
	}
	hkvAt, err := cli.HashKV(ctx, ep, 30)
	if err != nil {
		t.Fatal(err)
	}
	if hkv.HashRevision != 52 || hkv.CompactRevision != 20 || hkvAt.HashRevision != 30 {
		t.Fatalf("HashKV: revision %d compact %d; at 30: revision %d", hkv.HashRevision, hkv.CompactRevision, hkvAt.HashRevision)
	}
	again, err := cli.HashKV(ctx, ep, 0)
	if err != nil || again.Hash != hkv.Hash {
		t.Fatalf("HashKV changed without writes: %x then %x (%v)", hkv.Hash, again.Hash, err)
	}

	m.Restart()
	cli = m.Client(t)
	after, err := cli.HashKV(ctx, ep, 0)
	if err != nil {
		t.Fatal(err)
	}
	afterAt, err := cli.HashKV(ctx, ep, 30)
	if err != nil {
		t.Fatal(err)
	}
	if after.Hash != hkv.Hash || after.HashRevision != hkv.HashRevision || after.CompactRevision != hkv.CompactRevision || afterAt.Hash != hkvAt.Hash {
		t.Fatalf("HashKV across restart: %x@%d (compact %d) became %x@%d (compact %d); at 30 %x became %x",
			hkv.Hash, hkv.HashRevision, hkv.CompactRevision, after.Hash, after.HashRevision, after.CompactRevision, hkvAt.Hash, afterAt.Hash)
	}

	// A write changes the hash; the same write on identical history gives
	// the same hash (checked against a second member fed the same ops).
	put(t, ctx, cli, "h/new", "x")
	changed, err := cli.HashKV(ctx, ep, 0)
	if err != nil || changed.Hash == hkv.Hash {
		t.Fatalf("HashKV after a write: %x (was %x, %v)", changed.Hash, hkv.Hash, err)
	}
}

func TestHashKVMatchesOnSameHistory(t *testing.T) {
	_, cli1, ctx := start(t)
	// A second member of its own, fed the same writes.
	_, cli2, _ := startAnother(t)
	for _, cli := range []*clientv3.Client{cli1, cli2} {
		for i := range 20 {
			put(t, ctx, cli, fmt.Sprintf("k%d", i%7), fmt.Sprint(i))
		}
		if _, err := cli.Delete(ctx, "k3"); err != nil {
			t.Fatal(err)
		}
	}
	h1, err := cli1.HashKV(ctx, cli1.Endpoints()[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := cli2.HashKV(ctx, cli2.Endpoints()[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	if h1.Hash != h2.Hash || h1.HashRevision != h2.HashRevision {
		t.Fatalf("same history, different HashKV: %x@%d and %x@%d", h1.Hash, h1.HashRevision, h2.Hash, h2.HashRevision)
	}
}

func TestSnapshotEndsInSHA256(t *testing.T) {
	_, cli, ctx := start(t)
	for i := range 100 {
		put(t, ctx, cli, fmt.Sprintf("s/%03d", i), strings.Repeat("v", 1000))
	}
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 100*1000 {
		t.Fatalf("snapshot of %d bytes holds less than the 100 KB written", len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		t.Fatalf("snapshot of %d bytes does not end in the SHA-256 of the rest", len(data))
	}

	// The raw stream gives the same bytes, with etcd's version on each
	// message.
	s, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Snapshot(ctx, &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for {
		m, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		total += uint64(len(m.Blob))
		if m.Version == "" {
			t.Fatal("snapshot message without a version")
		}
	}
	if total != uint64(len(data)) {
		t.Fatalf("raw snapshot of %d bytes; the client's was %d", total, len(data))
	}
}

func TestDefragment(t *testing.T) {
	_, cli, ctx := start(t)
	for i := range 50 {
		put(t, ctx, cli, "k", strings.Repeat("x", 10000)+fmt.Sprint(i))
	}
	if _, err := cli.Compact(ctx, rev(t, ctx, cli), clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	// etcd's answer has no header; only success is checked.
	if _, err := cli.Defragment(ctx, cli.Endpoints()[0]); err != nil {
		t.Fatal(err)
	}
	if kv := get(t, ctx, cli, "k").Kvs[0]; kv.Version != 50 {
		t.Fatalf("after defragment: %s", kvString(kv))
	}
	st, err := cli.Status(ctx, cli.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.DbSizeInUse > st.DbSize {
		t.Fatalf("after defragment db size %d in use %d", st.DbSize, st.DbSizeInUse)
	}
}

// fillUntilNoSpace writes random 100 KiB values (no compression in the
// store shrinks them) under fill/ until a put fails or limit bytes are
// written, and returns how many puts succeeded and the error that stopped
// them (nil if none did).
func fillUntilNoSpace(t *testing.T, ctx context.Context, cli *clientv3.Client, limit int) (int, error) {
	t.Helper()
	raw := make([]byte, 100<<10)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	val := string(raw)
	for n := 0; n < limit/len(val); n++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("fill/%04d", n), val); err != nil {
			return n, err
		}
	}
	return limit / len(val), nil
}

func TestNoSpaceAlarmRaisedNearQuota(t *testing.T) {
	const quota = 4 << 20
	_, cli, ctx := start(t, fmt.Sprintf("--quota-backend-bytes=%d", quota))
	// etcd's bolt file passes a 4 MiB quota after about 6 MB of values;
	// allow three times the quota.
	n, err := fillUntilNoSpace(t, ctx, cli, 3*quota)
	st, serr := cli.Status(ctx, cli.Endpoints()[0])
	if serr != nil {
		t.Fatal(serr)
	}
	if err == nil {
		t.Fatalf("%d MiB of values with a %d MiB quota and no NOSPACE; status says db size %d, in use %d",
			n*100>>10, quota>>20, st.DbSize, st.DbSizeInUse)
	}
	wantErr(t, err, rpctypes.ErrGRPCNoSpace)
	// Like etcd, a write is refused when the size plus the write's cost
	// would pass the quota, so the size may sit one value below it.
	if st.DbSize < quota-2*100<<10 {
		t.Errorf("NOSPACE with db size %d well under the %d quota", st.DbSize, quota)
	}
}

func TestNoSpaceAlarmAndRecovery(t *testing.T) {
	const quota = 4 << 20
	_, cli, ctx := start(t, fmt.Sprintf("--quota-backend-bytes=%d", quota))
	ep := cli.Endpoints()[0]
	// How early NOSPACE comes is TestNoSpaceAlarmRaisedNearQuota's
	// business; here it only has to come.
	n, err := fillUntilNoSpace(t, ctx, cli, 128<<20)
	st, serr := cli.Status(ctx, ep)
	if serr != nil {
		t.Fatal(serr)
	}
	t.Logf("NOSPACE after %d puts of 100 KiB: db size %d, in use %d, quota %d", n, st.DbSize, st.DbSizeInUse, st.DbSizeQuota)
	if err == nil {
		t.Fatal("no NOSPACE after 128 MiB")
	}
	wantErr(t, err, rpctypes.ErrGRPCNoSpace)
	if st.DbSizeQuota != quota {
		t.Errorf("status quota %d; want %d", st.DbSizeQuota, quota)
	}
	alarms, aerr := cli.AlarmList(ctx)
	if aerr != nil {
		t.Fatal(aerr)
	}
	if len(alarms.Alarms) != 1 || alarms.Alarms[0].Alarm != pb.AlarmType_NOSPACE || alarms.Alarms[0].MemberID != st.Header.MemberId {
		t.Fatalf("alarms %v; want NOSPACE on member %x", alarms.Alarms, st.Header.MemberId)
	}
	if len(st.Errors) == 0 {
		t.Errorf("status shows no error while NOSPACE is raised")
	}

	// Every write that can grow the store is refused; reads and deletes work.
	_, err = cli.Put(ctx, "small", "x")
	wantErr(t, err, rpctypes.ErrGRPCNoSpace)
	_, err = cli.Txn(ctx).Then(clientv3.OpPut("small", "x")).Commit()
	wantErr(t, err, rpctypes.ErrGRPCNoSpace)
	_, err = cli.Grant(ctx, 60)
	wantErr(t, err, rpctypes.ErrGRPCNoSpace)
	get(t, ctx, cli, "fill/0000")
	d, derr := cli.Delete(ctx, "fill/", clientv3.WithPrefix())
	if derr != nil {
		t.Fatalf("delete under NOSPACE: %v", derr)
	}
	if d.Deleted != int64(n) {
		t.Fatalf("deleted %d keys; want %d", d.Deleted, n)
	}

	// etcd's recovery: compact, defragment, disarm; then writes succeed.
	if _, err := cli.Compact(ctx, d.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Defragment(ctx, ep); err != nil {
		t.Fatal(err)
	}
	st, serr = cli.Status(ctx, ep)
	if serr != nil {
		t.Fatal(serr)
	}
	t.Logf("after delete, compact and defragment: db size %d, in use %d", st.DbSize, st.DbSizeInUse)
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: alarms.Alarms[0].MemberID, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	if alarms, err := cli.AlarmList(ctx); err != nil || len(alarms.Alarms) != 0 {
		t.Fatalf("alarms after disarm: %v %v", alarms, err)
	}
	if _, err := cli.Put(ctx, "small", "x"); err != nil {
		t.Fatalf("put after recovering from NOSPACE: %v", err)
	}
}

// --enable-pprof serves Go's profiles on the client URL, as etcd does;
// without it they are not there.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	get := func(base string) int {
		resp, err := http.Get(base + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	on, _, _ := start(t, "--enable-pprof")
	if code := get(on.ClientURL); code != http.StatusOK {
		t.Fatalf("with --enable-pprof: /debug/pprof/cmdline answered %d", code)
	}
	off, _, _ := startAnother(t)
	if code := get(off.ClientURL); code != http.StatusNotFound {
		t.Fatalf("without --enable-pprof: /debug/pprof/cmdline answered %d", code)
	}
}

// --storage-cache-bytes (Cairn only) sizes the engine's block cache; a
// member started with it serves as usual.
func TestStorageCacheBytesFlag(t *testing.T) {
	_, cli, ctx := start(t, "--storage-cache-bytes=268435456")
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if resp, err := cli.Get(ctx, "k"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get after put: %v %v", resp, err)
	}
}
