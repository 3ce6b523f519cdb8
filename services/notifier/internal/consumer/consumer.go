// Package consumer follows Requests' WatchEvents and turns each event into
// the deliveries it causes, recorded with the event's cursor in one
// transaction (the outbox): after a restart, a SIGKILL or a Requests
// restart it resumes from the stored cursor, so no event is lost and none
// is recorded twice. One replica at a time consumes (store.Consumer's
// lock); the others wait on standby to take over.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/content"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/metrics"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/reconnect"
)

// Stream is the name of Requests' event stream in notifier.cursors.
const Stream = "requests"

// Defaults of Config.
const (
	DefaultStandbyWait = 2 * time.Second
	// skipFlush: events that cause no delivery move the stored cursor only
	// every this many (or with the next event that does): replaying a few
	// hundred such events after a restart costs nothing.
	skipFlush = 500
)

// Events is what the consumer needs of Requests.
type Events interface {
	WatchEvents(ctx context.Context, in *requestsv1.WatchEventsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[requestsv1.WatchEventsResponse], error)
}

// Config configures the consumer.
type Config struct {
	// StandbyWait is how often a standby replica tries to take over.
	StandbyWait time.Duration
}

// Consumer follows the event stream.
type Consumer struct {
	store     *store.Store
	events    Events
	lookup    *Lookup
	templates *content.Templates
	now       func() time.Time
	cfg       Config
	wake      func()
	metrics   *metrics.Notifier
	logger    *slog.Logger
}

// New returns a consumer; wake is called after deliveries are recorded
// (the delivery loop's doorbell).
func New(st *store.Store, events Events, lookup *Lookup, t *content.Templates, now func() time.Time, cfg Config,
	wake func(), m *metrics.Notifier, logger *slog.Logger) *Consumer {
	if cfg.StandbyWait <= 0 {
		cfg.StandbyWait = DefaultStandbyWait
	}
	if wake == nil {
		wake = func() {}
	}
	return &Consumer{store: st, events: events, lookup: lookup, templates: t, now: now, cfg: cfg, wake: wake, metrics: m, logger: logger}
}

// Run consumes until ctx ends: it takes the consumer lock when it is free,
// and follows the stream while it holds it.
func (c *Consumer) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		lock, err := c.store.AcquireConsumer(ctx, Stream, c.now())
		switch {
		case errors.Is(err, store.ErrLocked):
			c.metrics.Active(false)
		case err != nil:
			c.logger.Warn("cannot take the consumer lock", "error", err)
		default:
			c.logger.Info("consuming Requests events: this replica holds the consumer lock")
			c.metrics.Active(true)
			c.hold(ctx, lock)
			lock.Close()
			c.metrics.Active(false)
			c.metrics.Cursor(0)
			if ctx.Err() == nil {
				c.logger.Warn("gave up the consumer lock after a database error; taking it again")
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.cfg.StandbyWait):
		}
	}
	return nil
}

// hold follows the stream, reconnecting to Requests as needed, until ctx
// ends or the lock's connection fails.
func (c *Consumer) hold(ctx context.Context, lock *store.Consumer) {
	ctx, lost := context.WithCancel(ctx)
	defer lost()
	reconnect.Run(ctx, func(ctx context.Context) (bool, error) {
		healthy, err := c.follow(ctx, lock)
		var dbErr *lockError
		if errors.As(err, &dbErr) {
			lost()
		}
		return healthy, err
	}, func(err error, wait time.Duration) {
		c.logger.Warn("Requests event stream dropped; resuming from the stored cursor", "error", err, "retry_in", wait.String())
	})
}

// lockError is a failure of the lock's connection: the lock may be gone.
type lockError struct{ err error }

func (e *lockError) Error() string { return e.err.Error() }
func (e *lockError) Unwrap() error { return e.err }

