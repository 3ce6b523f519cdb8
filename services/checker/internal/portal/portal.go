// Package portal is the checker's browser driver: in a fresh browser
// context it runs the profile's flows (engine.go): the login flow with a
// pool account, the check flow once per centre and visa category of the
// mission, reading the slots, and the logout flow (after returning the
// result). Every page a step loads is classified by the profile's markers,
// and what the driver sees ends in an Outcome the account pool understands
// (success, no_slot, login_fail, banned, error).
//
// Everything portal-specific (flows, URLs, selectors, page markers,
// timeouts, timezone) comes from a profile.Profile. The driver solves no CAPTCHA and does not
// disguise the browser: a CAPTCHA, block or rate-limit page is an outcome,
// and the pool backs off.
package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
)

// Account is a portal login. Its password never appears in logs or
// formatted output: String, Format and LogValue show the email only.
type Account struct {
	Email    string
	Password string
	// Session is the portal session state a check of the account kept
	// (see sessionstate.go); with it the check goes straight to the check
	// flow and logs in only when the portal logged the session out.
	Session []byte
	// NoLogin says the account must not log in (its login budget is
	// spent): a check with no live session ends with ReasonLoginBudget.
	NoLogin bool
}

// String shows the email only.
func (a Account) String() string { return a.Email }

// Format keeps %v, %+v and %#v from printing the password.
func (a Account) Format(f fmt.State, _ rune) { _, _ = fmt.Fprintf(f, "Account{Email: %q}", a.Email) }

// LogValue keeps slog from printing the password.
func (a Account) LogValue() slog.Value { return slog.StringValue(a.Email) }

// Target is one mission, centre and visa category to check.
type Target struct {
	Mission      string
	Centre       string
	VisaCategory string
}

// Query is one centre and visa category of a mission.
type Query struct {
	Centre       string
	VisaCategory string
}

// Outcome is how a check ended, in the account pool's terms.
type Outcome string

// The outcomes; the strings are the ones CheckerService reports.
const (
	Success   Outcome = "success"    // logged in and found at least one slot
	NoSlot    Outcome = "no_slot"    // logged in, read the dates, none free
	LoginFail Outcome = "login_fail" // the portal refused the credentials
	Banned    Outcome = "banned"     // blocked, rate limited or CAPTCHA: back off
	Error     Outcome = "error"      // anything else: portal down, unknown page, timeout, browser
)

// Reason is the specific cause behind an outcome other than success and
// no_slot.
type Reason string

// The reasons.
const (
	ReasonBadCredentials  Reason = "bad_credentials"  // LoginFail
	ReasonBlocked         Reason = "blocked"          // Banned
	ReasonRateLimited     Reason = "rate_limited"     // Banned
	ReasonCaptcha         Reason = "captcha"          // Banned
	ReasonMaintenance     Reason = "maintenance"      // Error
	ReasonServerError     Reason = "server_error"     // Error: HTTP 5xx with no known page
	ReasonUnreachable     Reason = "unreachable"      // Error: connection refused, DNS...
	ReasonTimeout         Reason = "timeout"          // Error: a step took longer than its timeout
	ReasonUnknownPage     Reason = "unknown_page"     // Error: no marker matched; see Artifacts
	ReasonLoggedOut       Reason = "logged_out"       // Error: the portal dropped the session
	ReasonSlotsFailed     Reason = "slots_failed"     // Error: the page said loading dates failed
	ReasonUnreadableSlots Reason = "unreadable_slots" // Error: slot elements without a valid date
	ReasonProfile         Reason = "profile"          // Error: the profile does not fit the portal
	ReasonBrowser         Reason = "browser"          // Error: the browser failed, not the portal
	ReasonLoginBudget     Reason = "login_budget"     // Error: the session was dead and the account may not log in
	ReasonCalledOff       Reason = "called_off"       // Error: the Gate said no; nothing was sent to the portal
)

// Gate is asked right before a check's first request to the portal (after
// the browser context is ready and a kept session restored into it). An
// error calls the check off: it ends with ReasonCalledOff, having sent the
// portal nothing. The Checker's gate asks Requests whether the claim's
// portal is still not paused (ConfirmClaim).
type Gate func(ctx context.Context) error

// Slot is one free appointment the portal showed.
type Slot struct {
	Mission      string
	Centre       string
	VisaCategory string
	Date         string // YYYY-MM-DD
	Time         string // HH:MM, or empty when the portal shows days only
}

// QueryResult is what one centre and category gave.
type QueryResult struct {
	Query
	// Offered is false when the slot page has no such centre or category:
	// the query was not checked.
	Offered bool
	// Checked is true once the dates were read.
	Checked bool
	Slots   int
}

