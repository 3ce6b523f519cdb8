// Package domain holds the account pool's rules: what state an account is
// in at a given moment, and what each lease outcome does to it. It does no
// I/O; the store applies these rules inside its transactions.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Config is the pool's tuning (DESIGN §4), read from POOL_* variables.
type Config struct {
	// Cooldown after a use that reached the portal (success, no_slot,
	// aborted), after a login_fail or error below MaxFailures, and after an
	// expired lease.
	Cooldown time.Duration
	// Quarantine once consecutive failures reach MaxFailures.
	Quarantine time.Duration
	// BanQuarantine after the portal showed a block, rate-limit or CAPTCHA page.
	BanQuarantine time.Duration
	// MaxFailures consecutive failures put an account in quarantine.
	MaxFailures int
	// LeaseTTL is the lease length when Acquire leaves it unset.
	LeaseTTL time.Duration
	// SessionMaxAge caps how long a stored session state is handed out
	// (Release's session_max_age, which defaults to it).
	SessionMaxAge time.Duration
	// MaxLoginsPerDay is the login budget: an account that logged in this
	// many times in the last LoginWindow is not leased for a check that
	// must log in (one without a valid session state).
	MaxLoginsPerDay int
}

// LoginWindow is the rolling window of the login budget.
const LoginWindow = 24 * time.Hour

// DefaultConfig is the seed's AccountPoolConfig.
func DefaultConfig() Config {
	return Config{
		Cooldown:      10 * time.Minute,
		Quarantine:    30 * time.Minute,
		BanQuarantine: 60 * time.Minute,
		MaxFailures:   3,
		LeaseTTL:      5 * time.Minute,
		// Issue 13: a working day of checks on one session; a portal
		// that ends it sooner makes the check log in again.
		SessionMaxAge:   12 * time.Hour,
		MaxLoginsPerDay: 20,
	}
}

// ExpiryGrace is how long after its end a lease is taken back. Replicas
// decide expiry by their own clocks; the grace absorbs the skew between
// them (NTP keeps it far below this), so that no replica hands an account
// to a new holder while the old holder's lease is still running by the
// clock that granted it. The holder itself may not Renew or Release past
// the end.
const ExpiryGrace = 2 * time.Second

// Outcome is how a lease ended.
type Outcome string

// Outcomes a holder reports, and the one the pool records itself.
const (
	OutcomeSuccess      Outcome = "success"
	OutcomeNoSlot       Outcome = "no_slot"
	OutcomeLoginFail    Outcome = "login_fail"
	OutcomeBanned       Outcome = "banned"
	OutcomeError        Outcome = "error"
	OutcomeLeaseExpired Outcome = "lease_expired"
	// OutcomeUnused: the account was not used at the portal: the check was
	// called off before its first request (Requests found the portal
	// paused), or found its kept session dead and could not log in (its
	// login budget is spent; that is the budget's doing, not a failure of
	// the account). Nothing changes but the lease's end (and the session
	// state, if the release clears it).
	OutcomeUnused Outcome = "unused"
	// OutcomeAborted: slotwatch cut the check short itself (the Checker's
	// drain, the claim's deadline, a browser that died), not the portal.
	// That says nothing about the account, so its failure count stays as
	// it is; it may have reached the portal, so it rests its cooldown, and
	// a login it made counts against its budget (as for any outcome).
	OutcomeAborted Outcome = "aborted"
)

// State is an account's state at one moment.
type State string

// States, in the order they take precedence.
const (
	StateDisabled    State = "disabled"
	StateLeased      State = "leased"
	StateQuarantined State = "quarantined"
	StateCooldown    State = "cooldown"
	StateAvailable   State = "available"
)

