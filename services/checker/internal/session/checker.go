// Package session runs the checker's sessions (DESIGN §1). A session
// claims the missions that are due from Requests, then for each claim, at
// most MaxConcurrent at once: leases an account from AccountPool, logs in
// and reads the slots with the browser driver, reports the result to
// Requests, and releases the account with the outcome.
//
// The rules a reader may look for:
//
//   - Accounts are leased one claim after the other, in the order of
//     orderClaims, and the checks run side by side. Which mission gets
//     which account therefore follows from the data (the pool hands out
//     the least recently used account), not from goroutine scheduling.
//   - When the pool has no account free (RESOURCE_EXHAUSTED), the mission
//     waits exactly the delay the pool gives (RetryInfo), then asks again,
//     as long as the account would free while half the claim is still
//     left (see windowOf). Otherwise it does not sit on the claim: it
//     reports FAILED ("no account free") right away, so the claim ends
//     cleanly and the mission is due again for any checker, and the loop
//     pauses until the pool said an account frees. An Acquire is asked
//     again while the pool is unreachable, never after it got no answer
//     in time: it may have leased an account, and a second lease would
//     orphan the first; the claim is reported FAILED instead.
//   - Which slots a request asks for is Requests' rule, not the
//     checker's: a check that read the calendar is released as success
//     only when Requests answers the report with at least one request
//     made SLOT_FOUND, and as no_slot otherwise.
//   - Long checks renew their lease at half its length. A lease found lost,
//     or run out while AccountPool could not be reached to renew it, ends
//     the check at once: the account may be someone else's by now.
//   - Right before its first request to the portal, a check asks Requests
//     whether its claim may still go (ConfirmClaim): a portal paused since
//     the claim calls it off, and the account is released unused. While a
//     wall (CAPTCHA, block, rate limit, maintenance) one of this checker's
//     checks met is being reported, the other checks wait at that point for the
//     report to be in, so that they ask after the pause it may make (the
//     checker runs one profile: one portal).
//   - Drain (SIGTERM) stops claiming and waiting; checks that are running
//     finish (or are cut after a grace time), report and release, so a
//     clean stop leaves no lease and no claim behind.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// Defaults of Config.
const (
	DefaultMaxConcurrent = 5
	DefaultClaimTTL      = 5 * time.Minute
	DefaultLeaseTTL      = 2 * time.Minute
	DefaultInterval      = 10 * time.Second
	DefaultHistory       = 20
)

// Config configures a Checker. Zero fields take the defaults.
type Config struct {
	// CheckerID names this checker to Requests (claims) and AccountPool
	// (lease holder).
	CheckerID string
	// MaxConcurrent bounds the checks running at once in this checker,
	// across sessions (MAX_CONCURRENT_MISSIONS).
	MaxConcurrent int
	// ClaimBatch is how many missions a session claims: twice
	// MaxConcurrent by default, so the next claims are ready when a check
	// ends (at most 100, Requests' limit).
	ClaimBatch int
	// ClaimTTL is the claim length asked of Requests (CHECKER_CLAIM_TTL).
	ClaimTTL time.Duration
	// LeaseTTL is the lease length asked of AccountPool, renewed at half
	// (CHECKER_LEASE_TTL).
	LeaseTTL time.Duration
	// Interval is the loop's pause after a session that found nothing due
	// (CHECKER_SESSION_INTERVAL).
	Interval time.Duration
	// History is how many finished sessions Status keeps.
	History int
	// Ready, if set, says whether checks can run now (the browser starts);
	// while it returns an error, the loop claims nothing and RunSession
	// fails with ErrNotReady.
	Ready   func() error
	Logger  *slog.Logger
	Metrics Metrics
	Clock   Clock
}

// ErrNotReady: the checker cannot check now (the browser does not start).
var ErrNotReady = errors.New("checker not ready")

// Metrics receives what the session sees; package metrics implements it.
type Metrics interface {
	// CheckFinished counts one mission's result; d is the check's time
	// (zero for NoAccount).
	CheckFinished(mission string, outcome Outcome, d time.Duration)
	// AcquireWaited observes the time from the first Acquire to the lease
	// or to giving up.
	AcquireWaited(d time.Duration)
	// LoggedIn counts a check that logged in to the portal (the others
	// reused a kept session).
	LoggedIn(mission string)
}

// Clock is the time the session waits by. Tests pass one that does not
// really sleep.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

type noMetrics struct{}

func (noMetrics) CheckFinished(string, Outcome, time.Duration) {}
func (noMetrics) AcquireWaited(time.Duration)                  {}
func (noMetrics) LoggedIn(string)                              {}

