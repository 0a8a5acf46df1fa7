package faults

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcluster"
	"github.com/cairnkv/cairn/tests/faults/powerfs"
)

// longFlag adds the longer slow-disk episodes (2 s fsyncs, 10 s each).
var longFlag = flag.Bool("faults.long", false, "run the long slow-disk episodes too")

// slowResult is what one slow-disk episode measured.
type slowResult struct {
	name                string
	delay, length       time.Duration
	acks                int
	p50, p99, max       time.Duration
	leaders             int           // distinct leaders seen during the episode
	termFrom, termTo    uint64        // raft term before and after
	leaderless          time.Duration // time the healthy members saw no leader
	violationsAfterward int
}

func (r slowResult) String() string {
	return fmt.Sprintf("%s, fsync +%v for %v: %d writes acknowledged (%.0f/s), latency p50 %v p99 %v max %v; %d leader(s) seen, term %d -> %d, %v without a leader; %d violations after",
		r.name, r.delay, r.length, r.acks, float64(r.acks)/r.length.Seconds(),
		r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond),
		r.leaders, r.termFrom, r.termTo, r.leaderless.Round(10*time.Millisecond), r.violationsAfterward)
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// slowEpisode makes every fsync on member victim's disk take delay
// longer for length, under a write load through endpoints, and watches
// the leadership from the other members. Then the disk is fast again,
// and every acknowledged write so far (all, with this episode's) must be
// on every member once the slow one has caught up.
func slowEpisode(t *testing.T, c *testcluster.Cluster, disks []*disk, victim int, endpoints []string, name string, delay, length time.Duration, all *[]ack) slowResult {
	r := slowResult{name: name, delay: delay, length: length}
	var healthy []*testcluster.Member
	for i, m := range c.Members {
		if i != victim {
			healthy = append(healthy, m)
		}
	}
	term := func() uint64 {
		var top uint64
		for _, m := range c.Members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if st, err := m.Status(ctx); err == nil {
				top = max(top, st.RaftTerm)
			}
			cancel()
		}
		return top
	}
	r.termFrom = term()
	disks[victim].fs.SlowSync(powerfs.All, delay)
	stop := make(chan struct{})
	type loaded struct {
		acks []ack
		lat  []time.Duration
	}
	got := make(chan loaded)
	go func() {
		a, l := timedLoad(t, endpoints, 4, name, stop)
		got <- loaded{a, l}
	}()
	leaders := map[uint64]bool{}
	end := time.Now().Add(length)
	for time.Now().Before(end) {
		tick := time.Now()
		seen := false
		for _, m := range healthy {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			st, err := m.Status(ctx)
			cancel()
			if err == nil && st.Leader != 0 {
				leaders[st.Leader] = true
				seen = true
			}
		}
		time.Sleep(100*time.Millisecond - time.Since(tick))
		if !seen {
			r.leaderless += time.Since(tick)
		}
	}
	close(stop)
	l := <-got
	disks[victim].fs.SlowSync(nil, 0)
	r.termTo = term()
	r.acks, r.leaders = len(l.acks), len(leaders)
	r.p50, r.p99, r.max = percentile(l.lat, 0.5), percentile(l.lat, 0.99), percentile(l.lat, 1)
	*all = append(*all, l.acks...)
	for _, m := range c.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := check(ctx, m.ClientURL, *all)
		cancel()
		if err != nil {
			t.Fatalf("%s: check %s: %v", name, m.Name, err)
		}
		r.violationsAfterward += len(v)
		if len(v) > 0 {
			t.Errorf("%s: %d violations on %s; the first: %s", name, len(v), m.Name, strings.Join(v[:min(3, len(v))], "; "))
		}
	}
	t.Log(r)
	return r
}

// TestSlowDisk: three members, each on its own powerfs; one member's
// fsyncs are made slow in turn. (a) On a follower, writes through the
// other two keep flowing, and the follower catches up afterwards. (b) On
// the leader, the cluster must keep a leader (the leader's heartbeats
// share its Ready loop with the WAL fsync, so one longer than the
// election timeout lets the followers elect another, which is how
// leadership moves away from the slow disk) and the write latency is
// measured, not asserted. After each episode every acknowledged write is
// checked on every member.
func TestSlowDisk(t *testing.T) {
	disks := []*disk{newDisk(t), newDisk(t), newDisk(t)}
	next := 0
	c := testcluster.New(t, testcluster.Config{
		Size:  3,
		Flags: serverFlags,
		DataDir: func(name string) string {
			d := disks[next]
			next++
			return filepath.Join(d.mnt, name+".data")
		},
	})
	type episode struct {
		leader        bool
		delay, length time.Duration
	}
	episodes := []episode{
		{false, time.Second, 3 * time.Second},
		{true, 200 * time.Millisecond, 3 * time.Second},
		{true, time.Second, 3 * time.Second},
	}
	if *longFlag {
		episodes = append(episodes,
			episode{false, 2 * time.Second, 10 * time.Second},
			episode{true, 500 * time.Millisecond, 10 * time.Second},
			episode{true, 2 * time.Second, 10 * time.Second})
	}
	var all []ack
	for _, e := range episodes {
		li := leaderIndex(t, c)
		victim, name := (li+1)%3, "follower"
		var eps []string
		if e.leader {
			victim, name = li, "leader"
			eps = c.Endpoints()
		} else {
			for i, m := range c.Members {
				if i != victim {
					eps = append(eps, m.ClientURL)
				}
			}
		}
		r := slowEpisode(t, c, disks, victim, eps, name, e.delay, e.length, &all)
		if r.acks == 0 {
			t.Errorf("%s: no write acknowledged for %v with one slow disk", name, e.length)
		}
		if !e.leader && r.acks < 50 {
			t.Errorf("follower: only %d writes in %v through the healthy members", r.acks, e.length)
		}
		if e.leader {
			// The cluster must have a leader again within an election
			// or two of the episode's end.
			leaderIndex(t, c)
		}
	}
}
