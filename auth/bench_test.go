package auth

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"golang.org/x/crypto/bcrypt"
)

// benchStore is an enabled Store with one user "u", password "pw",
// hashed at cost.
func benchStore(b *testing.B, cost int) *Store {
	b.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
	if err != nil {
		b.Fatal(err)
	}
	s, err := Load(newTestEngine(b), Options{BcryptCost: cost})
	if err != nil {
		b.Fatal(err)
	}
	s.mu.Lock()
	s.enabled = true
	s.users = map[string]*authpb.User{"u": {Name: []byte("u"), Password: h}}
	s.mu.Unlock()
	return s
}

// checkAll runs b.N password checks spread over callers goroutines and
// reports checks/s.
func checkAll(b *testing.B, s *Store, callers int) {
	b.Helper()
	ctx := context.Background()
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range work {
				if _, err := s.CheckPassword(ctx, "u", "pw"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "checks/s")
}

// BenchmarkAuthenticate is the bcrypt part of Authenticate (the password
// check, which runs on the caller's goroutine) with one caller and with
// many: hashSlots lets at most GOMAXPROCS-1 checks (at least one) run at
// once, so many callers get that many cores' worth and no more.
func BenchmarkAuthenticate(b *testing.B) {
	s := benchStore(b, 6)
	for _, callers := range []int{1, 4 * runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("callers=%d/slots=%d", callers, cap(hashSlots)), func(b *testing.B) {
			checkAll(b, s, callers)
		})
	}
}

// BenchmarkAuthenticateSlots: many callers with the bound set to 1..
// GOMAXPROCS slots, to show that password checks scale with the slots
// (cores) given to them.
func BenchmarkAuthenticateSlots(b *testing.B) {
	s := benchStore(b, 6)
	saved := hashSlots
	defer func() { hashSlots = saved }()
	for slots := 1; slots <= runtime.GOMAXPROCS(0); slots++ {
		b.Run(fmt.Sprintf("slots=%d", slots), func(b *testing.B) {
			hashSlots = make(chan struct{}, slots)
			checkAll(b, s, 4*runtime.GOMAXPROCS(0))
		})
	}
}
