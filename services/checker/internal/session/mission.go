package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/sethvargo/go-retry"

	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// Per-call bounds on the other services' RPCs.
const (
	callTimeout = 10 * time.Second
	// minRetryWait keeps a pool that answers "retry in 0s" (an account
	// freeing this very moment) from being asked in a tight loop.
	minRetryWait = 50 * time.Millisecond
)

// unavailableWaits are the waits of acquire while AccountPool is
// unreachable: 1s doubling to 10s, for as long as the claim allows.
func unavailableWaits() retry.Backoff {
	return retry.WithCappedDuration(10*time.Second, retry.NewExponential(time.Second))
}

// callRetries are the waits of release and report while the other service
// is unreachable: three tries in all, 0.5s and 1s apart.
func callRetries() retry.Backoff {
	return retry.WithMaxRetries(2, retry.NewExponential(500*time.Millisecond))
}

// mission is one claim being worked on.
type mission struct {
	c       *Checker
	session int64
	claim   Claim
	window  claimWindow
	started time.Time
	res     MissionResult
	// askedAt is when the lease's TTL runs from, at the latest: the send
	// of the Acquire that got the answer, or, for a lease the pool granted
	// an earlier try whose answer was lost (a retry with the same
	// acquire_id gets that lease, its end unchanged), its ExpiresAt less
	// the TTL, on the pool's clock (leaseSkew allowed for). Not the first
	// send of all: the pool answers a retry with a lease only while it is
	// held, and a fresh one after an outage (refused or hanging) longer
	// than the TTL is good for its whole TTL.
	askedAt time.Time
	// acquireID names the mission's Acquire and its retries; answerLost
	// says one of them got no answer (ErrNoAnswer): the pool may have
	// leased an account to it, which finishUnchecked gives back when no
	// retry got that lease.
	acquireID  string
	answerLost bool
}

func (c *Checker) newMission(num int64, cl Claim, received time.Time) *mission {
	m := &mission{
		c: c, session: num, claim: cl, started: received,
		window: windowOf(received, c.cfg.ClaimTTL, cl.ExpiresAt),
		res:    MissionResult{Mission: cl.Mission, ClaimID: cl.ID},
	}
	c.mu.Lock()
	c.inFlight[cl.ID] = &InFlight{Session: num, Mission: cl.Mission, ClaimID: cl.ID, StartedAt: received}
	c.mu.Unlock()
	return m
}

func (m *mission) done() {
	m.c.mu.Lock()
	delete(m.c.inFlight, m.claim.ID)
	m.c.mu.Unlock()
}

// takeSlot waits for one of the checker's MaxConcurrent slots, until the
// claim's acquire deadline or the drain.
func (m *mission) takeSlot() bool {
	if m.c.isStopping() {
		m.giveUp(NoAccount, ErrStopping.Error())
		return false
	}
	select {
	case m.c.slots <- struct{}{}:
		return true
	default:
	}
	const busy = "the checker was busy with other missions until the claim's deadline for starting a check"
	wait := m.window.acquireBy.Sub(m.c.clock.Now())
	if wait <= 0 {
		m.giveUp(NoAccount, busy)
		return false
	}
	// A real timer: the deadline races the other checks, which run in
	// real time whatever the clock.
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case m.c.slots <- struct{}{}:
		return true
	case <-m.c.stopping:
		m.giveUp(NoAccount, ErrStopping.Error())
	case <-timer.C:
		m.giveUp(NoAccount, busy)
	}
	return false
}

func (m *mission) giveUp(out Outcome, detail string) {
	m.res.Outcome = out
	m.res.Detail = detail
}

