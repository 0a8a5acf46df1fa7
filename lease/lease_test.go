package lease

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn/storage"
)

func newEngine(t *testing.T) storage.Engine {
	t.Helper()
	eng, err := storage.OpenPebble("", storage.PebbleOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// fakeClock is the lessor's clock in tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newLessor(t *testing.T, eng storage.Engine, minTTL int64) (*Lessor, *fakeClock) {
	t.Helper()
	l, err := New(eng, minTTL)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	l.now = clock.now
	return l, clock
}

// commit runs f in one engine batch and commits it, as the apply loop does.
func commit(t *testing.T, eng storage.Engine, f func(b storage.Batch) error) error {
	t.Helper()
	b := eng.NewBatch()
	defer b.Close()
	if err := f(b); err != nil {
		return err
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	return nil
}

func grant(t *testing.T, eng storage.Engine, l *Lessor, id, ttl int64) *Lease {
	t.Helper()
	var le *Lease
	if err := commit(t, eng, func(b storage.Batch) (err error) {
		le, err = l.Grant(b, id, ttl)
		return err
	}); err != nil {
		t.Fatalf("Grant(%d, %d): %v", id, ttl, err)
	}
	return le
}

func attach(t *testing.T, eng storage.Engine, l *Lessor, id int64, keys ...string) {
	t.Helper()
	if err := commit(t, eng, func(b storage.Batch) error {
		for _, k := range keys {
			if err := l.Attach(b, id, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("Attach(%d, %q): %v", id, keys, err)
	}
}

func keysOf(t *testing.T, eng storage.Engine, l *Lessor, id int64) []string {
	t.Helper()
	ks, err := l.Keys(eng, id)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, k := range ks {
		out = append(out, string(k))
	}
	return out
}

func TestGrantTTLBounds(t *testing.T) {
	eng := newEngine(t)
	l, _ := newLessor(t, eng, 2)
	for _, c := range []struct{ ttl, want int64 }{{-5, 2}, {0, 2}, {1, 2}, {2, 2}, {3, 3}, {MaxTTL, MaxTTL}} {
		id := 100 + c.ttl
		if c.ttl == MaxTTL {
			id = 1
		}
		le := grant(t, eng, l, id, c.ttl)
		if le.ID != id || le.TTL != c.want {
			t.Errorf("Grant(ttl %d) = id %d ttl %d, want ttl %d", c.ttl, le.ID, le.TTL, c.want)
		}
		if g, r, err := l.TimeToLive(id); err != nil || g != c.want || r != c.want {
			t.Errorf("TimeToLive on a non-primary = %d, %d, %v; want the granted TTL twice", g, r, err)
		}
	}
	err := commit(t, eng, func(b storage.Batch) error { _, err := l.Grant(b, 5, MaxTTL+1); return err })
	if !errors.Is(err, ErrTTLTooLarge) {
		t.Errorf("Grant(MaxTTL+1) = %v, want ErrTTLTooLarge", err)
	}
	if l.Exists(5) {
		t.Error("a refused grant created the lease")
	}
	err = commit(t, eng, func(b storage.Batch) error { _, err := l.Grant(b, 1, 10); return err })
	if !errors.Is(err, ErrExists) {
		t.Errorf("Grant of an existing ID = %v, want ErrExists", err)
	}
}

func TestLeasesSurviveReload(t *testing.T) {
	eng := newEngine(t)
	l, _ := newLessor(t, eng, 1)
	ids := []int64{math.MinInt64, -1, 1, 2, math.MaxInt64}
	for i, id := range ids {
		grant(t, eng, l, id, int64(10+i))
		attach(t, eng, l, id, fmt.Sprintf("k%d", i))
	}
	if got := l.IDs(); !slices.Equal(got, ids) {
		t.Fatalf("IDs() = %v, want %v", got, ids)
	}
	l2, err := New(eng, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.IDs(); !slices.Equal(got, ids) {
		t.Fatalf("after reload IDs() = %v, want %v", got, ids)
	}
	for i, id := range ids {
		if g, _, err := l2.TimeToLive(id); err != nil || g != int64(10+i) {
			t.Errorf("after reload lease %d: ttl %d, %v", id, g, err)
		}
		if got := keysOf(t, eng, l2, id); !slices.Equal(got, []string{fmt.Sprintf("k%d", i)}) {
			t.Errorf("after reload keys of %d = %q", id, got)
		}
	}
}

// Revoke returns exactly the lease's keys and drops its attachments,
// leaving every other lease's alone, including at the ends of the ID space
// (-1 is the all-ones ID, whose attachment prefix has no successor).
func TestRevokeReturnsAndDropsOnlyItsKeys(t *testing.T) {
	ids := []int64{math.MinInt64, -2, -1, 0, 1, 2, math.MaxInt64}
	for _, victim := range ids {
		t.Run(fmt.Sprint(victim), func(t *testing.T) {
			eng := newEngine(t)
			l, _ := newLessor(t, eng, 1)
			for _, id := range ids {
				grant(t, eng, l, id, 10)
				attach(t, eng, l, id, fmt.Sprintf("%d/a", id), fmt.Sprintf("%d/b\x00\xff", id))
			}
			var keys [][]byte
			if err := commit(t, eng, func(b storage.Batch) (err error) {
				keys, err = l.Revoke(b, victim)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			want := []string{fmt.Sprintf("%d/a", victim), fmt.Sprintf("%d/b\x00\xff", victim)}
			var got []string
			for _, k := range keys {
				got = append(got, string(k))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Revoke(%d) returned %q, want %q", victim, got, want)
			}
			if l.Exists(victim) {
				t.Fatal("revoked lease still exists")
			}
			if got := keysOf(t, eng, l, victim); len(got) != 0 {
				t.Fatalf("revoked lease still has keys %q", got)
			}
			for _, id := range ids {
				if id == victim {
					continue
				}
				want := []string{fmt.Sprintf("%d/a", id), fmt.Sprintf("%d/b\x00\xff", id)}
				if got := keysOf(t, eng, l, id); !slices.Equal(got, want) {
					t.Fatalf("after revoking %d, lease %d has keys %q, want %q", victim, id, got, want)
				}
			}
			l2, err := New(eng, 1)
			if err != nil {
				t.Fatal(err)
			}
			if l2.Exists(victim) || len(l2.IDs()) != len(ids)-1 {
				t.Fatalf("after reload: IDs %v", l2.IDs())
			}
		})
	}
}

func TestAttachDetachAndUnknownLeases(t *testing.T) {
	eng := newEngine(t)
	l, _ := newLessor(t, eng, 1)
	grant(t, eng, l, 7, 10)
	attach(t, eng, l, 7, "b", "a", "c")
	if got := keysOf(t, eng, l, 7); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("keys = %q", got)
	}
	attach(t, eng, l, 7, "a") // attaching twice is idempotent
	if err := commit(t, eng, func(b storage.Batch) error { return l.Detach(b, 7, []byte("b")) }); err != nil {
		t.Fatal(err)
	}
	if got := keysOf(t, eng, l, 7); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("keys after detach = %q", got)
	}
	if err := commit(t, eng, func(b storage.Batch) error { return l.Attach(b, 8, []byte("x")) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Attach to an unknown lease = %v", err)
	}
	if err := commit(t, eng, func(b storage.Batch) error { _, err := l.Revoke(b, 8); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Revoke of an unknown lease = %v", err)
	}
	if _, _, err := l.TimeToLive(8); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TimeToLive of an unknown lease = %v", err)
	}
	if got := keysOf(t, eng, l, 8); len(got) != 0 {
		t.Fatalf("keys of an unknown lease = %q", got)
	}
}

func TestPrimaryExpiryRenewAndRevocationRetry(t *testing.T) {
	eng := newEngine(t)
	l, clock := newLessor(t, eng, 1)
	grant(t, eng, l, 1, 10)
	grant(t, eng, l, 2, 20)

	if _, err := l.Renew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("Renew on a non-primary = %v", err)
	}
	if got := l.Expired(time.Second, 10); got != nil {
		t.Fatalf("a non-primary reports expired leases %v", got)
	}
	clock.advance(time.Hour) // time passing while not primary costs nothing
	l.Promote(2 * time.Second)
	if !l.IsPrimary() {
		t.Fatal("not primary after Promote")
	}
	if _, r, _ := l.TimeToLive(1); r != 12 {
		t.Fatalf("after Promote(2s) lease 1 has %ds left, want 12", r)
	}
	clock.advance(11500 * time.Millisecond)
	if _, r, _ := l.TimeToLive(1); r != 0 {
		t.Fatalf("0.5s left rounds to %ds, want 0 (etcd rounds down)", r)
	}
	if got := l.Expired(time.Second, 10); len(got) != 0 {
		t.Fatalf("expired before the deadline: %v", got)
	}
	clock.advance(500 * time.Millisecond)
	if got := l.Expired(time.Second, 10); !slices.Equal(got, []int64{1}) {
		t.Fatalf("Expired at the deadline = %v, want [1]", got)
	}
	if _, r, _ := l.TimeToLive(1); r != 0 {
		t.Fatalf("an expired lease has %ds left, want 0", r)
	}
	// Its revocation is in flight: not reported again within the retry
	// interval, and a keepalive does not bring it back.
	if got := l.Expired(time.Second, 10); len(got) != 0 {
		t.Fatalf("reported again within the retry interval: %v", got)
	}
	if _, err := l.Renew(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Renew of a lease being revoked = %v, want ErrNotFound", err)
	}
	clock.advance(time.Second)
	if got := l.Expired(time.Second, 10); !slices.Equal(got, []int64{1}) {
		t.Fatalf("after the retry interval Expired = %v, want [1] again", got)
	}

	// Renew restarts the full TTL.
	clock.advance(5 * time.Second)
	if ttl, err := l.Renew(2); err != nil || ttl != 20 {
		t.Fatalf("Renew(2) = %d, %v", ttl, err)
	}
	if _, r, _ := l.TimeToLive(2); r != 20 {
		t.Fatalf("after Renew lease 2 has %ds left, want 20", r)
	}
	if _, err := l.Renew(3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Renew of an unknown lease = %v", err)
	}

	// A lease granted while primary gets its deadline at once.
	grant(t, eng, l, 3, 5)
	if _, r, _ := l.TimeToLive(3); r != 5 {
		t.Fatalf("lease granted on the primary has %ds left, want 5", r)
	}

	// A new primary forgets revocations in flight and gives full TTLs.
	l.Demote()
	if l.IsPrimary() || l.Expired(0, 10) != nil {
		t.Fatal("a demoted lessor still tracks expiry")
	}
	if g, r, _ := l.TimeToLive(1); g != 10 || r != 10 {
		t.Fatalf("TimeToLive after Demote = %d, %d", g, r)
	}
	l.Promote(0)
	if _, err := l.Renew(1); err != nil {
		t.Fatalf("Renew after re-promotion = %v", err)
	}
	if got := l.Expired(0, 10); len(got) != 0 {
		t.Fatalf("expired right after Promote: %v", got)
	}
}

func TestExpiredRespectsLimit(t *testing.T) {
	eng := newEngine(t)
	l, clock := newLessor(t, eng, 1)
	for id := int64(1); id <= 10; id++ {
		grant(t, eng, l, id, 1)
	}
	l.Promote(0)
	clock.advance(2 * time.Second)
	seen := map[int64]bool{}
	for range 4 {
		got := l.Expired(time.Hour, 3)
		if len(got) > 3 {
			t.Fatalf("Expired(limit 3) returned %d leases", len(got))
		}
		for _, id := range got {
			if seen[id] {
				t.Fatalf("lease %d reported twice within the retry interval", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 10 {
		t.Fatalf("reported %d of 10 expired leases", len(seen))
	}
}
