package sftp

import (
	"context"
	"sync"
	"time"
)

// rateBurst is how much of a second's allowance a limiter holds while
// idle: a transfer starting after a pause gets a tenth of a second's
// bytes at once, and no second ever carries more than 1.1 times the rate.
const rateBurst = 10

// RateLimiter throttles a byte stream to a rate (a token bucket). Wait
// charges first and sleeps after, so concurrent callers (an SFTP
// session's workers) queue behind each other's debt and the rate holds
// over any request size, even one larger than the bucket.
type RateLimiter struct {
	bytesPerSecond float64
	burst          float64

	mu     sync.Mutex
	tokens float64 // negative: debt later callers wait out
	last   time.Time
}

// NewRateLimiter returns a limiter of bytesPerSecond, or nil (no limit)
// when it is 0 or less. A nil *RateLimiter's Wait returns at once.
func NewRateLimiter(bytesPerSecond int64) *RateLimiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	r := float64(bytesPerSecond)
	return &RateLimiter{bytesPerSecond: r, burst: r / rateBurst, tokens: r / rateBurst, last: time.Now()}
}

// Wait takes n bytes from the bucket and sleeps until they are covered,
// or until ctx is done (its error is returned).
func (l *RateLimiter) Wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.bytesPerSecond) - float64(n)
	l.last = now
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / l.bytesPerSecond * float64(time.Second))
	}
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
