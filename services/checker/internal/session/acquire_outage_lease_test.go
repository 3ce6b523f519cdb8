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

// TestAnAcquireRefusedUntilPastTheLeaseTTLStillChecks: the pool is
// unreachable (connection refused: nothing was sent, nothing leased) for
// longer than the lease's TTL, within the claim's window for an account;
// then it grants a fresh lease, whose TTL runs from that grant. The check
// must run on it. Since 1959a6a askedAt stays at the first (refused) send,
// so the fresh lease is taken for one that ran out and handed back unused:
// every mission that waited out a pool outage longer than LeaseTTL (2m by
// default, within a 5m claim's 2m30s acquire window) goes unchecked.
func TestAnAcquireRefusedUntilPastTheLeaseTTLStillChecks(t *testing.T) {
	t.Parallel()
	ev := &events{}
	refused := fmt.Errorf("acquire: %w: rpc error: code = Unavailable desc = connection refused", ErrUnavailable)
	pool := &fakePool{ev: ev, accounts: []account{{id: 1, email: "acc1@example.com", password: "pw"}},
		busy: []error{refused, refused}} // waits 1s + 2s: 3s past the first send
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
		t.Errorf("the check never ran on a lease granted a moment ago: result %+v", sum.Results)
	}
}