// acquire leases an account, waiting as long as the pool says when none
// is free, within the claim's window. false means no lease; m.res says why.
func (m *mission) acquire() (Lease, bool) {
	c := m.c
	start := c.clock.Now()
	defer func() { c.metrics.AcquireWaited(c.clock.Now().Sub(start)) }()
	// One acquire_id for this mission's Acquire and all its retries: a
	// retry of one whose answer was lost gets the lease it granted. A
	// time-ordered UUID (version 7): the pool keeps every lease's id in a
	// unique index on its usage log, and ids that rise with time go in at
	// the index's end instead of on a random page each.
	m.acquireID = uuid.Must(uuid.NewV7()).String()
	req := AcquireRequest{Mission: m.claim.Mission, Holder: c.cfg.CheckerID, TTL: c.cfg.LeaseTTL, RequestIDs: requestIDs(m.claim.Requests),
		AcquireID: m.acquireID}
	if len(req.RequestIDs) == 0 {
		m.giveUp(NoAccount, "the claim holds no pending request: nothing to check")
		return Lease{}, false
	}
	// The wait for a free account follows the pool's RetryInfo (and the
	// test clock), so this loop is not retry.Do; only the waits while the
	// pool is unreachable come from a backoff.
	unavailable := unavailableWaits()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		sent := time.Now()
		lease, err := c.leases.Acquire(ctx, req)
		cancel()
		m.answerLost = m.answerLost || errors.Is(err, ErrNoAnswer)
		if err == nil {
			m.askedAt = sent
			if granted := lease.ExpiresAt.Add(-c.cfg.LeaseTTL); !lease.ExpiresAt.IsZero() && granted.Before(sent.Add(-leaseSkew)) {
				m.askedAt = granted.Add(-leaseSkew) // granted to an earlier try
			}
			c.mu.Lock()
			if f := c.inFlight[m.claim.ID]; f != nil {
				f.AccountID, f.AccountEmail = lease.AccountID, lease.Email
			}
			c.mu.Unlock()
			m.res.AccountID, m.res.AccountEmail = lease.AccountID, lease.Email
			return lease, true
		}

		var wait time.Duration
		var busy *NoAccountFreeError
		switch {
		case errors.As(err, &busy):
			m.res.RetryAfter = busy.RetryAfter
			c.log.Info("no account free", "session", m.session, "mission", m.claim.Mission,
				"retry_after", busy.RetryAfter.String(), "retry_after_ms", busy.RetryAfter.Milliseconds())
			wait = max(busy.RetryAfter, minRetryWait)
			if c.clock.Now().Add(wait).After(m.window.acquireBy) {
				m.giveUp(NoAccount, fmt.Sprintf("no account free before the claim's deadline for starting a check; the pool says the next frees in %s", busy.RetryAfter))
				return Lease{}, false
			}
		case errors.Is(err, ErrUnavailable):
			// Unreachable, or no answer in time (ErrNoAnswer: the pool
			// may have leased an account and the answer been lost): ask
			// again with the same acquire_id, which gets that lease
			// rather than a second account.
			wait, _ = unavailable.Next()
			c.log.Warn("account pool unavailable; retrying", "session", m.session, "mission", m.claim.Mission, "in", wait.String(), "err", err)
			if c.clock.Now().Add(wait).After(m.window.acquireBy) {
				m.giveUp(NoAccount, fmt.Sprintf("account pool unavailable: %v", err))
				return Lease{}, false
			}
		default:
			m.giveUp(NoAccount, fmt.Sprintf("acquire: %v", err))
			return Lease{}, false
		}
		select {
		case <-c.stopping:
			m.giveUp(NoAccount, ErrStopping.Error()+" (was waiting for an account)")
			return Lease{}, false
		case <-c.clock.After(wait):
		}
	}
}

// finishUnchecked ends a mission whose check did not run, with the
// outcome and detail m.res holds: the claim is reported FAILED so that it
// does not linger, and a lease it got too late to use (lease not nil; its
// answer came after the lease's end: the pool may lease the account again,
// and the check must not begin) is released unused, which the pool
// refuses without harm if it has ended the lease already, and which
// otherwise spares the account a lease_expired failure. A mission that got
// no account logs at Info with the pool's last retry delay; one that
// hands a lease back logs at Warn, with the account.
func (m *mission) finishUnchecked(lease *Lease) MissionResult {
	defer m.done()
	c := m.c
	var accountID int64
	if lease != nil {
		accountID = lease.AccountID
	}
	if lease == nil && m.answerLost {
		m.giveBack()
	}
	m.res.Matched = m.report(reportOf(m.claim, accountID, m.res.Outcome, "", 0, nil, m.res.Detail))
	if lease != nil {
		m.release(*lease, Release{Outcome: m.res.Outcome, Detail: truncate(m.res.Detail, apirule.MaxReleaseDetailLen), RequestIDs: requestIDs(m.claim.Requests)})
	}
	m.res.Duration = c.clock.Now().Sub(m.started)
	attrs := []any{"session", m.session, "mission", m.claim.Mission, "claim", m.claim.ID}
	if lease != nil {
		attrs = append(attrs, "account_id", lease.AccountID, "outcome", string(m.res.Outcome), "detail", m.res.Detail)
		c.log.Warn("mission not checked", attrs...)
	} else {
		attrs = append(attrs, "outcome", string(m.res.Outcome), "detail", m.res.Detail,
			"retry_after", m.res.RetryAfter.String(), "retry_after_ms", m.res.RetryAfter.Milliseconds())
		c.log.Info("mission not checked", attrs...)
	}
	c.metrics.CheckFinished(m.claim.Mission, m.res.Outcome, 0)
	return m.res
}