// Account is a pool account without its password.
type Account struct {
	ID                  int64      `json:"id"`
	Email               string     `json:"email"`
	Phone               string     `json:"phone"`
	Active              bool       `json:"active"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	CooldownUntil       *time.Time `json:"cooldown_until,omitempty"`
	QuarantineUntil     *time.Time `json:"quarantine_until,omitempty"`
	LastUsedAt          *time.Time `json:"last_used_at,omitempty"`
	UseCount            int64      `json:"use_count"`
	FencingToken        int64      `json:"fencing_token"`
	LeaseID             string     `json:"lease_id,omitempty"`
	LeasedBy            string     `json:"leased_by,omitempty"`
	LeaseExpiresAt      *time.Time `json:"lease_expires_at,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// State derives the account's state at now from its timestamps.
func (a Account) State(now time.Time) State {
	switch {
	case !a.Active:
		return StateDisabled
	case a.LeaseID != "":
		return StateLeased
	case after(a.QuarantineUntil, now):
		return StateQuarantined
	case after(a.CooldownUntil, now):
		return StateCooldown
	}
	return StateAvailable
}

func after(t *time.Time, now time.Time) bool { return t != nil && t.After(now) }

// ApplyOutcome returns the account as it is after its lease ended with
// outcome at time now (DESIGN §4's table). The lease fields are cleared.
func (c Config) ApplyOutcome(a Account, outcome Outcome, now time.Time) Account {
	a.LeaseID, a.LeasedBy, a.LeaseExpiresAt = "", "", nil
	a.UpdatedAt = now
	switch outcome {
	case OutcomeSuccess, OutcomeNoSlot:
		a.ConsecutiveFailures = 0
		a.CooldownUntil = ptr(now.Add(c.Cooldown))
	case OutcomeLoginFail, OutcomeError:
		a.ConsecutiveFailures++
		if a.ConsecutiveFailures >= c.MaxFailures {
			a.QuarantineUntil = ptr(now.Add(c.Quarantine))
		} else {
			a.CooldownUntil = ptr(now.Add(c.Cooldown))
		}
	case OutcomeBanned:
		a.ConsecutiveFailures++
		a.QuarantineUntil = ptr(now.Add(c.BanQuarantine))
	case OutcomeLeaseExpired:
		a.ConsecutiveFailures++
		a.CooldownUntil = ptr(now.Add(c.Cooldown))
	case OutcomeAborted:
		a.CooldownUntil = ptr(now.Add(c.Cooldown))
	case OutcomeUnused:
	}
	return a
}

func ptr(t time.Time) *time.Time { return &t }

// RestAtLeast makes an account whose lease just ended rest at least d from
// now: the portal's own Retry-After, which outranks a shorter cooldown. A
// quarantine that ends later stays as it is.
func RestAtLeast(a Account, d time.Duration, now time.Time) Account {
	until := now.Add(d)
	if d <= 0 || (a.QuarantineUntil != nil && !a.QuarantineUntil.Before(until)) {
		return a
	}
	if a.CooldownUntil == nil || a.CooldownUntil.Before(until) {
		a.CooldownUntil = ptr(until)
	}
	return a
}

// ClearsSession says whether a lease that ended with outcome forgets the
// account's session state: a rejected login or a wall means the portal's
// session is not one to return to.
func ClearsSession(outcome Outcome) bool {
	return outcome == OutcomeLoginFail || outcome == OutcomeBanned
}

// SessionExpiry is when a session state stored at now stops being handed
// out: after maxAge (0: the configured SessionMaxAge), never later than
// SessionMaxAge.
func (c Config) SessionExpiry(now time.Time, maxAge time.Duration) time.Time {
	if maxAge <= 0 || maxAge > c.SessionMaxAge {
		maxAge = c.SessionMaxAge
	}
	return now.Add(maxAge)
}

// UsageRecord is one lease in the usage log.
type UsageRecord struct {
	LeaseID      string
	AccountID    int64
	Email        string
	FencingToken int64
	MissionCode  string
	Holder       string
	RequestIDs   []string
	Result       Outcome // empty while held
	Detail       string
	AcquiredAt   time.Time
	ReleasedAt   *time.Time
	LoggedIn     bool
	// AcquireID names the Acquire that granted the lease ("" when it sent
	// none).
	AcquireID string
}

// Lease is a granted lease, password included.
type Lease struct {
	LeaseID      string
	FencingToken int64
	Account      Account
	Password     string
	MissionCode  string
	Holder       string
	ExpiresAt    time.Time
	// SessionState is the decrypted portal session, nil without a valid
	// one; SessionExpiresAt is set with it.
	SessionState     []byte
	SessionExpiresAt *time.Time
	// LoginsLeft is how many more logins the budget allows now.
	LoginsLeft int
}

// Errors the store and the application return; the gRPC layer maps each to
// one status code.
var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrNoActiveAccount = errors.New("the pool has no active account")
	ErrLeaseNotHeld    = errors.New("lease is not held")
)

// NoAccountFreeError says no account can be leased now, and when the
// earliest busy one frees.
type NoAccountFreeError struct {
	FreeAt time.Time
	Now    time.Time
}

func (e *NoAccountFreeError) Error() string {
	return fmt.Sprintf("no account free; the next one frees in %s", e.RetryAfter())
}

// RetryAfter is the time from Now until FreeAt.
func (e *NoAccountFreeError) RetryAfter() time.Duration {
	if d := e.FreeAt.Sub(e.Now); d > 0 {
		return d
	}
	return 0
}

// LeaseNotHeldError says why a Renew or Release was refused.
type LeaseNotHeldError struct{ Reason string }

func (e *LeaseNotHeldError) Error() string { return "lease is not held: " + e.Reason }

// Is makes errors.Is(err, ErrLeaseNotHeld) true.
func (e *LeaseNotHeldError) Is(target error) bool { return target == ErrLeaseNotHeld }

// AcquireIDUsedError says why an Acquire's acquire_id cannot have its
// lease again: the lease ended, or the id was used by another holder or
// for another mission.
type AcquireIDUsedError struct{ Reason string }

func (e *AcquireIDUsedError) Error() string {
	return "acquire_id was used already: " + e.Reason + "; send a new acquire_id"
}

// ErrAcquireIDRaced: another Acquire with the same acquire_id (another
// replica's, or one in the same batch) logged its lease first; the account
// this one took goes back, and it looks the other's lease up. Acquire
// answers it when that lease was gone each time (handed back: its caller
// gave up), four races running. Nothing is wrong with the request and
// nothing is missing: the caller retries with the same acquire_id
// (ABORTED, which the Checker retries).
var ErrAcquireIDRaced = errors.New("another Acquire with this acquire_id leased first, and its lease went back meanwhile: retry with the same acquire_id")

// PoolStatus counts accounts by state.
type PoolStatus struct {
	TotalActive, Available, Leased, InCooldown, Quarantined, Disabled int
	// OverLoginBudget counts the accounts that rest from nothing but their
	// login budget (not in Available).
	OverLoginBudget int
	// NextAvailableAt is set when no account is available but some are busy.
	NextAvailableAt *time.Time
}

// UsageStats counts one account's leases in a window.
type UsageStats struct {
	AccountID                                                   int64
	Email                                                       string
	Uses, Successes, NoSlots, LoginFails, Bans, Errors, Expired int
	// Logins counts the leases whose check logged in.
	Logins int
	// Aborted counts the leases released aborted (not in Errors).
	Aborted int
}
