package lease

import (
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/cairnkv/cairn/storage"
)

// steppedClock is a machine's clock as the lessor reads it through
// time.Now: a monotonic reading that advances with elapsed time only, and
// a wall reading that also moves when someone (NTP stepping, an operator,
// a VM resumed on another host) sets the clock. Its readings are real
// time.Time values carrying both, so the lessor's own arithmetic
// (Sub, Before, Add) decides which one counts, as in production.
type steppedClock struct {
	base    time.Time     // a time.Now reading: has a monotonic clock
	elapsed time.Duration // monotonic time since base
	step    time.Duration // how far the wall clock has been set away
}

func (c *steppedClock) now() time.Time { return withWallStep(c.base.Add(c.elapsed), c.step) }

// withWallStep returns t with its wall reading moved by d (whole seconds)
// and its monotonic reading unchanged: what time.Now returns after the
// wall clock is set d ahead. The time package offers no way to build such
// a value, so this edits its fields (wall: a hasMonotonic flag, 33 bits
// of seconds since 1885, 30 bits of nanoseconds; ext: the monotonic
// reading), and the caller checks the result behaves as described.
func withWallStep(t time.Time, d time.Duration) time.Time {
	const secShift = 30
	p := (*struct {
		wall uint64
		ext  int64
		loc  *time.Location
	})(unsafe.Pointer(&t))
	p.wall = uint64(int64(p.wall) + int64(d/time.Second)<<secShift)
	return t
}

func newSteppedLessor(t *testing.T, eng storage.Engine, minTTL int64) (*Lessor, *steppedClock) {
	t.Helper()
	c := &steppedClock{base: time.Now()}
	// The clock must do what it claims, or the test proves nothing.
	a := c.now()
	c.step = -5 * time.Hour
	b := c.now()
	c.step = 0
	if b.Sub(a) != 0 || !b.Equal(a) || a.Round(0).Sub(b.Round(0)) != 5*time.Hour || a.Unix()-b.Unix() != 5*3600 {
		t.Skipf("cannot build a time.Time with a stepped wall clock on this Go (%v vs %v)", a, b)
	}
	l, err := New(eng, minTTL)
	if err != nil {
		t.Fatal(err)
	}
	l.now = c.now
	return l, c
}

// TestLeasesIgnoreWallClockSteps: the wall clock is set hours forward
// and back while a lease runs; the lease expires when its TTL of
// monotonic time has passed since its grant, renewal or the lessor's
// promotion, never early and never late, and its remaining TTL does not
// jump. etcd promises the same (its lessor uses time.Now's monotonic
// reading).
func TestLeasesIgnoreWallClockSteps(t *testing.T) {
	steps := []time.Duration{2 * time.Hour, -2 * time.Hour, 24 * time.Hour, -30 * 24 * time.Hour, 0, 7 * time.Hour}
	const ttl = 60
	for _, tc := range []struct {
		name  string
		start func(t *testing.T, eng storage.Engine, l *Lessor, c *steppedClock) // what starts the TTL
	}{
		{"grant", func(t *testing.T, eng storage.Engine, l *Lessor, c *steppedClock) { grant(t, eng, l, 1, ttl) }},
		{"renew", func(t *testing.T, eng storage.Engine, l *Lessor, c *steppedClock) {
			c.elapsed -= 10 * time.Second
			grant(t, eng, l, 1, ttl) // 10 s earlier, with the wall clock elsewhere
			c.elapsed += 10 * time.Second
			c.step = 5 * time.Hour
			if _, err := l.Renew(1); err != nil {
				t.Fatal(err)
			}
		}},
		{"promote", func(t *testing.T, eng storage.Engine, l *Lessor, c *steppedClock) {
			grant(t, eng, l, 1, ttl)
			c.step = 5 * time.Hour
			l.Demote()
			l.Promote(0)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := newEngine(t)
			l, c := newSteppedLessor(t, eng, 1)
			l.Promote(0)
			c.elapsed += 10 * time.Second
			c.step = -3 * time.Hour // set back before the TTL starts
			tc.start(t, eng, l, c)
			began := c.elapsed
			// Walk 59 s of monotonic time in 1 s ticks, setting the wall
			// clock somewhere else at every tick.
			for i := 1; i < ttl; i++ {
				c.elapsed = began + time.Duration(i)*time.Second
				c.step = steps[i%len(steps)]
				if got := l.Expired(time.Second, 100); len(got) != 0 {
					t.Fatalf("%d s after the TTL began, wall clock set %v away: lease expired early", i, c.step)
				}
				_, left, err := l.TimeToLive(1)
				if err != nil || left != int64(ttl-i) {
					t.Fatalf("%d s in, wall clock set %v away: TimeToLive %d s, %v; want %d s", i, c.step, left, err, ttl-i)
				}
			}
			c.elapsed = began + ttl*time.Second
			c.step = -48 * time.Hour
			if got := l.Expired(time.Second, 100); !slices.Equal(got, []int64{1}) {
				t.Fatalf("TTL of monotonic time passed, wall clock set back 48 h: expired %v, want [1]", got)
			}
			// Its revocation is asked for again after retry of monotonic
			// time, not when the wall clock jumps ahead.
			c.step = 48 * time.Hour
			if got := l.Expired(3*time.Second, 100); len(got) != 0 {
				t.Fatalf("wall clock set ahead 48 h: revocation asked again at once (%v)", got)
			}
			c.elapsed += 3 * time.Second
			c.step = -48 * time.Hour
			if got := l.Expired(3*time.Second, 100); !slices.Equal(got, []int64{1}) {
				t.Fatalf("3 s later, wall clock set back: revocation not asked again (%v)", got)
			}
		})
	}
}

// TestReloadedLeasesIgnoreWallClockSteps: leases are stored as TTLs, not
// wall-clock deadlines, so a lessor reloading them (a restart, a
// snapshot restore) after the wall clock moved gives each a full TTL.
func TestReloadedLeasesIgnoreWallClockSteps(t *testing.T) {
	eng := newEngine(t)
	l, err := New(eng, 1)
	if err != nil {
		t.Fatal(err)
	}
	l.Promote(0)
	grant(t, eng, l, 7, 30)

	for _, step := range []time.Duration{72 * time.Hour, -72 * time.Hour} {
		l2, c := newSteppedLessor(t, eng, 1) // New loads the stored leases
		c.step = step
		if err := l2.Reload(eng); err != nil { // now, with the wall clock stepped
			t.Fatal(err)
		}
		l2.Promote(0)
		c.elapsed += 29 * time.Second
		c.step = -step
		if got := l2.Expired(time.Second, 100); len(got) != 0 {
			t.Fatalf("reloaded with the wall clock %v away, then set %v away: expired after 29 s of a 30 s TTL", step, -step)
		}
		c.elapsed += time.Second
		if got := l2.Expired(time.Second, 100); !slices.Equal(got, []int64{7}) {
			t.Fatalf("reloaded with the wall clock %v away: not expired after its 30 s TTL (%v)", step, got)
		}
	}
}