// Artifacts are what the driver saved of a page it could not make sense
// of, for an operator to look at.
type Artifacts struct {
	Dir        string
	Screenshot string // PNG
	HTML       string
}

// Result is a finished check.
type Result struct {
	Outcome Outcome
	Reason  Reason
	// Detail says what happened in words, for logs and operators. It never
	// holds the password.
	Detail string
	// Step is where the check ended: login_page, login, slot_page, slots
	// or done.
	Step string
	// URL is the page the check ended on, without user info, query string
	// or fragment, which may carry tokens.
	URL string
	// Slots are every free slot read, across the queries; kept even when a
	// later query ended the check with another outcome.
	Slots   []Slot
	Queries []QueryResult
	// LoggedIn is true when the login succeeded. The logout then runs
	// after the result is returned.
	LoggedIn bool
	// Login is true when the check ran the login flow (an attempt counts,
	// as the portal counts it); false when it reused the session state.
	Login bool
	// SessionReused is true when the check ran on the restored session
	// state without logging in.
	SessionReused bool
	// Session is the portal session state after the check, when the
	// profile keeps it (logout: keep_session) and the check ended logged
	// in; nil otherwise.
	Session []byte
	// SessionMaxAge is how long Session may be reused: the profile's
	// session_max_age, 0 for the pool's default.
	SessionMaxAge time.Duration
	// SessionEnded is true when the portal session is over: the portal
	// logged it out, or the check logs out (the profile does not keep it).
	SessionEnded bool
	Artifacts    *Artifacts
	// Duration is from the call to the result; the logout and the tab's
	// teardown come after it.
	Duration time.Duration
	// RetryAfter is the longest Retry-After of a 429 or 503 answer of the
	// portal during the check (a page, or a json extract's endpoint); 0
	// when none. It is the portal's own cooldown hint.
	RetryAfter time.Duration
}

// Verdict says whether the check reached the portal's answer about the
// account or the calendar (success, no_slot, login_fail, banned): it
// stands even when the check's context ended after it.
func (r Result) Verdict() bool {
	return r.Outcome == Success || r.Outcome == NoSlot || r.Outcome == LoginFail || r.Outcome == Banned
}

// Config configures a Driver.
type Config struct {
	Profile *profile.Profile
	Browser *browser.Manager
	// ArtifactsDir receives what checks knew of the pages they could not
	// make sense of (CHECKER_ARTIFACTS_DIR); default
	// $TMPDIR/slotwatch-artifacts.
	ArtifactsDir string
	// ArtifactsMaxBytes caps what one check saves
	// (CHECKER_ARTIFACTS_MAX_BYTES, default DefaultArtifactsMaxBytes): the
	// HTML is cut to fit, the screenshot left out when it does not.
	ArtifactsMaxBytes int64
	// ArtifactsTotalBytes caps the disk (blocks, not lengths) the check folders take
	// (CHECKER_ARTIFACTS_TOTAL_BYTES, default DefaultArtifactsTotalBytes):
	// the oldest checks' folders are deleted first to make room.
	ArtifactsTotalBytes int64
	// ArtifactsMaxAge is how long a check's folder is kept
	// (CHECKER_ARTIFACTS_MAX_AGE, default DefaultArtifactsMaxAge).
	ArtifactsMaxAge time.Duration
	// ArtifactsPages keeps the page's HTML and a screenshot with each
	// check's artifacts (CHECKER_ARTIFACTS_PAGES, off by default): a page
	// can show an applicant's personal data and the session's tokens.
	ArtifactsPages bool
	Logger         *slog.Logger
	// Pages counts the pages the checks classified (the drift metric);
	// nil counts nothing.
	Pages PageCounter
	// Trace, when set, is told of every step, and a screenshot and the
	// HTML of the page after each step (the password redacted) are saved
	// in TraceDir: checker profile try.
	Trace    func(StepTrace)
	TraceDir string
}

// StepTrace is one step a check ran, for Config.Trace.
type StepTrace struct {
	Flow, Step, Kind string
	Took             time.Duration
	// Page is what the step saw: the kind of the page it loaded, "ready"
	// when its wait was met, a trouble kind, or "then"/"else" for a
	// branch; "" when it looked at nothing.
	Page string
	// Slots are what the step extracted.
	Slots []Slot
	// End is "" when the flow went on, else how it ended ("not offered",
	// or outcome/reason: detail).
	End              string
	HTML, Screenshot string
}

// PageCounter counts classified pages by profile, step and kind: a kind
// of page (captcha, blocked, rate_limited, maintenance, bad_credentials,
// logged_out, logged_in), a marker the step expected, "server_error" or
// "unknown". Every label value comes from the profile, none from a page.
type PageCounter interface {
	PageClassified(profile, step, kind string)
}

