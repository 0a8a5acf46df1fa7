package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/api/v3electionpb"
)

// electionName is the election every campaigner runs for and the
// observer follows; its keys are under electionPrefix.
var electionName = strings.TrimSuffix(electionPrefix, "/") // Campaign adds the slash

// leaderView is what the server said the election's leader was: its key
// and the key's create and mod revisions and value, at revision Rev
// (the answer's header).
type leaderView struct {
	Key          string
	Create, Mod  int64
	Value        string
	Rev          int64
	Stream, Resp int // for an Observe answer: which stream, and which of its responses
}

func viewOf(hdrRev int64, kv *mvccpb.KeyValue) leaderView {
	return leaderView{Key: string(kv.Key), Create: kv.CreateRevision, Mod: kv.ModRevision, Value: string(kv.Value), Rev: hdrRev}
}

func (v leaderView) String() string {
	return fmt.Sprintf("%s=%q (created at %d, put at %d) at revision %d", v.Key, v.Value, v.Create, v.Mod, v.Rev)
}

// win is one Campaign that answered: the client believed it led from
// then until it resigned or its lease ran out. A Campaign's answer
// carries the leader key and its create revision, but a header from
// when the candidate put its key, not from when it won; so the client
// asks Leader right after, and when that names its own key it has a
// revision at which the server vouched for its leadership (Leader.Rev),
// as a Mutex client has with its read. A Campaign that failed or timed
// out is no win; the server resigns it, and if it could not, the next
// Campaign on the same lease takes the key over.
type win struct {
	Client int
	Key    string
	Lease  clientv3.LeaseID
	Create int64 // the answer's Leader.Rev
	// Leader is the Leader answer right after (zero Rev: none).
	Leader leaderView
	// Resign is the revision an acknowledged Resign answered with (0:
	// none).
	Resign int64
}

func (w win) who() string {
	return fmt.Sprintf("client %d (key %s created at %d, lease %x)", w.Client, w.Key, w.Create, w.Lease)
}

// proclaim is one Proclaim a leader sent; Rev is the revision it was
// acknowledged with (0: it was not).
type proclaim struct {
	Client int
	Key    string
	Create int64
	Value  string
	Rev    int64
}

// electionLog is what the election clients did and saw.
type electionLog struct {
	Wins      []win
	Proclaims []proclaim
	// Leaders are the Leader answers, Observed the Observe responses.
	Leaders  []leaderView
	Observed []leaderView
	// SentFor maps each value a campaigner sent, by Campaign or
	// Proclaim, to the key it sent it for.
	SentFor map[string]string
}

// campaigner campaigns for the election in a loop on a lease it keeps
// alive: once it wins it asks Leader, proclaims a value or two, and
// resigns.
type campaigner struct {
	id  int
	cli *clientv3.Client
	ec  v3electionpb.ElectionClient
	rng *rand.Rand
	seq int

	mu        sync.Mutex
	wins      []win
	proclaims []proclaim
	leaders   []leaderView
	sentFor   map[string]string
}

func newCampaigner(id int, cli *clientv3.Client) *campaigner {
	return &campaigner{id: id, cli: cli, ec: v3electionpb.NewElectionClient(cli.ActiveConnection()),
		rng: rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano()))), sentFor: make(map[string]string)}
}

func (c *campaigner) run(ctx context.Context) { runHolder(ctx, c.cli, lockTTL, c.once) }

// value is a new value, unique over the run, sent for key; it is noted
// before it is sent, as a request that times out may still take effect.
func (c *campaigner) value(key string) string {
	c.seq++
	v := fmt.Sprintf("e%d-%d", c.id, c.seq)
	c.mu.Lock()
	c.sentFor[v] = key
	c.mu.Unlock()
	return v
}

