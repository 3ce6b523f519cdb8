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
	c := giveUpOneMission(t, pool, ev)
	given := pool.done.Load()
	close(pool.hold)
	c.Drain(time.Minute)
	if !given {
		t.Errorf("RunSession returned with the give-back of the lost lease still in flight; want the session to wait for it (as documented)")
	}
}