// MissionResult is how one claimed mission went.
type MissionResult struct {
	Mission      string
	ClaimID      string
	AccountID    int64 // 0 when no account was leased
	AccountEmail string
	Outcome      Outcome
	Slots        int // free slots seen
	Matched      int // requests that became SLOT_FOUND
	Detail       string
	// Duration is the check's time; for NoAccount the time spent waiting.
	Duration time.Duration
	// RetryAfter is the last delay the pool gave when no account was free.
	RetryAfter time.Duration
	// LoggedIn: the check logged in to the portal. SessionReused: it ran
	// on the account's kept portal session, without a login.
	LoggedIn      bool
	SessionReused bool
}

// Summary is a finished session.
type Summary struct {
	Number     int64
	StartedAt  time.Time
	FinishedAt time.Time
	Results    []MissionResult
}

// InFlight is a claimed mission not finished yet.
type InFlight struct {
	Session      int64
	Mission      string
	ClaimID      string
	AccountID    int64 // 0 while waiting for an account
	AccountEmail string
	StartedAt    time.Time
}

// Status is the checker's state for operators.
type Status struct {
	CheckerID string
	InFlight  []InFlight
	// Recent sessions, newest first.
	Recent []Summary
}

// Checker runs sessions. It is safe for concurrent use: RunSession may
// run alongside Loop.
type Checker struct {
	cfg      Config
	leases   LeaseClient
	missions MissionClient
	driver   Driver
	log      *slog.Logger
	metrics  Metrics
	clock    Clock

	slots chan struct{} // MaxConcurrent tokens

	// stopping closes when Drain begins: no new session, no more waiting.
	stopping chan struct{}
	// hard ends checks still running when the drain's grace is over.
	hard       context.Context
	hardCancel context.CancelCauseFunc
	sessions   sync.WaitGroup

	// wallsPending counts this checker's reports of walls not answered
	// yet; wallsQuiet is closed while there are none.
	wallsMu      sync.Mutex
	wallsPending int
	wallsQuiet   chan struct{}

	mu       sync.Mutex
	stopped  bool
	number   int64
	inFlight map[string]*InFlight // by claim id
	recent   []Summary
}

// New returns a Checker.
func New(cfg Config, leases LeaseClient, missions MissionClient, driver Driver) *Checker {
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.ClaimBatch <= 0 {
		cfg.ClaimBatch = 2 * cfg.MaxConcurrent
	}
	cfg.ClaimBatch = min(cfg.ClaimBatch, apirule.MaxMissionsPerClaim)
	if cfg.ClaimTTL <= 0 {
		cfg.ClaimTTL = DefaultClaimTTL
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	hard, cancel := context.WithCancelCause(context.Background())
	quiet := make(chan struct{})
	close(quiet)
	return &Checker{
		cfg: cfg, leases: leases, missions: missions, driver: driver,
		log: cfg.Logger, metrics: cfg.Metrics, clock: cfg.Clock,
		slots:    make(chan struct{}, cfg.MaxConcurrent),
		stopping: make(chan struct{}),
		hard:     hard, hardCancel: cancel,
		inFlight:   map[string]*InFlight{},
		wallsQuiet: quiet,
	}
}

// begin registers a session unless the checker is stopping.
func (c *Checker) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return ErrStopping
	}
	c.sessions.Add(1)
	return nil
}

// RunSession runs one session now and returns it when every claimed
// mission is released and reported. max bounds the missions claimed (0:
// the checker's ClaimBatch). The session does not end with ctx: once
// missions are claimed they are seen through, so that a caller going away
// leaves no lease or claim behind; the result is then in Status.
func (c *Checker) RunSession(ctx context.Context, max int) (Summary, error) {
	if err := c.begin(); err != nil {
		return Summary{}, err
	}
	defer c.sessions.Done()
	if err := c.ready(); err != nil {
		return Summary{}, err
	}
	if err := ctx.Err(); err != nil {
		return Summary{}, err
	}
	sum, _, err := c.session(max, true)
	return sum, err
}

func (c *Checker) ready() error {
	if c.cfg.Ready == nil {
		return nil
	}
	if err := c.cfg.Ready(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return nil
}

// Loop runs sessions until ctx ends or Drain begins. After a session that
// checked something it claims again at once; after one that found
// nothing due it pauses Interval; after one where the pool had no account
// free it pauses until the pool said one frees.
func (c *Checker) Loop(ctx context.Context) {
	for {
		if err := c.begin(); err != nil {
			return
		}
		pause := c.loopOnce()
		c.sessions.Done()
		if !c.sleep(ctx, pause) {
			return
		}
	}
}

func (c *Checker) loopOnce() time.Duration {
	if err := c.ready(); err != nil {
		// Whatever keeps the checker from being ready logs it; look again
		// soon.
		c.log.Debug("not checking: not ready", "err", err)
		return min(c.cfg.Interval, time.Second)
	}
	sum, claimed, err := c.session(0, false)
	if err != nil {
		c.log.Warn("claiming due missions failed", "err", err)
		return c.cfg.Interval
	}
	if claimed == 0 {
		return c.cfg.Interval
	}
	var wait time.Duration
	for _, r := range sum.Results {
		if r.Outcome == NoAccount && r.RetryAfter > 0 && (wait == 0 || r.RetryAfter < wait) {
			wait = r.RetryAfter
		}
	}
	return wait
}

func (c *Checker) isStopping() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// sleep waits d; false means ctx ended or the checker is stopping.
func (c *Checker) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-ctx.Done():
			return false
		case <-c.stopping:
			return false
		default:
			return true
		}
	}
	select {
	case <-ctx.Done():
		return false
	case <-c.stopping:
		return false
	case <-c.clock.After(d):
		return true
	}
}