// ProfileStatus is what the checks of a profile saw lately.
type ProfileStatus struct {
	Profile string
	// LastUnknown is the artifacts folder of the last page no marker
	// recognised ("" when none yet), seen at LastUnknownAt on step
	// LastUnknownStep.
	LastUnknown     string
	LastUnknownAt   time.Time
	LastUnknownStep string
}

// Driver checks slots through the shared browser. It is safe for
// concurrent use: each check runs in its own tab and browser context.
type Driver struct {
	prof      *profile.Profile
	prog      *profile.Program
	browser   *browser.Manager
	artifacts *artifactStore
	log       *slog.Logger
	pages     PageCounter
	trace     func(StepTrace)
	traceDir  string
	traced    atomic.Int32

	mu          sync.Mutex
	lastUnknown ProfileStatus
}

// Status is what the driver's checks saw lately.
func (d *Driver) Status() ProfileStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.lastUnknown
	st.Profile = d.prof.Name
	return st
}

// pageSeen counts a classified page.
func (d *Driver) pageSeen(step, kind string) {
	if d.pages != nil {
		d.pages.PageClassified(d.prof.Name, step, kind)
	}
}

func (d *Driver) unknownSeen(step string, a *Artifacts) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastUnknown = ProfileStatus{LastUnknownAt: time.Now(), LastUnknownStep: step}
	if a != nil {
		d.lastUnknown.LastUnknown = a.Dir
	}
}

