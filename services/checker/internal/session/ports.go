package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
)

// LeaseClient is what the checker needs of AccountPool. The real one wraps
// the generated gRPC client (package client).
type LeaseClient interface {
	// Acquire leases an account for a mission. No account free is a
	// *NoAccountFreeError; no active account at all is ErrNoActiveAccount.
	Acquire(ctx context.Context, req AcquireRequest) (Lease, error)
	// Renew extends the lease to ttl from now. A lease that is no longer
	// held is ErrLeaseLost.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (time.Time, error)
	// Release ends the lease with the check's outcome. A lease that is no
	// longer held is ErrLeaseLost.
	Release(ctx context.Context, l Lease, r Release) error
	// GiveBack ends, unused, the lease that the Acquire named acquireID
	// granted, when its answer was lost: the pool releases it by the
	// acquire_id. No lease granted for the id (or handed back already) is
	// ErrNoLease; one that ended otherwise is ErrLeaseLost.
	GiveBack(ctx context.Context, acquireID, detail string) error
}

// MissionClient is what the checker needs of Requests.
type MissionClient interface {
	// ClaimDueMissions claims up to max due missions for ttl.
	ClaimDueMissions(ctx context.Context, checkerID string, max int, ttl time.Duration) ([]Claim, error)
	// ReportCheckResult ends a claim and says how many requests became
	// SLOT_FOUND. A claim that is no longer held is ErrClaimLost.
	ReportCheckResult(ctx context.Context, r Report) (matched int, err error)
	// ConfirmClaim says whether the claim's check may open the portal now.
	// A claim whose portal was paused since the claim (Requests then ends
	// it) or that is no longer held is ErrClaimLost.
	ConfirmClaim(ctx context.Context, claimID string) error
}

// Driver checks the portal; *portal.Driver is the real one.
type Driver interface {
	CheckMission(ctx context.Context, acct portal.Account, mission string, queries []portal.Query, gate portal.Gate) (portal.Result, error)
}

// AcquireRequest asks the pool for an account.
type AcquireRequest struct {
	Mission    string
	Holder     string
	TTL        time.Duration
	RequestIDs []string
	// AcquireID names this Acquire (a UUID), the same in its retries: a
	// retry of one whose answer was lost gets the lease it granted.
	AcquireID string
}

// Lease is a leased account. Its password never appears in logs or
// formatted output.
type Lease struct {
	ID           string
	FencingToken int64
	AccountID    int64
	Email        string
	Password     string
	ExpiresAt    time.Time
	// SessionState is the portal session a check of the account kept
	// (opaque to the pool; portal's format); nil when there is none.
	SessionState []byte
	// NoLogin says the account's login budget is spent: the lease was
	// granted for its session state alone, and the check must not log in.
	NoLogin bool
}

// Format keeps %v and friends from printing the password (or the session
// state, a credential too).
func (l Lease) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "Lease{ID: %q, AccountID: %d, Email: %q}", l.ID, l.AccountID, l.Email)
}

// LogValue keeps slog from printing the password (nor the fencing token
// and the session state, which are credentials too).
func (l Lease) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", l.ID), slog.Int64("account_id", l.AccountID),
		slog.String("email", l.Email), slog.Time("expires_at", l.ExpiresAt))
}

// Release is how a lease ends.
type Release struct {
	Outcome    Outcome
	Detail     string
	RequestIDs []string
	// LoggedIn: the check logged in to the portal (it counts against the
	// account's login budget).
	LoggedIn bool
	// SessionState is the portal session to keep for the account's next
	// lease, for at most SessionMaxAge (0: the pool's default); nil keeps
	// the stored one unless ClearSession.
	SessionState  []byte
	SessionMaxAge time.Duration
	// ClearSession: the portal session is over; the pool forgets it.
	ClearSession bool
	// RetryAfter is the portal's Retry-After during the check (0: none):
	// the pool rests the account at least that long.
	RetryAfter time.Duration
}

// Format keeps %v from printing the session state.
func (r Release) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "Release{Outcome: %s, LoggedIn: %t, SessionState: %d bytes, ClearSession: %t}",
		r.Outcome, r.LoggedIn, len(r.SessionState), r.ClearSession)
}

// Claim is the right to check one mission until ExpiresAt.
type Claim struct {
	ID        string
	Mission   string
	Requests  []Request
	ExpiresAt time.Time
}

// Request is one pending appointment request of a claim.
type Request struct {
	ID           string
	Centre       string
	VisaCategory string
	// EarliestDate and LatestDate bound the days it wants, both included
	// (YYYY-MM-DD; empty: unbounded).
	EarliestDate, LatestDate string
	// Missed are slots it passed up (the last Requests shows): a check
	// that sees them again does not find them for it.
	Missed    []portal.Slot
	CreatedAt time.Time
}