// giveBackTimeout bounds a giveBack's one try.
const giveBackTimeout = 3 * time.Second

// giveBack gives back the lease an Acquire of this mission may have been
// granted with its answer lost, so that the account does not sit leased to
// no one until the lease's end and then count a lease_expired failure. It
// runs before the claim's report, so the account is free as soon as it
// can be, and the session (RunSession, Drain) ends after it. One try,
// bounded by giveBackTimeout and not retried: it is one more call to a
// pool that may be overloaded already, and a lease it misses still ends
// at its expiry.
func (m *mission) giveBack() {
	c := m.c
	ctx, cancel := context.WithTimeout(context.Background(), giveBackTimeout)
	defer cancel()
	err := c.leases.GiveBack(ctx, m.acquireID, "the checker lost the Acquire's answer and gave the mission up")
	attrs := []any{"session", m.session, "mission", m.claim.Mission, "acquire_id", m.acquireID}
	switch {
	case err == nil:
		c.log.Info("lease of an Acquire whose answer was lost given back", attrs...)
	case errors.Is(err, ErrNoLease):
	case errors.Is(err, ErrLeaseLost):
		c.log.Info("the lease of an Acquire whose answer was lost had ended already (expired, or released)", attrs...)
	case errors.Is(err, ErrUnavailable):
		// The pool is unreachable or slow, as it was for the Acquire:
		// most often nothing was leased.
		c.log.Info("could not give back the lease of an Acquire whose answer was lost: the pool did not answer; a lease it granted, if any, ends at its expiry",
			append(attrs, "err", err)...)
	default:
		c.log.Warn("giving back the lease of an Acquire whose answer was lost failed; the pool takes it back when the lease expires",
			append(attrs, "err", err)...)
	}
}