// New returns a Driver.
func New(cfg Config) (*Driver, error) {
	if cfg.Profile == nil {
		return nil, errors.New("portal driver: no profile")
	}
	if err := cfg.Profile.Validate(); err != nil {
		return nil, fmt.Errorf("portal driver: %w", err)
	}
	if cfg.Browser == nil {
		return nil, errors.New("portal driver: no browser")
	}
	if cfg.ArtifactsDir == "" {
		cfg.ArtifactsDir = filepath.Join(os.TempDir(), "slotwatch-artifacts")
	}
	if cfg.ArtifactsMaxBytes <= 0 {
		cfg.ArtifactsMaxBytes = DefaultArtifactsMaxBytes
	}
	if cfg.ArtifactsTotalBytes <= 0 {
		cfg.ArtifactsTotalBytes = DefaultArtifactsTotalBytes
	}
	if cfg.ArtifactsMaxAge <= 0 {
		cfg.ArtifactsMaxAge = DefaultArtifactsMaxAge
	}
	if !TotalHoldsACheck(cfg.ArtifactsTotalBytes, cfg.ArtifactsMaxBytes) {
		return nil, fmt.Errorf("portal driver: the artifacts' total budget (%d bytes of disk) is below one check's (%d bytes and %d of its folder's blocks)",
			cfg.ArtifactsTotalBytes, cfg.ArtifactsMaxBytes, FolderOverhead)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	store := &artifactStore{dir: cfg.ArtifactsDir, perCheck: cfg.ArtifactsMaxBytes, total: cfg.ArtifactsTotalBytes,
		maxAge: cfg.ArtifactsMaxAge, pages: cfg.ArtifactsPages}
	return &Driver{prof: cfg.Profile, prog: cfg.Profile.Program(), browser: cfg.Browser, artifacts: store, log: cfg.Logger, pages: cfg.Pages,
		trace: cfg.Trace, traceDir: cfg.TraceDir}, nil
}

// Program is the flows the driver runs.
func (d *Driver) Program() *profile.Program { return d.prog }

// Profile is the profile the driver follows.
func (d *Driver) Profile() *profile.Profile { return d.prof }

// SweepArtifacts deletes the artifacts' folders older than
// ArtifactsMaxAge at once, then once a minute until ctx ends, when it
// returns: a page can show an applicant's personal data, and a Checker
// with nothing to check starts and saves no check that would delete them.
// A check's start sweeps too; the two never sweep at once, and a tick
// right after a check's sweep skips its turn.
func (d *Driver) SweepArtifacts(ctx context.Context) {
	tick := time.NewTicker(d.artifacts.interval())
	defer tick.Stop()
	for {
		d.sweepArtifacts(time.Now(), false)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sweepArtifacts runs the artifacts' sweep at now (artifactStore.sweep)
// and logs its failure.
func (d *Driver) sweepArtifacts(now time.Time, due bool) {
	if err := d.artifacts.sweep(now, due); err != nil {
		d.log.Warn("cannot delete old artifacts", "dir", d.artifacts.dir, "err", err)
	}
}

// Check logs in with acct and reads the free slots of one target.
func (d *Driver) Check(ctx context.Context, acct Account, t Target) (Result, error) {
	return d.CheckMission(ctx, acct, t.Mission, []Query{{Centre: t.Centre, VisaCategory: t.VisaCategory}}, nil)
}

// CheckMission logs in once with acct and reads the free slots of every
// query of the mission, in order. gate, unless nil, is asked right before
// the first request to the portal (see Gate).
//
// Everything the portal does is a Result, with a nil error. The error is
// non-nil only when the check could not be made for reasons that are not
// the account's or the portal's: invalid arguments, ctx ended, or the
// browser failed; the Result then has Outcome Error and says why, so a
// caller that must release the account can still use it. A check that
// reached a Verdict returns it with a nil error, even when ctx ended
// after it.
func (d *Driver) CheckMission(ctx context.Context, acct Account, mission string, queries []Query, gate Gate) (Result, error) {
	start := time.Now()
	d.sweepArtifacts(start, true)
	if err := validate(acct, mission, queries); err != nil {
		return Result{Outcome: Error, Reason: ReasonBrowser, Detail: err.Error()}, err
	}
	tab, err := d.browser.NewTab(ctx)
	if err != nil {
		err = fmt.Errorf("check %s: %w", mission, err)
		return Result{Outcome: Error, Reason: ReasonBrowser, Detail: redactDetail(err.Error(), acct.Password), Duration: time.Since(start)}, err
	}
	c := &check{d: d, ctx: tab.Context(), acct: acct, mission: mission, gate: gate}
	c.retry.sites = portalSites(d.prof)
	if err := c.retry.start(c.ctx); err != nil {
		c.failNav(fmt.Errorf("watch the answers' Retry-After: %w", err))
	} else {
		c.run(queries)
	}
	c.res.RetryAfter = c.retry.longest()
	c.keepOrEndSession()
	// The logout changes nothing in the result, so it runs in the
	// background with the tab's teardown and the caller gets the result
	// (and can release the account) now. The pool's cooldown keeps the
	// account from being used again before the logout is long done.
	var logout func(context.Context)
	if c.res.LoggedIn && !d.prog.KeepSession {
		logout = c.logout
	}
	tab.CloseAfter(c.infraErr, logout)

	res := c.res
	// Readers of the detail (the pool's usage log, Requests' checks) see
	// no query string and no password, whatever a page or error said.
	res.Detail = redactDetail(res.Detail, acct.Password)
	res.Duration = time.Since(start)
	d.log.Debug("check done", "account", acct, "mission", mission, "outcome", res.Outcome,
		"reason", res.Reason, "slots", len(res.Slots), "took", res.Duration.Round(time.Millisecond))
	switch {
	case res.Verdict():
		// The portal answered before ctx ended (a drain's cut may come
		// while the result is being put together): the answer stands.
	case ctx.Err() != nil:
		return res, fmt.Errorf("check %s: %w", mission, ctx.Err())
	case c.infraErr != nil:
		return res, fmt.Errorf("check %s: %w", mission, c.infraErr)
	}
	return res, nil
}

// keepOrEndSession reads the session state to keep after a check that
// ended logged in, when the profile keeps sessions; otherwise the session
// ends with the check (the logout flow runs).
func (c *check) keepOrEndSession() {
	if c.res.Reason == ReasonCalledOff {
		return // the portal was not asked: the kept session is as it was
	}
	if !c.d.prog.KeepSession {
		c.res.SessionEnded = true
		return
	}
	switch {
	case c.res.SessionEnded && !c.res.Login, !c.res.LoggedIn, c.infraErr != nil, c.ctx.Err() != nil:
		// A session found over and not replaced by a login is not kept;
		// one that is over stays so.
		return
	case c.res.Outcome == LoginFail, c.res.Outcome == Banned, c.res.Reason == ReasonLoggedOut:
		c.res.SessionEnded = true
		return
	}
	st, err := c.saveSession()
	if err != nil {
		c.d.log.Warn("session state not kept", "account", c.acct, "mission", c.mission, "err", err)
		return
	}
	// A new login's session replaces the one the portal had ended.
	c.res.Session, c.res.SessionMaxAge, c.res.SessionEnded = st, c.d.prog.SessionMaxAge, false
}

func validate(acct Account, mission string, queries []Query) error {
	var errs []error
	if acct.Email == "" || acct.Password == "" {
		errs = append(errs, errors.New("account email and password are required"))
	}
	if mission == "" {
		errs = append(errs, errors.New("mission is required"))
	}
	if len(queries) == 0 {
		errs = append(errs, errors.New("at least one centre and visa category is required"))
	}
	for i, q := range queries {
		if q.Centre == "" || q.VisaCategory == "" {
			errs = append(errs, fmt.Errorf("query %d: centre and visa category are required", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid check: %w", err)
	}
	return nil
}
