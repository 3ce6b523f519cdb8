package session

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
)

// noSlotDriver reads the calendar at once and finds no free day.
type noSlotDriver struct{ ran chan struct{} }

func (d noSlotDriver) CheckMission(context.Context, portal.Account, string, []portal.Query, portal.Gate) (portal.Result, error) {
	close(d.ran)
	return portal.Result{Outcome: portal.NoSlot, Step: "days", Login: true}, nil
}

// TestAnAcquireFailingUntilPastTheLeaseTTLStillChecks: the pool is out for
// longer than the lease's TTL, within the claim's window for an account,
// either refusing (nothing sent, nothing leased) or hanging (every call
// ends DEADLINE_EXCEEDED: ErrNoAnswer; the pool would refuse a retry of an
// acquire_id whose lease had ended); then it grants a fresh lease, its
// ExpiresAt a full TTL ahead. The check must run on it: with the TTL
// counted from the first send, the fresh lease was taken for one that ran
// out and handed back unused, and every mission that waited out an outage
// longer than LeaseTTL (2m by default, within a 5m claim's 2m30s acquire
// window) went unchecked.
func TestAnAcquireFailingUntilPastTheLeaseTTLStillChecks(t *testing.T) {
	t.Parallel()
	for name, outage := range map[string]error{
		"Refused": fmt.Errorf("acquire: %w: rpc error: code = Unavailable desc = connection refused", ErrUnavailable),
		"Hanging": fmt.Errorf("acquire: %w: %w: rpc error: code = DeadlineExceeded desc = context deadline exceeded", ErrUnavailable, ErrNoAnswer),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev := &events{}
			pool := &fakePool{ev: ev, accounts: []account{{id: 1, email: "acc1@example.com", password: "pw"}},
				busy: []error{outage, outage}} // waits 1s + 2s: 3s past the first send
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
				t.Errorf("the check never ran on a lease the pool granted a moment ago: result %+v", sum.Results)
			}
		})
	}
}