// session claims and runs one session. Without always, a session that
// claims nothing gets no number and no log line (the loop's idle passes).
func (c *Checker) session(max int, always bool) (Summary, int, error) {
	if max <= 0 {
		max = c.cfg.ClaimBatch
	}
	started := c.clock.Now()
	// The claim is not tied to the caller: a claim the server made but the
	// caller never saw would only lapse.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	claims, err := c.missions.ClaimDueMissions(ctx, c.cfg.CheckerID, min(max, apirule.MaxMissionsPerClaim), c.cfg.ClaimTTL)
	cancel()
	received := c.clock.Now()
	if err != nil {
		return Summary{}, 0, fmt.Errorf("claim due missions: %w", err)
	}
	if len(claims) == 0 && !always {
		return Summary{}, 0, nil
	}
	c.mu.Lock()
	c.number++
	num := c.number
	c.mu.Unlock()
	missions := make([]string, len(claims))
	orderClaims(claims)
	for i, cl := range claims {
		missions[i] = cl.Mission
	}
	c.log.Info("session started", "session", num, "missions", len(claims), "mission_codes", missions)

	results := c.runClaims(num, claims, received)

	sum := Summary{Number: num, StartedAt: started, FinishedAt: c.clock.Now(), Results: results}
	checks := 0
	for _, r := range results {
		if r.AccountID != 0 {
			checks++
		}
	}
	c.log.Info("session finished", "session", num, "checks", checks, "missions", len(results),
		"duration_ms", sum.FinishedAt.Sub(started).Milliseconds())
	c.mu.Lock()
	c.recent = append([]Summary{sum}, c.recent...)
	if len(c.recent) > c.cfg.History {
		c.recent = c.recent[:c.cfg.History]
	}
	c.mu.Unlock()
	return sum, len(claims), nil
}

// runClaims leases accounts for the claims in order and runs their checks
// side by side, at most MaxConcurrent at once in the whole checker.
func (c *Checker) runClaims(num int64, claims []Claim, received time.Time) []MissionResult {
	ms := make([]*mission, len(claims))
	for i, cl := range claims {
		ms[i] = c.newMission(num, cl, received)
	}
	results := make([]MissionResult, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		if !m.takeSlot() {
			results[i] = m.finishUnchecked(nil)
			continue
		}
		lease, ok := m.acquire()
		if !ok {
			<-c.slots
			results[i] = m.finishUnchecked(nil)
			continue
		}
		wg.Go(func() {
			defer func() { <-c.slots }()
			results[i] = m.check(lease)
		})
	}
	wg.Wait()
	return results
}

// Status returns the missions in flight and the recent sessions.
func (c *Checker) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{CheckerID: c.cfg.CheckerID, Recent: slices.Clone(c.recent)}
	for _, f := range c.inFlight {
		st.InFlight = append(st.InFlight, *f)
	}
	slices.SortFunc(st.InFlight, func(a, b InFlight) int { return a.StartedAt.Compare(b.StartedAt) })
	return st
}

// InFlightCount is the number of missions in flight (Status, counted only).
func (c *Checker) InFlightCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inFlight)
}

// Drain stops the checker: no new session is started and missions waiting
// for a slot or an account give up (reporting FAILED); checks running now
// finish, or are cut when grace is over (their accounts are released
// aborted: no failure of the account). It returns when every session has released and reported
// everything it held.
func (c *Checker) Drain(grace time.Duration) {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.stopping)
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.sessions.Wait(); close(done) }()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
	}
	c.log.Warn("stopping: checks still running after the grace time are cut", "grace", grace)
	c.hardCancel(errCut)
	<-done
}

var errCut = errors.New("the checker stopped before the check finished")

// reportingWall marks a wall being reported until the returned func runs.
func (c *Checker) reportingWall() (done func()) {
	c.wallsMu.Lock()
	if c.wallsPending == 0 {
		c.wallsQuiet = make(chan struct{})
	}
	c.wallsPending++
	c.wallsMu.Unlock()
	return func() {
		c.wallsMu.Lock()
		defer c.wallsMu.Unlock()
		if c.wallsPending--; c.wallsPending == 0 {
			close(c.wallsQuiet)
		}
	}
}

// wallsReported returns once no wall of this checker is being reported,
// or with ctx's error.
func (c *Checker) wallsReported(ctx context.Context) error {
	c.wallsMu.Lock()
	quiet := c.wallsQuiet
	c.wallsMu.Unlock()
	select {
	case <-quiet:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