// check runs the browser check under the lease, then reports and
// releases.
func (m *mission) check(lease Lease) MissionResult {
	if late := time.Since(m.askedAt); late >= m.c.cfg.LeaseTTL {
		m.giveUp(Unused, fmt.Sprintf("not checked: the account pool's answer came %s after Acquire was sent, past the lease's %s (the pool may lease the account again)",
			late.Round(time.Millisecond), m.c.cfg.LeaseTTL))
		return m.finishUnchecked(&lease)
	}
	defer m.done()
	c := m.c
	// The check ends at the claim's deadline, when the lease is found
	// lost, or when the drain's grace is over.
	ctx, cancel := context.WithCancelCause(c.hard)
	defer cancel(nil)
	ctx, cancelDeadline := context.WithTimeoutCause(ctx, m.window.checkBy.Sub(c.clock.Now()), errClaimDeadline)
	defer cancelDeadline()
	stopRenew := m.renewWhileChecking(lease, cancel)

	queries := queriesOf(m.claim.Requests)
	acct := portal.Account{Email: lease.Email, Password: lease.Password, Session: lease.SessionState, NoLogin: lease.NoLogin}
	// The pause stops claims; a check claimed before it still asks, right
	// before its first request to the portal, whether it may go.
	var claimLost bool
	gate := func(ctx context.Context) error {
		if err := c.wallsReported(ctx); err != nil {
			return err
		}
		err := retryUnavailable(ctx, callRetries(), func(ctx context.Context) error { return c.missions.ConfirmClaim(ctx, m.claim.ID) })
		claimLost = errors.Is(err, ErrClaimLost)
		return err
	}
	res, err := c.driver.CheckMission(ctx, acct, m.claim.Mission, queries, gate)

	out := outcomeOf(res)
	detail := detailOf(res)
	if err != nil {
		switch {
		case out == Unused: // an account that never reached the portal is not charged
		case res.Reason == portal.ReasonBrowser && !errors.Is(context.Cause(ctx), ErrLeaseLost) &&
			!errors.Is(context.Cause(ctx), errClaimDeadline):
			// Cut short by slotwatch, not by the portal: the drain's
			// grace ended the check mid-step, or the browser failed. Not
			// the account's failure. The claim's deadline is: a portal
			// too slow or hanging for the claim ran the check out, and
			// accounts sent to it must still add up to a quarantine.
			out = Aborted
		default:
			out = Error
		}
		if cause := context.Cause(ctx); cause != nil {
			detail = fmt.Sprintf("%v (%s)", cause, detail)
		}
	}
	// Report first: Requests' answer (how many requests the slots made
	// SLOT_FOUND) decides whether the pool hears success or no_slot. A
	// report that fails counts as no match; both outcomes rest the account
	// alike. The lease is renewed until the report is in. A claim Requests
	// refused at the gate is over already: nothing to report.
	if !claimLost {
		rep := reportOf(m.claim, lease.AccountID, out, res.Reason, res.RetryAfter, res.Slots, detail)
		if rep.SlotsCut > 0 {
			c.log.Warn("report holds some of the slots read", "session", m.session, "mission", m.claim.Mission,
				"claim", m.claim.ID, "slots_reported", len(rep.Slots), "slots_cut", rep.SlotsCut)
		}
		var reported func()
		if rep.Outcome.Wall() {
			reported = c.reportingWall()
		}
		m.res.Matched = m.report(rep)
		if reported != nil {
			reported()
		}
	}
	stopRenew()
	out = withMatches(out, m.res.Matched)
	m.res.Outcome, m.res.Detail, m.res.Slots, m.res.Duration = out, detail, len(res.Slots), res.Duration
	m.res.LoggedIn, m.res.SessionReused = res.Login, res.SessionReused

	if !errors.Is(context.Cause(ctx), ErrLeaseLost) {
		r := Release{Outcome: out, Detail: truncate(detail, apirule.MaxReleaseDetailLen), RequestIDs: requestIDs(m.claim.Requests)}
		m.release(lease, withSession(r, res))
	}

	c.log.Info("check finished", "session", m.session, "mission", m.claim.Mission, "claim", m.claim.ID,
		"account_id", lease.AccountID, "account_email", lease.Email, "outcome", string(out),
		"slots", m.res.Slots, "matched", m.res.Matched, "duration_ms", res.Duration.Milliseconds(),
		"logged_in", res.Login, "session_reused", res.SessionReused, "detail", detail)
	c.metrics.CheckFinished(m.claim.Mission, out, res.Duration)
	if res.Login {
		c.metrics.LoggedIn(m.claim.Mission)
	}
	return m.res
}

// withSession adds to a release what the check did with the portal
// session: whether it logged in, and the session to keep, or that the
// session is over. LOGIN_FAIL and BANNED clear it in the pool anyway and
// take neither.
func withSession(r Release, res portal.Result) Release {
	if r.Outcome == Unused {
		// No login, nothing to keep; a session found dead is forgotten
		// (a called-off check found none dead: the kept one stands).
		r.ClearSession = res.SessionEnded
		return r
	}
	r.LoggedIn = res.Login
	if res.RetryAfter > 0 {
		r.RetryAfter = min(max(res.RetryAfter, apirule.MinPortalRetryAfter), apirule.MaxPortalRetryAfter)
	}
	if r.Outcome == LoginFail || r.Outcome == Banned {
		return r
	}
	switch {
	case len(res.Session) > 0:
		r.SessionState, r.SessionMaxAge = res.Session, res.SessionMaxAge
	case res.SessionEnded:
		r.ClearSession = true
	}
	return r
}

// leaseSkew is how far the pool's clock may run apart from the Checker's
// when a lease's ExpiresAt tells that it was granted to an earlier try:
// only a grant more than that before this try's send counts as one, and
// it counts from that much earlier still. The pool leases an expired
// lease's account again only after its expiry grace.
const leaseSkew = time.Second