func (c *campaigner) once(ctx context.Context, lease clientv3.LeaseID) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := c.ec.Campaign(cctx, &v3electionpb.CampaignRequest{Name: []byte(electionName), Lease: int64(lease), Value: []byte(c.value(keyOf(electionPrefix, lease)))})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			sleepCtx(ctx, 50*time.Millisecond)
		}
		return
	}
	lk := resp.Leader
	w := win{Client: c.id, Key: string(lk.Key), Lease: lease, Create: lk.Rev}
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	lr, err := c.ec.Leader(rctx, &v3electionpb.LeaderRequest{Name: []byte(electionName)})
	cancel()
	c.mu.Lock()
	if err == nil && lr.Kv != nil {
		w.Leader = viewOf(lr.Header.Revision, lr.Kv)
		c.leaders = append(c.leaders, w.Leader)
	}
	c.wins = append(c.wins, w)
	wi := len(c.wins) - 1
	c.mu.Unlock()

	for range 1 + c.rng.IntN(2) {
		sleepCtx(ctx, time.Duration(c.rng.IntN(100))*time.Millisecond)
		if ctx.Err() != nil {
			break
		}
		p := proclaim{Client: c.id, Key: w.Key, Create: w.Create, Value: c.value(w.Key)}
		pctx, cancel := context.WithTimeout(ctx, opTimeout)
		pr, err := c.ec.Proclaim(pctx, &v3electionpb.ProclaimRequest{Leader: lk, Value: []byte(p.Value)})
		cancel()
		if err == nil {
			p.Rev = pr.Header.Revision
		}
		c.mu.Lock()
		c.proclaims = append(c.proclaims, p)
		c.mu.Unlock()
	}
	sleepCtx(ctx, time.Duration(c.rng.IntN(100))*time.Millisecond)
	// Resign even once the load has stopped, as the lock clients unlock.
	rctx, cancel = context.WithTimeout(context.Background(), opTimeout)
	rr, err := c.ec.Resign(rctx, &v3electionpb.ResignRequest{Leader: lk})
	cancel()
	if err == nil {
		c.mu.Lock()
		c.wins[wi].Resign = rr.Header.Revision
		c.mu.Unlock()
	}
}

// observer follows the election with one Observe stream at a time,
// opening another when one ends.
type observer struct {
	ec v3electionpb.ElectionClient

	mu       sync.Mutex
	observed []leaderView
	streams  int
}

func newObserver(cli *clientv3.Client) *observer {
	return &observer{ec: v3electionpb.NewElectionClient(cli.ActiveConnection())}
}

func (o *observer) run(ctx context.Context) {
	for ctx.Err() == nil {
		o.stream(ctx)
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

func (o *observer) stream(ctx context.Context) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o.mu.Lock()
	o.streams++
	si := o.streams
	o.mu.Unlock()
	st, err := o.ec.Observe(sctx, &v3electionpb.LeaderRequest{Name: []byte(electionName)})
	if err != nil {
		return
	}
	for n := 0; ; n++ {
		resp, err := st.Recv()
		if err != nil {
			return
		}
		if resp.Kv == nil {
			continue
		}
		v := viewOf(resp.Header.Revision, resp.Kv)
		v.Stream, v.Resp = si, n
		o.mu.Lock()
		o.observed = append(o.observed, v)
		o.mu.Unlock()
	}
}

// electionRecords gathers what every election client did.
func electionRecords(cs []*campaigner, o *observer) electionLog {
	l := electionLog{SentFor: make(map[string]string)}
	for _, c := range cs {
		c.mu.Lock()
		l.Wins = append(l.Wins, c.wins...)
		l.Proclaims = append(l.Proclaims, c.proclaims...)
		l.Leaders = append(l.Leaders, c.leaders...)
		for v, k := range c.sentFor {
			l.SentFor[v] = k
		}
		c.mu.Unlock()
	}
	o.mu.Lock()
	l.Observed = append(l.Observed, o.observed...)
	o.mu.Unlock()
	return l
}

// checkElections checks what the election clients saw against the
// lives of the election's keys in the watch history, where the leader
// at each revision is the oldest key under electionPrefix:
//
//   - a Campaign answered a leader key the history holds, named as etcd
//     names it after the lease; if the key still existed at the Leader
//     answer right after, it led then (it did not win out of turn);
//   - every Leader answer names the leader at its revision, with the
//     value and mod revision the key had then;
//   - an acknowledged Proclaim put its value at its revision, while its
//     key led;
//   - an acknowledged Resign deleted the key at its revision or before;
//   - no two wins overlap, each lasting from the Leader answer that
//     named the winner (the server's word that it led) to its key's
//     deletion;
//   - every Observe response holds a put of the history, a value a
//     campaigner sent for that key, and a key that led: for the first
//     response of a leader on a stream, at the response's revision,
//     with the value the key held then (one it may have campaigned with
//     before it led); for the others, which report its changes while it
//     leads, at the value's own revision. Each stream reports leaders in increasing
//     create revision, each leader's values in increasing revision, and
//     a new stream never goes back to an earlier leader.
func checkElections(el electionLog, idx eventIndex) []string {
	ls := keyLives(idx, electionPrefix)
	var violations []string
	bad := func(format string, args ...any) { violations = append(violations, fmt.Sprintf(format, args...)) }

	var ts []tenure
	for _, w := range el.Wins {
		l := ls.of(w.Key, w.Create)
		if l == nil {
			bad("%s: Campaign answered a leader key the watch history does not hold (its lives: %v)", w.who(), ls[w.Key])
			continue
		}
		if want := keyOf(electionPrefix, w.Lease); w.Key != want {
			bad("%s: Campaign answered key %s; etcd's key for the lease is %s", w.who(), w.Key, want)
		}
		if w.Leader.Rev != 0 && l.exists(w.Leader.Rev) {
			if o := ls.owner(w.Leader.Rev); o != l {
				bad("%s won out of turn: at revision %d, after its Campaign returned, %v led", w.who(), w.Leader.Rev, o)
			}
		}
		if w.Leader.Rev != 0 && w.Leader.Key == w.Key && w.Leader.Create == w.Create {
			ts = append(ts, tenure{who: w.who(), life: l, from: w.Leader.Rev, to: l.end()})
		}
		if w.Resign != 0 && l.end() > w.Resign {
			bad("%s: Resign acknowledged at revision %d, but %v", w.who(), w.Resign, l)
		}
	}
	violations = append(violations, overlaps(ts, "election led twice")...)

	for _, a := range el.Leaders {
		o := ls.owner(a.Rev)
		if o == nil || o.Key != a.Key || o.Create != a.Create {
			bad("Leader answered %v; the leader then was %v", a, o)
			continue
		}
		if p, _ := o.putAt(a.Rev); p.Rev != a.Mod || p.Value != a.Value {
			bad("Leader answered %v; the key then held %v", a, p)
		}
	}

	for _, p := range el.Proclaims {
		if p.Rev == 0 {
			continue
		}
		l := ls.of(p.Key, p.Create)
		put, ok := watchEvent{}, false
		if l != nil {
			put, ok = l.putAt(p.Rev)
		}
		switch {
		case !ok || put.Rev != p.Rev || put.Value != p.Value:
			bad("client %d: Proclaim of %q by %s (created at %d) acknowledged at revision %d, which the watch history does not hold (the key then: %v)", p.Client, p.Value, p.Key, p.Create, p.Rev, l)
		case ls.owner(p.Rev) != l:
			bad("client %d: Proclaim of %q by %s (created at %d) at revision %d, while %v led", p.Client, p.Value, p.Key, p.Create, p.Rev, ls.owner(p.Rev))
		}
	}

	var prev leaderView
	seen := make(map[[2]int64]bool) // {stream, create} of the leaders a stream reported
	for _, v := range el.Observed {
		l := ls.of(v.Key, v.Create)
		put, ok := watchEvent{}, false
		if l != nil {
			put, ok = l.putAt(v.Mod)
		}
		if !ok || put.Rev != v.Mod || put.Value != v.Value {
			bad("Observe stream %d, response %d: %v, which the watch history does not hold (the key then: %v)", v.Stream, v.Resp, v, l)
			continue
		}
		if el.SentFor[v.Value] != v.Key {
			bad("Observe stream %d, response %d: %v, a value no campaigner sent for that key", v.Stream, v.Resp, v)
		}
		first := !seen[[2]int64{int64(v.Stream), v.Create}]
		seen[[2]int64{int64(v.Stream), v.Create}] = true
		at := v.Mod
		if first {
			// The leader as read at the response's revision, value and all.
			at = v.Rev
			if now, _ := l.putAt(at); now.Rev != v.Mod {
				bad("Observe stream %d, response %d: %v, but the key then held %v", v.Stream, v.Resp, v, now)
			}
		}
		if o := ls.owner(at); o != l {
			bad("Observe stream %d, response %d: %v, but at revision %d the leader was %v", v.Stream, v.Resp, v, at, o)
		}
		switch {
		case prev.Rev == 0:
		case v.Create < prev.Create:
			bad("Observe stream %d, response %d: %v after %v: back to an earlier leader", v.Stream, v.Resp, v, prev)
		case v.Stream == prev.Stream && v.Create == prev.Create && v.Mod <= prev.Mod:
			bad("Observe stream %d, response %d: %v after %v: a value not newer than the last", v.Stream, v.Resp, v, prev)
		case v.Create == prev.Create && v.Mod < prev.Mod:
			bad("Observe stream %d, response %d: %v after %v: back to an earlier value", v.Stream, v.Resp, v, prev)
		}
		prev = v
	}
	return violations
}