// ReportOutcome is how Requests records a check.
type ReportOutcome string

// The report outcomes (Requests' CheckOutcome).
const (
	ReportNoSlot     ReportOutcome = "no_slot"
	ReportSlotsFound ReportOutcome = "slots_found"
	ReportFailed     ReportOutcome = "failed"
	// Walls: the portal showed a CAPTCHA, blocked the account or limited
	// the rate. Requests counts them per portal and pauses it past a
	// threshold.
	ReportCaptcha     ReportOutcome = "captcha"
	ReportBlocked     ReportOutcome = "blocked"
	ReportRateLimited ReportOutcome = "rate_limited"
	// ReportMaintenance: the portal said it is down for maintenance. Every
	// check would meet it until the portal is back, so Requests pauses the
	// portal as for the other walls (at once when it sent a Retry-After).
	ReportMaintenance ReportOutcome = "maintenance"
)

// Wall says whether the outcome is one Requests counts towards pausing the
// portal.
func (o ReportOutcome) Wall() bool {
	return o == ReportCaptcha || o == ReportBlocked || o == ReportRateLimited || o == ReportMaintenance
}

// Report ends a claim.
type Report struct {
	ClaimID   string
	Outcome   ReportOutcome
	Slots     []portal.Slot
	AccountID int64
	Detail    string
	// RetryAfter is the portal's own Retry-After on a wall (0: none):
	// Requests pauses the portal at least that long.
	RetryAfter time.Duration
	// SlotsCut is how many slots the check read that the report leaves
	// out, later than those in Slots (see reportSlots); not sent.
	SlotsCut int
}

// Outcome is how a mission's check went. All but NoAccount are the
// outcomes released to the pool.
type Outcome string

// The outcomes; the strings are the ones logs, metrics and CheckerService
// show.
const (
	Success   Outcome = "success"
	NoSlot    Outcome = "no_slot"
	LoginFail Outcome = "login_fail"
	Banned    Outcome = "banned"
	Error     Outcome = "error"
	// Unused: the account was not used at the portal: the check was called
	// off before its first request (Requests found the portal paused since
	// the claim), found its kept session dead and may not log in (login
	// budget spent), or the browser could not open its tab. Released as
	// such, it is no failure of the account.
	Unused Outcome = "unused"
	// Aborted: slotwatch cut the check short itself, not the portal: the
	// drain's grace ran out, or the browser failed mid-check (the claim's
	// deadline is the portal's: a portal too slow for it is Error). It says nothing about the account: released as
	// such, it is no failure of the account, but it rests its cooldown
	// and a login it made counts against its budget.
	Aborted Outcome = "aborted"
	// NoAccount: no account could be leased in time; nothing was checked.
	NoAccount Outcome = "no_account"
)

// NoAccountFreeError is the pool's RESOURCE_EXHAUSTED: no account is free
// now, and the next one frees after RetryAfter.
type NoAccountFreeError struct {
	RetryAfter time.Duration
	// Message is the server's, for logs.
	Message string
}

func (e *NoAccountFreeError) Error() string {
	return fmt.Sprintf("no account free; retry after %s (%s)", e.RetryAfter, e.Message)
}

var (
	// ErrNoActiveAccount: the pool has no active account at all; waiting
	// does not help.
	ErrNoActiveAccount = errors.New("the account pool has no active account")
	// ErrLeaseLost: the lease expired or was taken back; the account must
	// not be used any more.
	ErrLeaseLost = errors.New("lease no longer held")
	// ErrNoLease: GiveBack found no lease granted for the acquire_id:
	// nothing to give back.
	ErrNoLease = errors.New("no lease granted for the acquire_id")
	// ErrClaimLost: the claim lapsed or was reported already.
	ErrClaimLost = errors.New("claim no longer held")
	// ErrUnavailable marks an error worth retrying: the service could not
	// be reached or answered in time.
	ErrUnavailable = errors.New("service unavailable")
	// ErrNoAnswer marks an ErrUnavailable after which the call may have
	// taken effect: no answer in time, or the connection failed (which
	// may be after the server ran the call). Only an idempotent call may
	// be tried again: Release and ReportCheckResult are; Acquire is with
	// its AcquireID, sent again unchanged.
	ErrNoAnswer = errors.New("no answer in time")
	// ErrStopping: the checker is stopping and starts no session.
	ErrStopping = errors.New("checker is stopping")
)