var errClaimDeadline = errors.New("the claim ran out before the check finished")

// renewWhileChecking renews the lease at half its length until stopped.
// When the pool says the lease is lost, or the lease has run out without
// a renewal getting through (the pool unreachable: it lets the lease
// expire and may lease the account again), it ends the check with
// ErrLeaseLost.
func (m *mission) renewWhileChecking(lease Lease, endCheck context.CancelCauseFunc) (stop func()) {
	c := m.c
	ttl := c.cfg.LeaseTTL
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		// The lease's end by this checker's clock: ttl from when it was
		// last granted, counted from no later than that: from when the
		// Acquire or the Renew was sent (the pool's expires_at is by its
		// own clock). An Acquire's answer may come late, so the first
		// renewal is at half of what is left.
		until := m.askedAt.Add(ttl)
		next := min(ttl/2, time.Until(until)/2)
		for {
			timer := time.NewTimer(next)
			select {
			case <-quit:
				timer.Stop()
				return
			case <-timer.C:
			}
			sent := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), min(callTimeout, ttl/2, max(until.Sub(sent), time.Millisecond)))
			renewed, err := c.leases.Renew(ctx, lease, ttl)
			cancel()
			switch {
			case err == nil:
				until, next = sent.Add(ttl), ttl/2
				c.log.Debug("lease renewed", "mission", m.claim.Mission, "account_id", lease.AccountID, "until", renewed)
			case errors.Is(err, ErrLeaseLost):
				c.log.Warn("lease lost during the check; ending it", "session", m.session, "mission", m.claim.Mission,
					"account_id", lease.AccountID, "err", err)
				endCheck(ErrLeaseLost)
				return
			case !time.Now().Before(until):
				c.log.Warn("the lease ran out while it could not be renewed; ending the check", "session", m.session,
					"mission", m.claim.Mission, "account_id", lease.AccountID, "err", err)
				endCheck(fmt.Errorf("%w: it ran out while renewing it failed (%v)", ErrLeaseLost, err))
				return
			default:
				// Try again soon, while the lease lasts.
				next = min(time.Second, ttl/8, until.Sub(time.Now()))
				c.log.Warn("renewing the lease failed; retrying", "mission", m.claim.Mission, "account_id", lease.AccountID, "err", err)
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// release ends the lease, retrying while AccountPool is unreachable (a
// retried Release with the same outcome is answered once).
func (m *mission) release(lease Lease, r Release) {
	c := m.c
	err := retryUnavailable(c.hard, callRetries(), func(ctx context.Context) error { return c.leases.Release(ctx, lease, r) })
	if err != nil {
		c.log.Warn("releasing the account failed; the pool takes it back when the lease expires", "session", m.session,
			"mission", m.claim.Mission, "account_id", lease.AccountID, "outcome", string(r.Outcome), "err", err)
	}
}

// report ends the claim and returns how many requests matched.
func (m *mission) report(r Report) int {
	c := m.c
	var matched int
	err := retryUnavailable(c.hard, callRetries(), func(ctx context.Context) error {
		var err error
		matched, err = c.missions.ReportCheckResult(ctx, r)
		return err
	})
	if err != nil {
		c.log.Warn("reporting the check failed; the claim lapses at its expiry", "session", m.session,
			"mission", m.claim.Mission, "claim", m.claim.ID, "report_outcome", string(r.Outcome), "err", err)
	}
	return matched
}

// retryUnavailable runs call, again while it fails with ErrUnavailable as
// long as b allows, each try bounded by callTimeout. The first try runs
// even when ctx has ended: a check the drain cut (c.hard) still releases
// and reports, once. Further tries stop the moment ctx ends, with its
// cause; a try under way is not cut.
func retryUnavailable(ctx context.Context, b retry.Backoff, call func(ctx context.Context) error) error {
	try := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		defer cancel()
		return call(ctx)
	}
	if ctx.Err() != nil {
		return try(ctx)
	}
	return retry.Do(ctx, b, func(ctx context.Context) error {
		err := try(ctx)
		if errors.Is(err, ErrUnavailable) {
			return retry.RetryableError(err)
		}
		return err
	})
}
