// Package domain holds the Notifier's rules, with no I/O: what a contact,
// a subscription and a delivery are, which input is valid, which event
// reaches which recipient, and how long a failed delivery waits.
package domain

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
)

// Errors the gRPC edge maps to codes.
var (
	ErrNotFound = errors.New("not found")
	// ErrApplicantNotFound: Requests knows no applicant by that id.
	ErrApplicantNotFound = errors.New("applicant not found")
	// ErrNotDead: RetryDelivery of a delivery that is not DEAD.
	ErrNotDead = errors.New("delivery is not dead")
	// ErrNotWebhook: a webhook secret given for another kind of recipient.
	ErrNotWebhook = errors.New("not a webhook")
)

// EventType is a Requests event the Notifier tells people about.
type EventType string

// The event types, as stored.
const (
	SlotFound EventType = "slot_found"
	Expired   EventType = "expired"
	Cancelled EventType = "cancelled"
)

// ContactEvents are the events an applicant's contacts hear of.
var ContactEvents = []EventType{SlotFound, Expired}

// DeliveryState is where a delivery stands.
type DeliveryState string

// The delivery states, as stored.
const (
	Pending   DeliveryState = "pending"
	Delivered DeliveryState = "delivered"
	Dead      DeliveryState = "dead"
)

// Languages the templates exist in; the first is the default.
var Languages = []string{"en", "fr"}

// Target is where a recipient's messages go: what contacts and
// subscriptions share.
type Target struct {
	Kind     channel.Kind
	Address  string
	Language string
	// SecretSet and Rotating say whether a webhook secret is stored, and a
	// previous one beside it.
	SecretSet bool
	Rotating  bool
}

// Contact is one way to reach an applicant.
type Contact struct {
	ID          uuid.UUID
	ApplicantID uuid.UUID
	Target
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Subscription sends an operator the events of a set of missions.
type Subscription struct {
	ID           uuid.UUID
	MissionCodes []string
	EventTypes   []EventType
	Target
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Hears says whether the subscription hears of events of type t.
func (s Subscription) Hears(t EventType) bool { return slices.Contains(s.EventTypes, t) }

// Delivery is one message to one recipient about one event.
type Delivery struct {
	ID              int64
	EventCursor     int64
	EventType       EventType
	EventOccurredAt time.Time
	RequestID       uuid.UUID
	// One of ContactID and SubscriptionID is set.
	ContactID      uuid.UUID
	SubscriptionID uuid.UUID
	Kind           channel.Kind
	Address        string
	Subject        string
	Text           string
	HTML           string
	JSON           []byte
	State          DeliveryState
	Attempts       int
	LastError      string
	NextAttemptAt  time.Time
	CreatedAt      time.Time
	DeliveredAt    time.Time
	// LeaseToken is the attempt's fencing token (store side).
	LeaseToken int64
	// LeaseUntil is when the attempt's lease lapses; zero while no attempt
	// holds the delivery.
	LeaseUntil time.Time
	// Secrets are the recipient's sealed webhook secrets as claimed (the
	// current one, then the previous one during a rotation); empty for
	// other kinds, or when the recipient is gone.
	Secrets [][]byte
	// RecipientGone: the contact or subscription was deleted.
	RecipientGone bool
}

// RecipientID is the contact's or the subscription's id.
func (d Delivery) RecipientID() uuid.UUID {
	if d.ContactID != uuid.Nil {
		return d.ContactID
	}
	return d.SubscriptionID
}

// IdempotencyKey is the key receivers drop duplicates by: one per event
// and recipient, the same on every attempt and every replica.
func (d Delivery) IdempotencyKey() string {
	return IdempotencyKey(d.EventCursor, d.RecipientID())
}

// IdempotencyKey is Delivery.IdempotencyKey from its parts.
func IdempotencyKey(cursor int64, recipient uuid.UUID) string {
	return "slotwatch-" + strconv.FormatInt(cursor, 10) + "-" + recipient.String()
}

// Retry is how failed deliveries are retried.
type Retry struct {
	// MaxAttempts: after this many failed attempts a delivery is DEAD.
	MaxAttempts int
	// Base is the wait after the first failure; it doubles after each one,
	// up to Max.
	Base time.Duration
	Max  time.Duration
	// MaxRetryAfter caps a receiver's own Retry-After.
	MaxRetryAfter time.Duration
	// MaxDefer is how long after it was recorded a delivery may be held
	// back by its channel (channel.Deferred: its turn under the channel's
	// pacing comes after the send's deadline, nothing is sent) without an
	// attempt counted. Later, a deferral counts as a failed attempt, so
	// that MaxAttempts still ends a delivery that never gets a turn.
	MaxDefer time.Duration
}

// DefaultRetry is NOTIFIER_MAX_ATTEMPTS, NOTIFIER_BACKOFF_BASE and
// NOTIFIER_BACKOFF_MAX unset.
var DefaultRetry = Retry{MaxAttempts: 8, Base: 2 * time.Second, Max: 10 * time.Minute, MaxRetryAfter: time.Hour, MaxDefer: time.Hour}

// Backoff is the wait after the attempt-th failed attempt (1-based):
// Base·2^(attempt-1) capped at Max, with "equal jitter" (a random point in
// its upper half), so that deliveries failing together do not retry in
// lockstep.
func (r Retry) Backoff(attempt int) time.Duration {
	d := r.Base
	for i := 1; i < attempt && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Outcome is what a failed attempt makes of a delivery.
type Outcome struct {
	// Dead: the delivery is given up.
	Dead bool
	// Wait is how long until it is due again, when not Dead.
	Wait time.Duration
	// Deferred: nothing was sent, and the attempt is not counted.
	Deferred bool
}

// Outcome is what the error of an attempt of d (its Attempts counting this
// one) makes of it at now: deferred to the channel's next turn with the
// attempt not counted (nothing was sent, and d was recorded less than
// MaxDefer ago), DEAD at once (permanent, or the last attempt), or PENDING
// again after a receiver's Retry-After or a backoff.
func (r Retry) Outcome(d Delivery, err error, now time.Time) Outcome {
	var ra *channel.RetryAfterError
	retryAfter := errors.As(err, &ra)
	if retryAfter && ra.NotSent && now.Sub(d.CreatedAt) < r.MaxDefer {
		return Outcome{Wait: min(max(ra.After, 0), r.MaxRetryAfter), Deferred: true}
	}
	if channel.IsPermanent(err) || d.Attempts >= r.MaxAttempts {
		return Outcome{Dead: true}
	}
	if retryAfter {
		return Outcome{Wait: min(max(ra.After, 0), r.MaxRetryAfter)}
	}
	return Outcome{Wait: r.Backoff(d.Attempts)}
}
