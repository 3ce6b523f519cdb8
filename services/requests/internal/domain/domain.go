// Package domain holds the Requests service's rules in plain Go: what a valid
// applicant, request and check report are, which slots match a request, what
// a check does to the requests it covered, and when a request expires. It
// does no I/O and reads no clock: callers pass the time.
package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Errors the service's callers act on. The store turns pgx's errors into
// these at its boundary; the gRPC server maps them to codes in one place.
var (
	// ErrNotFound: the named applicant or request does not exist.
	ErrNotFound = errors.New("not found")
	// ErrApplicantNotFound: a request names an applicant that does not exist.
	ErrApplicantNotFound = errors.New("applicant does not exist")
	// ErrWrongStatus: the request's status does not allow the change
	// (a *StatusError says which status it has and which it needs).
	ErrWrongStatus = errors.New("request status does not allow this")
	// ErrClaimNotHeld: the claim is unknown, lapsed, or already reported
	// (with another outcome: a report sent again gets the recorded answer).
	ErrClaimNotHeld = errors.New("claim is unknown, already reported or lapsed")
	// ErrCursorPruned: events after a WatchEvents cursor were pruned by
	// retention (a *CursorPrunedError says through which cursor).
	ErrCursorPruned = errors.New("events after the cursor were pruned")
	// ErrPortalPaused: the claim's portal was paused after the claim; the
	// claim is ended (ConfirmClaim).
	ErrPortalPaused = errors.New("the claim's portal is paused")
	// ErrTooManyWatchers: the caller, or the server as a whole, has as many
	// WatchEvents streams open as it may.
	ErrTooManyWatchers = errors.New("too many event streams open")
)

// PausedError says which portal is paused, and until when.
type PausedError struct {
	Portal string
	Until  time.Time
}

func (e *PausedError) Error() string {
	return fmt.Sprintf("portal %s is paused until %s", e.Portal, e.Until.UTC().Format(time.RFC3339))
}

// Is makes a *PausedError an ErrPortalPaused.
func (e *PausedError) Is(target error) bool { return target == ErrPortalPaused }

// Status is where an appointment request stands. The values are the ones
// stored in the database.
type Status string

// The request statuses.
const (
	StatusPending   Status = "pending"
	StatusSlotFound Status = "slot_found"
	StatusCancelled Status = "cancelled"
	StatusExpired   Status = "expired"
	// StatusBooked is final: the applicant booked the slot found.
	StatusBooked Status = "booked"
)

// Outcome is how a mission check ended.
type Outcome string

// The check outcomes.
const (
	OutcomeNoSlot     Outcome = "no_slot"
	OutcomeSlotsFound Outcome = "slots_found"
	OutcomeFailed     Outcome = "failed"
	// Walls: the portal pushed back. They count toward pausing the portal
	// (Portal.Wall).
	OutcomeCaptcha     Outcome = "captcha"
	OutcomeBlocked     Outcome = "blocked"
	OutcomeRateLimited Outcome = "rate_limited"
	// OutcomeMaintenance: the portal said it is down for maintenance. Every
	// check would meet the same page until it is back, so it is a wall too.
	OutcomeMaintenance Outcome = "maintenance"
)

// Wall says whether o is the portal pushing back (CAPTCHA, blocked, rate
// limited) or down for maintenance.
func (o Outcome) Wall() bool {
	return o == OutcomeCaptcha || o == OutcomeBlocked || o == OutcomeRateLimited || o == OutcomeMaintenance
}

// EventType says what happened to a request.
type EventType string

// The event types.
const (
	EventCreated   EventType = "created"
	EventSlotFound EventType = "slot_found"
	EventCancelled EventType = "cancelled"
	EventExpired   EventType = "expired"
	// EventBooked: ConfirmBooked; EventWatchingResumed: ResumeWatching.
	EventBooked          EventType = "booked"
	EventWatchingResumed EventType = "watching_resumed"
	// Portal events carry Event.Portal instead of a request.
	EventPortalPaused  EventType = "portal_paused"
	EventPortalResumed EventType = "portal_resumed"
)

// Applicant is a person requests are made for. PassportNumber is plaintext
// only in memory; it is stored encrypted.
type Applicant struct {
	ID             uuid.UUID
	FullName       string
	Email          string
	Phone          string
	PassportNumber string
	Nationality    string
	// DateOfBirth is a date (UTC midnight); zero when not given.
	DateOfBirth time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Slot is one free appointment seen on a portal.
type Slot struct {
	Centre       string
	VisaCategory string
	// Date is UTC midnight of the slot's day.
	Date time.Time
	// Time is "HH:MM", or empty.
	Time string
}

// Request is an applicant's wish for a slot in a date window.
type Request struct {
	ID uuid.UUID
	// ApplicantID is uuid.Nil once the applicant was deleted.
	ApplicantID  uuid.UUID
	MissionCode  string
	Centre       string
	VisaCategory string
	// EarliestDate and LatestDate bound the window, both inclusive (UTC
	// midnight).
	EarliestDate time.Time
	LatestDate   time.Time
	Status       Status
	// MatchedSlots are the earliest MaxSlotsPerRequest of the slots that
	// made the request SLOT_FOUND; MatchedSlotCount counts all of them.
	MatchedSlots     []Slot
	MatchedSlotCount int
	// MissedSlots are slots announced before and passed up with
	// ResumeWatching: MatchSlots leaves them out, so they do not make the
	// request SLOT_FOUND again.
	MissedSlots []Slot
	// LastCheckedAt is zero before the first check.
	LastCheckedAt time.Time
	CheckCount    int
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Claim is the right to check one mission until ExpiresAt.
type Claim struct {
	ID          uuid.UUID
	MissionCode string
	CheckerID   string
	Requests    []Request
	ClaimedAt   time.Time
	ExpiresAt   time.Time
	// DueAt is when the mission became claimable for this check: the
	// latest of its last check plus the check interval, the end of a
	// lapsed claim's grace, and the moment its oldest pending request last
	// changed (was created, or returned to pending). ClaimedAt − DueAt is
	// the claim lag.
	DueAt time.Time
	// TookOverLapsed is true when the mission's previous claim ran out
	// without a report (its checker died or hung) and this claim replaced it.
	TookOverLapsed bool
	// Timezone is the mission's zone (Mission.Timezone): the portal's
	// dates are days there.
	Timezone string
}

// CheckResult is what a checker reports for a claim.
type CheckResult struct {
	ClaimID   uuid.UUID
	Outcome   Outcome
	Slots     []Slot
	AccountID int64
	Detail    string
	// RetryAfter is how long the portal asked to be left alone; 0 for none.
	RetryAfter time.Duration
}

// Event is one change to a request, or to a portal's pause, at a cursor.
type Event struct {
	Cursor  int64
	Type    EventType
	Request Request
	// Portal is set for EventPortalPaused and EventPortalResumed (and
	// Request is then zero).
	Portal     *PortalStatus
	OccurredAt time.Time
}

// ClaimGrace is how long after its expires_at an unreported claim is taken
// over by a new one. Replicas decide by their own clocks; the grace absorbs
// the skew between them (NTP keeps it far below this), so that a replica
// whose clock runs ahead does not hand the mission to another checker
// while the claim is still running by the clock that granted it. Reports
// are refused from expires_at on, without grace: a replica whose clock is
// behind by less than the grace may accept one a little late, and that
// still lands before any takeover.
const ClaimGrace = 2 * time.Second

// Today is the calendar day that now falls on in loc, as UTC midnight of
// that date (how dates are held). Request windows and slot dates are
// calendar days on the portal's calendar: for a mission they are compared
// with Today in the mission's zone (Mission.Today), never with the UTC day.
func Today(now time.Time, loc *time.Location) time.Time {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// StatusError is ErrWrongStatus with the detail: request ID is in Status,
// and Action needs it to be in Need.
type StatusError struct {
	ID     uuid.UUID
	Status Status
	Need   Status
	Action string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("request %s is %s; %s needs it %s", e.ID, e.Status, e.Action, e.Need)
}

// Is makes a *StatusError match ErrWrongStatus.
func (e *StatusError) Is(target error) bool { return target == ErrWrongStatus }

// CursorPrunedError is ErrCursorPruned: the events after Cursor up to
// PrunedThrough are gone; PrunedThrough is the oldest cursor a stream can
// resume from without a gap.
type CursorPrunedError struct {
	Cursor        int64
	PrunedThrough int64
}

func (e *CursorPrunedError) Error() string {
	return fmt.Sprintf("cursor %d is older than the oldest event kept: events through cursor %d were pruned by retention", e.Cursor, e.PrunedThrough)
}

// Is makes a *CursorPrunedError match ErrCursorPruned.
func (e *CursorPrunedError) Is(target error) bool { return target == ErrCursorPruned }