// follow streams from the stored cursor; it returns when the stream ends,
// saying whether it received anything.
func (c *Consumer) follow(ctx context.Context, lock *store.Consumer) (bool, error) {
	cursor, err := lock.Cursor(ctx)
	if err != nil {
		return false, &lockError{err}
	}
	c.metrics.Cursor(cursor)
	stream, err := c.events.WatchEvents(ctx, &requestsv1.WatchEventsRequest{AfterCursor: cursor})
	if err != nil {
		return false, fmt.Errorf("watch events: %w", err)
	}
	healthy, skipped := false, 0
	for {
		ev, err := stream.Recv()
		if err != nil {
			return healthy, fmt.Errorf("receive event: %w", err)
		}
		healthy = true
		ds, typ, err := c.deliveries(ctx, ev)
		if err != nil {
			return healthy, err
		}
		if len(ds) == 0 {
			c.metrics.Consumed(typ, 0)
			if skipped++; skipped < skipFlush {
				continue
			}
		}
		skipped = 0
		n, err := lock.Record(ctx, ev.GetCursor(), ds, c.now())
		if err != nil {
			return healthy, &lockError{err}
		}
		if len(ds) > 0 {
			c.metrics.Consumed(typ, n)
			c.wake()
		}
		c.metrics.Cursor(ev.GetCursor())
	}
}

var eventTypes = map[requestsv1.EventType]domain.EventType{
	requestsv1.EventType_EVENT_TYPE_SLOT_FOUND: domain.SlotFound,
	requestsv1.EventType_EVENT_TYPE_EXPIRED:    domain.Expired,
	requestsv1.EventType_EVENT_TYPE_CANCELLED:  domain.Cancelled,
}

// deliveries renders the deliveries one event causes: one per contact of
// the request's applicant (for the events contacts hear of) and one per
// subscription hearing of the event on the request's mission.
func (c *Consumer) deliveries(ctx context.Context, ev *requestsv1.WatchEventsResponse) ([]domain.Delivery, string, error) {
	typ, ok := eventTypes[ev.GetType()]
	req := ev.GetRequest()
	if !ok || req == nil {
		return nil, "other", nil
	}
	var contacts []domain.Contact
	applicant, _ := uuid.Parse(req.GetApplicantId())
	if applicant != uuid.Nil && (typ == domain.SlotFound || typ == domain.Expired) {
		var err error
		if contacts, err = c.store.ContactsOf(ctx, applicant); err != nil {
			return nil, "", &lockError{err}
		}
	}
	subs, err := c.store.SubscriptionsFor(ctx, req.GetMissionCode(), typ)
	if err != nil {
		return nil, "", &lockError{err}
	}
	if len(contacts) == 0 && len(subs) == 0 {
		return nil, string(typ), nil
	}
	e := content.Event{
		Cursor: ev.GetCursor(), Type: typ, OccurredAt: ev.GetOccurredAt().AsTime(), RequestID: req.GetId(),
		ApplicantID: req.GetApplicantId(), MissionCode: req.GetMissionCode(), Centre: req.GetCentre(), Category: req.GetVisaCategory(),
		EarliestDate: req.GetEarliestDate(), LatestDate: req.GetLatestDate(),
	}
	for _, s := range req.GetMatchedSlots() {
		e.Slots = append(e.Slots, content.Slot{Date: s.GetDate(), Time: s.GetTime()})
	}
	if e.ApplicantName, err = c.lookup.ApplicantName(ctx, req.GetApplicantId()); err != nil {
		return nil, "", err
	}
	if e.Timezone, err = c.lookup.MissionTimezone(ctx, req.GetMissionCode(), c.now()); err != nil {
		return nil, "", err
	}
	requestID, _ := uuid.Parse(req.GetId())
	var out []domain.Delivery
	add := func(t domain.Target, contact, sub uuid.UUID, operator bool) error {
		d := domain.Delivery{EventCursor: e.Cursor, EventType: typ, EventOccurredAt: e.OccurredAt, RequestID: requestID,
			ContactID: contact, SubscriptionID: sub, Kind: t.Kind, Address: t.Address}
		m, err := c.templates.Render(t.Language, operator, e, d.IdempotencyKey())
		if err != nil {
			return fmt.Errorf("render %s for %s: %w", typ, d.RecipientID(), err)
		}
		d.Subject, d.Text, d.HTML, d.JSON = m.Subject, m.Text, m.HTML, m.JSON
		out = append(out, d)
		return nil
	}
	for _, ct := range contacts {
		if err := add(ct.Target, ct.ID, uuid.Nil, false); err != nil {
			return nil, "", err
		}
	}
	for _, s := range subs {
		if err := add(s.Target, uuid.Nil, s.ID, true); err != nil {
			return nil, "", err
		}
	}
	return out, string(typ), nil
}
