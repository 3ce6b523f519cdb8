package session

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// lostAnswerPool grants the lease on the first Acquire, but its answer is
// lost (DEADLINE_EXCEEDED after delay); a retry with the same acquire_id
// gets that same lease, its expiry unchanged, as AccountPool's LeaseOf
// answers ("a retry does not renew it").
type lostAnswerPool struct {
	*fakePool
	delay   time.Duration
	mu      sync.Mutex
	ids     map[string]Lease
	granted time.Time
}

func (p *lostAnswerPool) Acquire(ctx context.Context, req AcquireRequest) (Lease, error) {
	p.mu.Lock()
	l, again := p.ids[req.AcquireID]
	p.mu.Unlock()
	if again {
		return l, nil
	}
	l, err := p.fakePool.Acquire(ctx, req)
	if err != nil {
		return l, err
	}
	p.mu.Lock()
	p.ids[req.AcquireID], p.granted = l, time.Now()
	p.mu.Unlock()
	time.Sleep(p.delay)
	return Lease{}, fmt.Errorf("acquire: %w: %w: rpc error: code = DeadlineExceeded", ErrUnavailable, ErrNoAnswer)
}

// TestARetriedAcquiresLeaseRunsFromTheFirstSend: a retried Acquire (same
// acquire_id) gets the lease the first one granted, with that lease's
// expiry; the checker must count the lease's end from the first send, not
// from the retry's. It counts it from the retry's send (askedAt is reset on
// every attempt), so a check that cannot renew goes on with the account
// past the time the pool may lease it again.
func TestARetriedAcquiresLeaseRunsFromTheFirstSend(t *testing.T) {
	t.Parallel()
	ev := &events{}
	accts := []account{{id: 1, email: "acc1@example.com", password: "pw"}}
	pool := &lostAnswerPool{fakePool: &fakePool{ev: ev, accounts: accts, renewErr: fmt.Errorf("renew: %w: connection refused", ErrUnavailable)},
		delay: 1900 * time.Millisecond, ids: map[string]Lease{}}
	reqs := &fakeRequests{ev: ev}
	reqs.claims = [][]Claim{{claim("c-fra", "fra", time.Now())}}
	drv := atPortalDriver{ended: make(chan time.Time, 1)}
	const ttl = 3 * time.Second
	c := New(Config{CheckerID: "checker-test", LeaseTTL: ttl}, pool, reqs, drv)
	if _, err := c.RunSession(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	var ended time.Time
	select {
	case ended = <-drv.ended:
	default:
		return // the check never began: fine
	}
	pool.mu.Lock()
	granted := pool.granted
	pool.mu.Unlock()
	expires := granted.Add(ttl)
	const expiryGrace = 2 * time.Second
	if ended.After(expires.Add(expiryGrace)) {
		t.Errorf("the check went on with the account %s after the pool could lease it again (lease granted by the first Acquire, ended %s after the grant; ttl %s)",
			ended.Sub(expires.Add(expiryGrace)).Round(10*time.Millisecond), ended.Sub(granted).Round(10*time.Millisecond), ttl)
	}
}
