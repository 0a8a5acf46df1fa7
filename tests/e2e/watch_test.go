package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// collect reads events from wc until it has n, failing on a response
// error, a closed channel or the timeout.
func collect(t *testing.T, wc clientv3.WatchChan, n int, timeout time.Duration) []*clientv3.Event {
	t.Helper()
	var evs []*clientv3.Event
	deadline := time.After(timeout)
	for len(evs) < n {
		select {
		case resp, ok := <-wc:
			if !ok {
				t.Fatalf("watch closed after %d of %d events", len(evs), n)
			}
			if err := resp.Err(); err != nil {
				t.Fatalf("watch failed after %d of %d events: %v", len(evs), n, err)
			}
			evs = append(evs, resp.Events...)
		case <-deadline:
			t.Fatalf("got %d of %d events within %v", len(evs), n, timeout)
		}
	}
	if len(evs) > n {
		t.Fatalf("got %d events; want %d", len(evs), n)
	}
	return evs
}

// noMore fails if wc delivers an event within d.
func noMore(t *testing.T, wc clientv3.WatchChan, d time.Duration) {
	t.Helper()
	select {
	case resp := <-wc:
		if len(resp.Events) > 0 {
			t.Fatalf("unexpected events %v", resp.Events)
		}
	case <-time.After(d):
	}
}

