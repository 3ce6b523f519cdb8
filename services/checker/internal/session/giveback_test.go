package session

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// A mission that gives up without a lease gives back, once, the lease the
// pool may have granted an Acquire of it whose answer was lost (no answer
// in time, or the connection failed: ErrNoAnswer), by that Acquire's
// acquire_id; one whose tries were all answered with a refusal that leased
// nothing (the id raced, no account free) sends nothing more to the pool.
func TestAMissionGivesBackOnlyALeaseWhoseAnswerWasLost(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		err      error
		giveBack bool
	}{
		"AnswerLost":  {fmt.Errorf("acquire: %w: %w: rpc error: code = DeadlineExceeded", ErrUnavailable, ErrNoAnswer), true},
		"Unreachable": {fmt.Errorf("acquire: %w: %w: rpc error: code = Unavailable desc = connection refused", ErrUnavailable, ErrNoAnswer), true},
		"Raced":       {fmt.Errorf("acquire: %w: rpc error: code = Aborted", ErrUnavailable), false},
		"NoneFree":    {&NoAccountFreeError{RetryAfter: time.Hour}, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev := &events{}
			pool := &fakePool{ev: ev, accounts: []account{{id: 1, email: "acc1@example.com", password: "pw"}}, busy: []error{tc.err}}
			c := giveUpOneMission(t, pool, ev)
			c.Drain(time.Minute)
			pool.mu.Lock()
			defer pool.mu.Unlock()
			want := []string(nil)
			if tc.giveBack {
				want = pool.acquireIDs[:1]
			}
			if !slices.Equal(pool.givenBack, want) {
				t.Errorf("given back by acquire ids %q (acquires %q); want %q", pool.givenBack, pool.acquireIDs, want)
			}
		})
	}
}

// giveUpOneMission runs a session of one claim whose Acquire fails as
// pool's first answer says, and checks the mission was given up without
// an account. A 2s claim leaves 1s to get an account: after the first
// try's error, the next wait (1s, or the pool's hour) is past it.
func giveUpOneMission(t *testing.T, pool LeaseClient, ev *events) *Checker {
	t.Helper()
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
	return c
}
