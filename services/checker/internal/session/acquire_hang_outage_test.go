package session

import (
	"fmt"
	"testing"
	"time"
)

// TestAnAcquireTimingOutUntilPastTheLeaseTTLStillChecks: as
// TestAnAcquireRefusedUntilPastTheLeaseTTLStillChecks, but the outage is a
// hang (a partitioned or stalled pool: every call ends DeadlineExceeded,
// ErrNoAnswer) rather than a refusal. Nothing was leased during it (the
// pool would refuse a retry of an acquire_id whose lease ended: "its lease
// is no longer held"), and the lease that ends the outage is fresh: its
// ExpiresAt is a full TTL ahead. Since 50c1dd7 askedAt stays at the first
// timed-out send, so the fresh lease is handed back unused as late and the
// mission goes unchecked.
func TestAnAcquireTimingOutUntilPastTheLeaseTTLStillChecks(t *testing.T) {
	t.Parallel()
	ev := &events{}
	hung := fmt.Errorf("acquire: %w: %w: rpc error: code = DeadlineExceeded desc = context deadline exceeded", ErrUnavailable, ErrNoAnswer)
	pool := &fakePool{ev: ev, accounts: []account{{id: 1, email: "acc1@example.com", password: "pw"}},
		busy: []error{hung, hung}} // waits 1s + 2s: 3s past the first send
	reqs := &fakeRequests{ev: ev}
	reqs.claims = [][]Claim{{claim("c-fra", "fra", time.Now())}}
	drv := noSlotDriver{ran: make(chan struct{})}
	c := New(Config{CheckerID: "checker-test", LeaseTTL: 2 * time.Second, ClaimTTL: 20 * time.Second}, pool, reqs, drv)
	sum, err := c.RunSession(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-drv.ran:
	default:
		t.Errorf("the check never ran on a lease the pool granted a moment ago (ExpiresAt a full TTL ahead): result %+v", sum.Results)
	}
}
