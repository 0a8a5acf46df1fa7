package transport

import (
	"math/rand/v2"
	"time"
)

// backoff is the pause between failed attempts to open a stream: it
// doubles from min to max, and each pause is drawn from the upper half
// of the current value so that members which lost a peer at the same
// moment do not all knock on its door at the same moment when it comes
// back.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

// next returns the pause before the next attempt.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

// reset starts over from min, after a success.
func (b *backoff) reset() { b.cur = 0 }
