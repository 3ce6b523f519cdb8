package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimiter gives each caller its own token bucket: rps requests per
// second on average, burst at once. Callers are told apart by their token
// (its digest, never the token itself); without auth every caller shares
// one bucket.
type RateLimiter struct {
	rps   rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[[32]byte]*rate.Limiter
}

// NewRateLimiter returns a limiter, or nil (no limit) when rps is 0.
func NewRateLimiter(rps float64, burst int) *RateLimiter {
	if rps <= 0 {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(2*rps))
	}
	return &RateLimiter{rps: rate.Limit(rps), burst: burst, buckets: map[[32]byte]*rate.Limiter{}}
}

// Allow takes one request from the caller's bucket. When the bucket is
// empty it takes nothing and says how long until it would allow one.
func (l *RateLimiter) Allow(id Identity) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	b, ok := l.buckets[id.digest]
	if !ok {
		// One bucket per token: the map holds at most as many entries as
		// tokens ever known, since only authenticated callers get here.
		b = rate.NewLimiter(l.rps, l.burst)
		l.buckets[id.digest] = b
	}
	l.mu.Unlock()
	now := time.Now()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