func TestWatchOrderedAndGapFreeUnderConcurrentWriters(t *testing.T) {
	_, cli, ctx := start(t)
	startRev := rev(t, ctx, cli) + 1
	wc := cli.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(startRev))
	// A second watcher on one key of the range sees only that key.
	one := cli.Watch(ctx, "w/3/", clientv3.WithPrefix(), clientv3.WithRev(startRev))

	const writers, each = 8, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := cli.Put(ctx, fmt.Sprintf("w/%d/%d", w, i), fmt.Sprint(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	evs := collect(t, wc, writers*each, 30*time.Second)
	wg.Wait()

	next := map[string]int{} // writer prefix -> next index it must show
	for i, ev := range evs {
		if want := startRev + int64(i); ev.Kv.ModRevision != want {
			t.Fatalf("event %d at revision %d; want %d (gap-free, in order)", i, ev.Kv.ModRevision, want)
		}
		if ev.Type != clientv3.EventTypePut || ev.Kv.Version != 1 || ev.Kv.CreateRevision != ev.Kv.ModRevision {
			t.Fatalf("event %d: %v %s", i, ev.Type, kvString(ev.Kv))
		}
		k := string(ev.Kv.Key)
		w := k[:strings.LastIndexByte(k, '/')]
		if want := fmt.Sprintf("%s/%d", w, next[w]); k != want {
			t.Fatalf("event %d is %s; want %s (each writer's puts in its order)", i, k, want)
		}
		next[w]++
	}
	for _, ev := range collect(t, one, each, 10*time.Second) {
		if !strings.HasPrefix(string(ev.Kv.Key), "w/3/") {
			t.Fatalf("watch on w/3/ got %s", ev.Kv.Key)
		}
	}
	noMore(t, one, 100*time.Millisecond)
}

func TestWatchReplaysFromPastRevision(t *testing.T) {
	_, cli, ctx := start(t)
	for i := range 30 {
		put(t, ctx, cli, fmt.Sprintf("r/%d", i%5), fmt.Sprint(i)) // 2..31
	}
	put(t, ctx, cli, "other", "x") // 32
	if _, err := cli.Delete(ctx, "r/0"); err != nil {
		t.Fatal(err) // 33
	}

	wc := cli.Watch(ctx, "r/", clientv3.WithPrefix(), clientv3.WithRev(10))
	evs := collect(t, wc, 23, 10*time.Second) // revisions 10..31, then the delete at 33
	for i, ev := range evs[:22] {
		if ev.Kv.ModRevision != int64(10+i) || string(ev.Kv.Value) != fmt.Sprint(8+i) {
			t.Fatalf("replayed event %d: %s; want value %d at %d", i, kvString(ev.Kv), 8+i, 10+i)
		}
	}
	if del := evs[22]; del.Type != clientv3.EventTypeDelete || string(del.Kv.Key) != "r/0" || del.Kv.ModRevision != 33 {
		t.Fatalf("last replayed event: %v %s; want delete of r/0 at 33", del.Type, kvString(del.Kv))
	}
	// Then the watch goes on live.
	put(t, ctx, cli, "r/9", "live")
	if ev := collect(t, wc, 1, 10*time.Second)[0]; string(ev.Kv.Value) != "live" || ev.Kv.ModRevision != 34 {
		t.Fatalf("live event after replay: %s", kvString(ev.Kv))
	}

	// Replayed events carry prev_kv from history too.
	pk := collect(t, cli.Watch(ctx, "r/1", clientv3.WithRev(12), clientv3.WithPrevKV()), 4, 10*time.Second)
	for i, ev := range pk {
		// r/1 was written at 3, 8, 13, 18, 23, 28 with values 1, 6, 11, ...
		want, prev := fmt.Sprint(11+5*i), fmt.Sprint(6+5*i)
		if string(ev.Kv.Value) != want || ev.PrevKv == nil || string(ev.PrevKv.Value) != prev || ev.PrevKv.ModRevision != ev.Kv.ModRevision-5 {
			t.Fatalf("replayed event %d with prev_kv: %s prev %s; want %s after %s", i, kvString(ev.Kv), kvString(ev.PrevKv), want, prev)
		}
	}

	// A watch from revision 1 replays all of history.
	all := collect(t, cli.Watch(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(1)), 33, 10*time.Second)
	if all[0].Kv.ModRevision != 2 || all[32].Kv.ModRevision != 34 {
		t.Fatalf("full replay from %d to %d; want 2 to 34", all[0].Kv.ModRevision, all[32].Kv.ModRevision)
	}
}

func TestWatchPrevKVAndEventShapes(t *testing.T) {
	_, cli, ctx := start(t)
	put(t, ctx, cli, "k", "v1") // 2
	wc := cli.Watch(ctx, "k", clientv3.WithPrevKV())
	plain := cli.Watch(ctx, "k")
	put(t, ctx, cli, "k", "v2") // 3
	if _, err := cli.Delete(ctx, "k"); err != nil {
		t.Fatal(err) // 4
	}
	put(t, ctx, cli, "k", "v3") // 5

	evs := collect(t, wc, 3, 10*time.Second)
	upd, del, create := evs[0], evs[1], evs[2]
	if upd.Type != clientv3.EventTypePut || string(upd.Kv.Value) != "v2" || upd.PrevKv == nil || string(upd.PrevKv.Value) != "v1" ||
		upd.Kv.Version != 2 || upd.PrevKv.ModRevision != 2 || !upd.IsModify() {
		t.Errorf("update event: %s prev %s", kvString(upd.Kv), kvString(upd.PrevKv))
	}
	// A delete event carries the key and the deletion's revision only.
	if del.Type != clientv3.EventTypeDelete || string(del.Kv.Key) != "k" || del.Kv.ModRevision != 4 ||
		del.Kv.CreateRevision != 0 || del.Kv.Version != 0 || len(del.Kv.Value) != 0 {
		t.Errorf("delete event: %v %s", del.Type, kvString(del.Kv))
	}
	if del.PrevKv == nil || string(del.PrevKv.Value) != "v2" || del.PrevKv.ModRevision != 3 {
		t.Errorf("delete event prev_kv: %s; want v2 at 3", kvString(del.PrevKv))
	}
	if !create.IsCreate() || create.PrevKv != nil || create.Kv.CreateRevision != 5 || create.Kv.Version != 1 {
		t.Errorf("re-create event: %s prev %s", kvString(create.Kv), kvString(create.PrevKv))
	}
	for _, ev := range collect(t, plain, 3, 10*time.Second) {
		if ev.PrevKv != nil {
			t.Errorf("prev_kv on a watch that did not ask: %s", kvString(ev.PrevKv))
		}
	}
}

func TestWatchFilters(t *testing.T) {
	_, cli, ctx := start(t)
	noPut := cli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithFilterPut())
	noDel := cli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithFilterDelete())
	put(t, ctx, cli, "f/a", "1") // 2
	put(t, ctx, cli, "f/b", "1") // 3
	if _, err := cli.Delete(ctx, "f/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err) // 4: two delete events
	}
	put(t, ctx, cli, "f/c", "1") // 5

	dels := collect(t, noPut, 2, 10*time.Second)
	for _, ev := range dels {
		if ev.Type != clientv3.EventTypeDelete || ev.Kv.ModRevision != 4 {
			t.Errorf("NOPUT watch got %v at %d", ev.Type, ev.Kv.ModRevision)
		}
	}
	puts := collect(t, noDel, 3, 10*time.Second)
	for i, ev := range puts {
		if ev.Type != clientv3.EventTypePut || ev.Kv.ModRevision != []int64{2, 3, 5}[i] {
			t.Errorf("NODELETE watch got %v at %d", ev.Type, ev.Kv.ModRevision)
		}
	}
	noMore(t, noPut, 100*time.Millisecond)
}

