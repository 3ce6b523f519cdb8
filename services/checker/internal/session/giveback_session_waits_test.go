package session

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// slowGiveBackPool is a fakePool whose GiveBack is answered when hold
// closes, or when its 3s run out (a slow pool).
type slowGiveBackPool struct {
	*fakePool
	hold chan struct{}
	done atomic.Bool
}

func (p *slowGiveBackPool) GiveBack(ctx context.Context, acquireID, detail string) error {
	select {
	case <-p.hold:
	case <-ctx.Done():
	}
	err := p.fakePool.GiveBack(ctx, acquireID, detail)
	p.done.Store(true)
	return err
}

// RunSession "returns it when every claimed mission is released and
// reported": also after the give-back of a lease whose Acquire's answer
// was lost (ARCHITECTURE.md), so that the RunSession RPC (slotctl's
// run-session) does not answer with that lease still held.
func TestRunSessionReturnsOnlyAfterTheGiveBack(t *testing.T) {
	t.Parallel()
	ev := &events{}
	pool := &slowGiveBackPool{hold: make(chan struct{}), fakePool: &fakePool{ev: ev, accounts: []account{{id: 1, email: "acc1@example.com", password: "pw"}},
		busy: []error{fmt.Errorf("acquire: %w: %w: rpc error: code = DeadlineExceeded", ErrUnavailable, ErrNoAnswer)}}}
	reqs := &fakeRequests{ev: ev}
	reqs.claims = [][]Claim{{claim("c-fra", "fra", time.Now())}}
	c := New(Config{CheckerID: "checker-test", LeaseTTL: time.Minute, ClaimTTL: 2 * time.Second}, pool, reqs, noSlotDriver{ran: make(chan struct{})})
	sum, err := c.RunSession(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 1 || sum.Results[0].Outcome != NoAccount {
		t.Fatalf("results %+v; want the mission given up, no account", sum.Results)
	}
	given := pool.done.Load()
	close(pool.hold)
	c.Drain(time.Minute)
	if !given {
		t.Errorf("RunSession returned with the give-back of the lost lease still in flight; want the session to wait for it (as documented)")
	}
}
