// Package channel is the one interface every delivery channel of the
// Notifier implements (email, Telegram, webhook), and the errors by which a
// channel tells the delivery loop what to do next.
//
// A channel sends one Message to one address and reports only whether it
// was accepted. Retries, backoff, the delivery log and idempotency are the
// delivery loop's job, not the channel's: a channel never retries on its
// own, and it passes Message.IdempotencyKey to the receiver in the form the
// receiver understands (webhook header, email Message-ID, ...).
package channel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind names a channel as it is stored in contacts and deliveries.
type Kind string

// The channels of the Notifier.
const (
	Email    Kind = "email"
	Telegram Kind = "telegram"
	Webhook  Kind = "webhook"
)

// Message is one rendered notification for one address.
type Message struct {
	// IdempotencyKey is stable across retries of the same delivery (one
	// per event and contact); receivers use it to drop duplicates.
	IdempotencyKey string
	// To is the address in the channel's own form: an email address, a
	// Telegram chat id, or a webhook URL.
	To string
	// Subject is a one-line summary (email subject; first line elsewhere).
	Subject string
	// Text is the plain-text body; HTML is the same content as HTML (email
	// only; empty elsewhere).
	Text string
	HTML string
	// JSON is the machine-readable body a webhook posts; other channels
	// ignore it.
	JSON []byte
	// SigningSecrets are a webhook's HMAC keys: the current secret, then
	// the previous one while a rotation is under way (one signature
	// each). Other channels ignore them; they are never logged.
	SigningSecrets [][]byte
}

// OneLine is s as a subject: each run of white space (line breaks
// included) one space, none at the ends. A value from Requests (a centre,
// a name) may hold a line break; a subject must not.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Sender delivers messages over one channel.
type Sender interface {
	Kind() Kind
	// Send delivers msg once. A nil error means the receiver accepted it.
	// Errors wrap RetryAfter or Permanent when the receiver said so, or
	// Deferred when the channel sent nothing because its own pacing (or a
	// wait the receiver set earlier) would outlast ctx's deadline; any
	// other error is temporary and retried with backoff.
	Send(ctx context.Context, msg Message) error
}

// Timed is a Sender that bounds one send itself (its NOTIFIER_*_TIMEOUT):
// the delivery loop gives each send at least that long, so a delivery
// that waited for a worker is not cut short of it.
type Timed interface {
	Timeout() time.Duration
}

// RetryAfterError is a temporary refusal with a wait: the receiver's own
// (HTTP 429/503 Retry-After, Telegram's retry_after, SMTP 4xx with a
// hint), or, with NotSent, the channel's turn that comes too late.
type RetryAfterError struct {
	After time.Duration
	// NotSent: the receiver was not asked. The channel's pacing (or a
	// wait the receiver set on an earlier message) would end after the
	// send's deadline, so the message was held back: the delivery loop
	// reschedules it for the end of the wait without counting an
	// attempt.
	NotSent bool
	Err     error
}

func (e *RetryAfterError) Error() string {
	if e.NotSent {
		return fmt.Sprintf("not sent, next turn in %s: %v", e.After.Round(time.Millisecond), e.Err)
	}
	return fmt.Sprintf("retry after %s: %v", e.After, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err with the receiver's requested wait.
func RetryAfter(after time.Duration, err error) error {
	return &RetryAfterError{After: after, Err: err}
}

// Deferred wraps err as a send the channel held back, having sent
// nothing: its turn comes after the wait after.
func Deferred(after time.Duration, err error) error {
	return &RetryAfterError{After: after, NotSent: true, Err: err}
}

// IsDeferred says whether err is a send the channel held back (Deferred),
// and how long until its turn.
func IsDeferred(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.NotSent {
		return ra.After, true
	}
	return 0, false
}

// ErrPermanent marks a refusal that no retry will change (a 4xx other than
// 408/429, an SMTP 5xx, a chat that blocked the bot): the delivery is dead
// at once.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err as a permanent failure.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// IsPermanent reports whether err is a permanent failure.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }
