package session

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
)

// lateAnswerPool grants the lease at once (the pool's clock starts the
// lease's TTL) but its answer reaches the checker delay later, as an
// Acquire whose answer is slow in coming (batch, network) does.
type lateAnswerPool struct {
	*fakePool
	delay   time.Duration
	mu      sync.Mutex
	granted time.Time
	expires time.Time
}

func (p *lateAnswerPool) Acquire(ctx context.Context, req AcquireRequest) (Lease, error) {
	l, err := p.fakePool.Acquire(ctx, req)
	p.mu.Lock()
	p.granted, p.expires = time.Now(), l.ExpiresAt
	p.mu.Unlock()
	time.Sleep(p.delay)
	return l, err
}

// atPortalDriver stays at the portal until the check is ended.
type atPortalDriver struct{ ended chan time.Time }

func (d atPortalDriver) CheckMission(ctx context.Context, _ portal.Account, _ string, _ []portal.Query, _ portal.Gate) (portal.Result, error) {
	<-ctx.Done()
	d.ended <- time.Now()
	return portal.Result{Outcome: portal.Error, Step: "days"}, context.Cause(ctx)
}

// TestALeaseRunsFromItsAcquireNotItsAnswer: the lease's end is counted
// from when Acquire was sent, not from when its answer reached the
// checker: a check whose Acquire answered late and which cannot renew
// stops by the lease's end (the pool may lease the account again
// ExpiryGrace, 2 s, after it); one whose answer came after the lease's end
// does not begin.
func TestALeaseRunsFromItsAcquireNotItsAnswer(t *testing.T) {
	t.Parallel()
	for _, delay := range []time.Duration{2 * time.Second, 4 * time.Second} {
		t.Run(delay.String(), func(t *testing.T) {
			t.Parallel()
			ev := &events{}
			accts := []account{{id: 1, email: "acc1@example.com", password: "pw"}}
			pool := &lateAnswerPool{fakePool: &fakePool{ev: ev, accounts: accts, renewErr: fmt.Errorf("renew: %w: connection refused", ErrUnavailable)}, delay: delay}
			reqs := &fakeRequests{ev: ev}
			reqs.claims = [][]Claim{{claim("c-fra", "fra", time.Now())}}
			drv := atPortalDriver{ended: make(chan time.Time, 1)}
			const ttl = 3 * time.Second
			c := New(Config{CheckerID: "checker-test", LeaseTTL: ttl}, pool, reqs, drv)
			if _, err := c.RunSession(t.Context(), 0); err != nil {
				t.Fatal(err)
			}
			ended := <-drv.ended
			pool.mu.Lock()
			granted, expires := pool.granted, pool.expires
			pool.mu.Unlock()
			const expiryGrace = 2 * time.Second
			if ended.After(expires.Add(expiryGrace)) {
				t.Errorf("the check went on with the account %s after the pool could lease it again (lease granted %s, ended %s after the grant; ttl %s)",
					ended.Sub(expires.Add(expiryGrace)).Round(10*time.Millisecond), granted.Format(time.TimeOnly),
					ended.Sub(granted).Round(10*time.Millisecond), ttl)
			}
		})
	}
}