func TestWatchFromCompactedRevision(t *testing.T) {
	_, cli, ctx := start(t)
	for i := range 6 {
		put(t, ctx, cli, "k", fmt.Sprint(i)) // 2..7
	}
	if _, err := cli.Compact(ctx, 5); err != nil {
		t.Fatal(err)
	}

	wc := cli.Watch(ctx, "k", clientv3.WithRev(3))
	select {
	case resp, ok := <-wc:
		if !ok {
			t.Fatal("watch closed without a response")
		}
		if resp.CompactRevision != 5 || !resp.Canceled || len(resp.Events) != 0 {
			t.Fatalf("watch from 3 after compacting at 5: compact revision %d canceled %v events %d", resp.CompactRevision, resp.Canceled, len(resp.Events))
		}
		if !errors.Is(resp.Err(), rpctypes.ErrCompacted) {
			t.Fatalf("Err() = %v; want %v", resp.Err(), rpctypes.ErrCompacted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no response to a watch from a compacted revision")
	}
	select {
	case resp, ok := <-wc:
		if ok {
			t.Fatalf("canceled watch delivered more: %+v", resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("canceled watch channel stayed open")
	}

	// From the compaction revision itself the history is still there.
	evs := collect(t, cli.Watch(ctx, "k", clientv3.WithRev(5)), 3, 10*time.Second)
	if evs[0].Kv.ModRevision != 5 || string(evs[0].Kv.Value) != "3" {
		t.Fatalf("watch from the compaction revision starts at %s", kvString(evs[0].Kv))
	}
}

func TestWatchRequestProgress(t *testing.T) {
	_, cli, ctx := start(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wc := cli.Watch(wctx, "quiet")
	put(t, ctx, cli, "elsewhere", "1")
	put(t, ctx, cli, "elsewhere", "2")
	head := rev(t, ctx, cli)

	// The watcher may need a moment to be created on the stream.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := cli.RequestProgress(wctx); err != nil {
			t.Fatal(err)
		}
		select {
		case resp := <-wc:
			if !resp.IsProgressNotify() {
				t.Fatalf("want a progress notification; got %+v", resp)
			}
			if resp.Header.Revision != head {
				t.Fatalf("progress notification at revision %d; want %d", resp.Header.Revision, head)
			}
			checkHeader(t, resp.Header, head)
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress notification")
		}
	}
}

func TestWatchProgressNotifyInterval(t *testing.T) {
	m, cli, ctx := start(t, "--watch-progress-notify-interval=300ms")
	if logs := m.Logs(); strings.Contains(logs, `"flag":"watch-progress-notify-interval"`) && strings.Contains(logs, "not implemented") {
		t.Skip("Cairn ignores --watch-progress-notify-interval, so progress_notify comes only every 10 minutes")
	}
	put(t, ctx, cli, "other", "x")
	head := rev(t, ctx, cli)
	wc := cli.Watch(ctx, "quiet", clientv3.WithProgressNotify())
	select {
	case resp := <-wc:
		if !resp.IsProgressNotify() || resp.Header.Revision != head {
			t.Fatalf("want a progress notification at %d; got %+v", head, resp)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no progress notification within 5s at a 300ms interval")
	}
}

// rawWatch opens a Watch stream with the gRPC client itself: nothing reads
// it in the background, and every response can be seen.
func rawWatch(t *testing.T, ctx context.Context, cli *clientv3.Client) pb.Watch_WatchClient {
	t.Helper()
	// Like clientv3, accept responses of any size: a watcher catching up
	// may get many revisions in one response.
	ws, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx, grpc.MaxCallRecvMsgSize(math.MaxInt32))
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func createWatch(t *testing.T, ws pb.Watch_WatchClient, req *pb.WatchCreateRequest) int64 {
	t.Helper()
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: req}}); err != nil {
		t.Fatal(err)
	}
	resp, err := ws.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Created || resp.Canceled {
		t.Fatalf("create response %+v", resp)
	}
	return resp.WatchId
}

func TestManyWatchesOnOneStream(t *testing.T) {
	_, cli, ctx := start(t)
	ws := rawWatch(t, ctx, cli)
	const n = 200
	keyOf := map[int64]string{}
	for i := range n {
		k := fmt.Sprintf("m/%03d", i)
		id := createWatch(t, ws, &pb.WatchCreateRequest{Key: []byte(k)})
		if _, dup := keyOf[id]; dup {
			t.Fatalf("watch id %d given twice", id)
		}
		keyOf[id] = k
	}
	// One txn writes every key: each watcher gets its own key's event.
	var ops []clientv3.Op
	for i := range n {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("m/%03d", i), "v"))
	}
	if _, err := cli.Txn(ctx).Then(ops[:100]...).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Txn(ctx).Then(ops[100:]...).Commit(); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for len(seen) < n {
		resp, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Events) != 1 || string(resp.Events[0].Kv.Key) != keyOf[resp.WatchId] || seen[resp.WatchId] {
			t.Fatalf("watch %d (%s) got %v (seen before: %v)", resp.WatchId, keyOf[resp.WatchId], resp.Events, seen[resp.WatchId])
		}
		seen[resp.WatchId] = true
	}

	// Cancel every even watch; once canceled, it sees nothing more, and
	// the rest still see their keys.
	canceled := map[int64]bool{}
	for id := range keyOf {
		if id%2 == 0 {
			canceled[id] = true
			if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for acks := 0; acks < len(canceled); acks++ {
		resp, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Canceled || !canceled[resp.WatchId] {
			t.Fatalf("after %d cancel acks: %+v", acks, resp)
		}
	}
	if _, err := cli.Txn(ctx).Then(ops[:100]...).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Txn(ctx).Then(ops[100:]...).Commit(); err != nil {
		t.Fatal(err)
	}
	for events := 0; events < n-len(canceled); events++ {
		resp, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if canceled[resp.WatchId] || len(resp.Events) != 1 || string(resp.Events[0].Kv.Key) != keyOf[resp.WatchId] {
			t.Fatalf("after cancelling half: watch %d (canceled: %v) got %+v", resp.WatchId, canceled[resp.WatchId], resp)
		}
	}
}

func TestWatchSlowConsumerDoesNotBlockWritersOrLoseEvents(t *testing.T) {
	m, cli, ctx := start(t)
	ws := slowWatchStream(t, ctx, m)
	startRev := rev(t, ctx, cli) + 1
	createWatch(t, ws, &pb.WatchCreateRequest{Key: []byte("slow/"), RangeEnd: []byte("slow0"), StartRevision: startRev})

	// 12,000 events of 1 KiB: far more than the stream's flow-control
	// window and any server-side buffer, written while nothing reads the
	// watch. Half come one put per revision, half 100 puts per txn.
	const writers, putsEach, txns = 8, 750, 60
	val := strings.Repeat("v", 1024)
	written := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		errs := make(chan error, writers+1)
		for w := range writers {
			wg.Go(func() {
				for i := range putsEach {
					if _, err := cli.Put(ctx, fmt.Sprintf("slow/p%d/%04d", w, i), val); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Go(func() {
			for i := range txns {
				var ops []clientv3.Op
				for j := range 100 {
					ops = append(ops, clientv3.OpPut(fmt.Sprintf("slow/t%03d/%03d", i, j), val))
				}
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Wait()
		close(errs)
		written <- <-errs
	}()
	const total = writers*putsEach + txns*100
	select {
	case err := <-written:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("writers did not finish within 45s while a watch was not read: a slow watcher blocks writes")
	}
	head := rev(t, ctx, cli)

	// Now read: every event, in revision order, none twice.
	got := 0
	next := startRev // the revision whose events come next
	perRev := map[int64]int{}
	for got < total {
		resp, err := ws.Recv()
		if err != nil {
			t.Fatalf("after %d of %d events: %v", got, total, err)
		}
		if resp.Canceled || resp.CompactRevision != 0 {
			t.Fatalf("slow watch canceled after %d events: %+v", got, resp)
		}
		for _, ev := range resp.Events {
			switch r := ev.Kv.ModRevision; r {
			case next:
				next++
			case next - 1: // another event of the same txn
			default:
				t.Fatalf("event %d at revision %d; want %d or %d: out of order or a gap", got, r, next-1, next)
			}
			perRev[ev.Kv.ModRevision]++
			got++
		}
	}
	if next-1 != head {
		t.Fatalf("last event at %d; head is %d", next-1, head)
	}
	for r := startRev; r <= head; r++ {
		if perRev[r] != 1 && perRev[r] != 100 {
			t.Fatalf("revision %d delivered %d events; want 1 (a put) or 100 (a txn)", r, perRev[r])
		}
	}
}

func TestWatchFragmentsLargeResponse(t *testing.T) {
	// etcd splits a response for a watcher that asked for fragments once
	// it passes --max-request-bytes plus the 512 KiB gRPC allowance.
	const maxRequestBytes = 10000
	const limit = maxRequestBytes + 512*1024
	_, cli, ctx := start(t, fmt.Sprintf("--max-request-bytes=%d", maxRequestBytes))
	const n, size = 100, 8000
	val := strings.Repeat("x", size)
	for i := range n {
		put(t, ctx, cli, fmt.Sprintf("frag/%03d", i), val)
	}

	// One small delete request makes one 800 KB response: each of its
	// events carries the deleted key's value as prev_kv.
	fragWS := rawWatch(t, ctx, cli)
	createWatch(t, fragWS, &pb.WatchCreateRequest{Key: []byte("frag/"), RangeEnd: []byte("frag0"), PrevKv: true, Fragment: true})
	wholeWS := rawWatch(t, ctx, cli)
	createWatch(t, wholeWS, &pb.WatchCreateRequest{Key: []byte("frag/"), RangeEnd: []byte("frag0"), PrevKv: true})
	wc := cli.Watch(ctx, "frag/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithFragment())

	resp, err := cli.Delete(ctx, "frag/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	delRev := resp.Header.Revision

	var parts []*pb.WatchResponse
	for {
		r, err := fragWS.Recv()
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, r)
		if !r.Fragment {
			break
		}
	}
	if len(parts) < 2 {
		t.Fatalf("an 800 KB response came in %d message(s) with fragment on; want it split", len(parts))
	}
	var evs []*mvccpb.Event
	for i, p := range parts {
		sz := proto.Size(p)
		if sz >= limit && len(p.Events) > 1 {
			t.Errorf("fragment %d of %d bytes, %d events, is over the %d-byte limit", i, sz, len(p.Events), limit)
		}
		// Each fragment but the last is filled up to the limit.
		if i < len(parts)-1 && sz < limit-2*(size+100) {
			t.Fatalf("fragment %d of %d: %d bytes, %d events; want about %d (--max-request-bytes + 512 KiB)", i, len(parts), sz, len(p.Events), limit)
		}
		if p.Header.Revision != delRev || p.WatchId != parts[0].WatchId {
			t.Errorf("fragment %d: header revision %d watch %d", i, p.Header.Revision, p.WatchId)
		}
		evs = append(evs, p.Events...)
	}
	checkFragEvents(t, "fragments", evs, n, delRev)

	whole, err := wholeWS.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if whole.Fragment {
		t.Fatal("fragment flag on a watch that did not ask for fragments")
	}
	checkFragEvents(t, "unfragmented", whole.Events, n, delRev)

	// The client puts the fragments back together into one response.
	select {
	case r := <-wc:
		checkFragEvents(t, "clientv3", eventsOf(r), n, delRev)
	case <-time.After(10 * time.Second):
		t.Fatal("no response on the clientv3 watch")
	}
}

func eventsOf(r clientv3.WatchResponse) []*mvccpb.Event {
	out := make([]*mvccpb.Event, len(r.Events))
	for i, ev := range r.Events {
		out[i] = (*mvccpb.Event)(ev)
	}
	return out
}

func checkFragEvents(t *testing.T, what string, evs []*mvccpb.Event, n int, rev int64) {
	t.Helper()
	if len(evs) != n {
		t.Fatalf("%s: %d events; want %d", what, len(evs), n)
	}
	for i, ev := range evs {
		if want := fmt.Sprintf("frag/%03d", i); string(ev.Kv.Key) != want || ev.Kv.ModRevision != rev || ev.PrevKv == nil {
			t.Fatalf("%s: event %d is %s prev %s; want %s at %d with prev_kv", what, i, kvString(ev.Kv), kvString(ev.PrevKv), want, rev)
		}
	}
}

func TestWatchResumesAcrossRestart(t *testing.T) {
	m, cli, ctx := start(t)
	wc := cli.Watch(ctx, "rs/", clientv3.WithPrefix(), clientv3.WithRev(2))
	for i := range 50 {
		put(t, ctx, cli, fmt.Sprintf("rs/%03d", i), "v") // 2..51
	}
	first := collect(t, wc, 50, 10*time.Second)

	// The client's watch reconnects after a crash and resumes after the
	// last revision it saw: nothing lost, nothing repeated.
	m.Kill()
	m.Start()
	wcli := m.Client(t)
	for i := 50; i < 100; i++ {
		put(t, ctx, wcli, fmt.Sprintf("rs/%03d", i), "v") // 52..101
	}
	evs := append(first, collect(t, wc, 50, 30*time.Second)...)
	for i, ev := range evs {
		if ev.Kv.ModRevision != int64(2+i) || string(ev.Kv.Key) != fmt.Sprintf("rs/%03d", i) {
			t.Fatalf("event %d: %s; want rs/%03d at %d", i, kvString(ev.Kv), i, 2+i)
		}
	}
	noMore(t, wc, 100*time.Millisecond)
}

func TestWatchFromFutureRevisionWaits(t *testing.T) {
	_, cli, ctx := start(t)
	head := rev(t, ctx, cli)
	wc := cli.Watch(ctx, "fut", clientv3.WithRev(head+5))
	for i := range 8 {
		put(t, ctx, cli, "fut", fmt.Sprint(i)) // head+1 .. head+8
	}
	evs := collect(t, wc, 4, 10*time.Second)
	for i, ev := range evs {
		if ev.Kv.ModRevision != head+5+int64(i) {
			t.Fatalf("event %d at %d; want %d: a watch from a future revision starts there", i, ev.Kv.ModRevision, head+5+int64(i))
		}
	}
}

// A watcher that falls behind while the history it still needs is
// compacted away must be told so (compact_revision, then canceled), never
// skip the compacted events silently.
func TestWatchSlowConsumerCompactedUnderneath(t *testing.T) {
	m, cli, ctx := start(t)
	ws := slowWatchStream(t, ctx, m)
	startRev := rev(t, ctx, cli) + 1
	createWatch(t, ws, &pb.WatchCreateRequest{Key: []byte("c/"), RangeEnd: []byte("c0"), StartRevision: startRev})

	val := strings.Repeat("v", 1024)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 250 {
				if _, err := cli.Put(ctx, fmt.Sprintf("c/%d/%03d", w, i), val); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	head := rev(t, ctx, cli)
	if _, err := cli.Compact(ctx, head, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	put(t, ctx, cli, "c/after", "v") // head+1

	next := startRev
	for {
		resp, err := ws.Recv()
		if err != nil {
			t.Fatalf("after events up to %d: %v", next-1, err)
		}
		if resp.CompactRevision != 0 {
			// Told of the compaction: fine, if nothing was skipped first.
			if !resp.Canceled || resp.CompactRevision != head {
				t.Fatalf("compacted response %+v; want canceled with compact revision %d", resp, head)
			}
			if next > head {
				t.Fatalf("told of compaction at %d after receiving every event up to %d", head, next-1)
			}
			return
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision != next {
				t.Fatalf("event at revision %d; want %d: events skipped without a compaction notice", ev.Kv.ModRevision, next)
			}
			next++
		}
		if next == head+2 {
			return // every event arrived, the one after the compaction too
		}
	}
}

// slowWatchStream opens a Watch stream on a connection of its own with
// gRPC's smallest flow-control windows (which also turns off their
// growth): once 64 KiB are unread, the server cannot send more on it, so
// a test that stops reading makes a slow consumer.
func slowWatchStream(t *testing.T, ctx context.Context, m *testcluster.Member) pb.Watch_WatchClient {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(m.Endpoint(), "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ws, err := pb.NewWatchClient(conn).Watch(ctx, grpc.MaxCallRecvMsgSize(math.MaxInt32))
	if err != nil {
		t.Fatal(err)
	}
	return ws
}
