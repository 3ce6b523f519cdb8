// Package consumer follows Requests' WatchEvents and turns each event into
// the deliveries it causes, recorded with the event's cursor in one
// transaction (the outbox): after a restart, a SIGKILL or a Requests
// restart it resumes from the stored cursor, so no event is lost and none
// is recorded twice. The two exceptions are deliberate, logged and
// counted: a recipient whose message cannot be rendered misses the event,
// and events Requests' retention pruned before they were recorded are
// skipped (pruned). One replica at a time consumes (store.Consumer's
// lock); the others wait on standby to take over.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/content"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/metrics"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
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
	// skipIdle: they move it too when the stream has been quiet this long
	// after them.
	skipIdle = time.Second
)

// Events is what the consumer needs of Requests.
type Events interface {
	WatchEvents(ctx context.Context, in *requestsv1.WatchEventsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[requestsv1.WatchEventsResponse], error)
}

// Loop is this replica's delivery loop, as the consumer uses it
// (delivery.Loop): the deliveries it can take are recorded leased to it
// and handed over after the commit, so it sends them without a claim; the
// others are recorded unleased, and the doorbell rings for a claim.
type Loop interface {
	// Offer says until when deliveries recorded now are leased, and how
	// many Hand takes.
	Offer(now time.Time) (leaseUntil time.Time, room int)
	// Sends says whether the loop sends deliveries of kind.
	Sends(kind channel.Kind) bool
	// Hand gives the loop the deliveries recorded leased to it.
	Hand(ds []domain.Delivery)
	// Wake rings the doorbell: deliveries were recorded for a claim.
	Wake()
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
	loop      Loop
	metrics   *metrics.Notifier
	logger    *slog.Logger
}

// New returns a consumer recording deliveries for loop to send.
func New(st *store.Store, events Events, lookup *Lookup, t *content.Templates, now func() time.Time, cfg Config,
	loop Loop, m *metrics.Notifier, logger *slog.Logger) *Consumer {
	if cfg.StandbyWait <= 0 {
		cfg.StandbyWait = DefaultStandbyWait
	}
	return &Consumer{store: st, events: events, lookup: lookup, templates: t, now: now, cfg: cfg, loop: loop, metrics: m, logger: logger}
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
	// oldest: the next stream starts at the oldest event Requests keeps
	// (after_cursor 0), not after the stored cursor, which retention
	// overtook (see pruned).
	oldest := false
	reconnect.Run(ctx, func(ctx context.Context) (bool, error) {
		healthy, err := c.follow(ctx, lock, oldest)
		if healthy {
			oldest = false
		}
		if status.Code(err) == codes.OutOfRange {
			// Not a drop: the same cursor would be refused forever.
			if oldest, err = c.pruned(ctx, lock, err); err == nil {
				return true, errors.New("resuming after the events retention pruned")
			}
		}
		var dbErr *lockError
		if errors.As(err, &dbErr) {
			lost()
		}
		return healthy, err
	}, func(err error, wait time.Duration) {
		c.metrics.Retrying()
		c.logger.Warn("Requests event stream dropped; resuming from the stored cursor", "error", err, "retry_in", wait.String())
	})
}

// pruned handles an OUT_OF_RANGE from WatchEvents: Requests' retention
// (REQUESTS_RETENTION) deleted events after the stored cursor before they
// were recorded. They are lost; retrying the same cursor would be refused
// forever, so the consumer says so and moves on: the stored cursor moves
// to the oldest cursor available, which the error's ErrorInfo names
// (apirule.ReasonEventsPruned); an error without it (a Requests older than
// the detail) makes the next stream start at the oldest event kept
// (oldest), which comes to the same.
func (c *Consumer) pruned(ctx context.Context, lock *store.Consumer, outOfRange error) (oldest bool, err error) {
	stored, err := lock.Cursor(ctx)
	if err != nil {
		return false, &lockError{err}
	}
	c.metrics.Pruned()
	var through int64
	if info, ok := apierr.InfoOf(outOfRange); ok && info.GetReason() == apirule.ReasonEventsPruned {
		through, _ = strconv.ParseInt(info.GetMetadata()[apirule.MetaOldestCursor], 10, 64)
	}
	c.logger.Error("events were lost: Requests' retention pruned them before they were recorded (its REQUESTS_RETENTION is shorter than this consumer was away); resuming from the oldest event kept",
		"stored_cursor", stored, "pruned_through", through, "error", outOfRange)
	if through <= stored {
		return true, nil
	}
	if _, err := lock.Record(ctx, through, nil, c.now()); err != nil {
		return false, &lockError{err}
	}
	c.metrics.Cursor(through)
	return false, nil
}

// lockError is a failure of the lock's connection: the lock may be gone.
type lockError struct{ err error }

func (e *lockError) Error() string { return e.err.Error() }
func (e *lockError) Unwrap() error { return e.err }

// MaxBatch is the most events recorded in one transaction: the events that
// arrived while the previous batch was being recorded, so a burst costs a
// few transactions and a lone event is recorded at once.
const MaxBatch = 500

// follow streams from the stored cursor; it returns when the stream ends,
// saying whether a batch of events got through (prepare).
// With oldest it streams from the oldest event Requests keeps.
func (c *Consumer) follow(ctx context.Context, lock *store.Consumer, oldest bool) (bool, error) {
	cursor, err := lock.Cursor(ctx)
	if err != nil {
		return false, &lockError{err}
	}
	c.metrics.Cursor(cursor)
	if oldest {
		cursor = 0
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.events.WatchEvents(ctx, &requestsv1.WatchEventsRequest{AfterCursor: cursor})
	if err != nil {
		return false, fmt.Errorf("watch events: %w", err)
	}
	// One goroutine receives; the loop below takes what has arrived.
	events, recvErr := make(chan *requestsv1.WatchEventsResponse, MaxBatch), make(chan error, 1)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	// The next batch is read, looked up and rendered while the one before
	// is recorded: record takes them in order, one at a time.
	ready, recorded := make(chan prepared, 1), make(chan error, 1)
	go func() {
		err := c.record(ctx, lock, ready)
		if err != nil {
			cancel()
		}
		recorded <- err
	}()
	healthy, err := c.prepare(ctx, events, recvErr, ready)
	close(ready)
	if rerr := <-recorded; rerr != nil {
		return healthy, rerr
	}
	return healthy, err
}

// prepared is a batch of events made ready for Record: the deliveries
// they cause, up to the cursor of the last.
type prepared struct {
	last  int64
	ds    []domain.Delivery
	types []string
}

// prepare takes the events that have arrived, a batch at a time, and
// hands each batch's deliveries to record; it returns when the stream
// ends, saying whether a batch went to record. Events received whose lookups
// Requests did not answer (it is starting, or going away) are not a
// healthy stream: the waits before the next try keep growing, instead of
// replaying the same events every FirstWait.
func (c *Consumer) prepare(ctx context.Context, events <-chan *requestsv1.WatchEventsResponse, recvErr <-chan error,
	ready chan<- prepared) (bool, error) {
	healthy, skipped, last := false, 0, int64(0)
	quiet := time.NewTimer(skipIdle)
	defer quiet.Stop()
	var ended error
	for {
		// The receiver sent every event it got before the error that
		// ended the stream: those go to record first (after an
		// OUT_OF_RANGE the cursor moves on, and would skip them).
		if ended != nil && len(events) == 0 {
			return healthy, fmt.Errorf("receive event: %w", ended)
		}
		var (
			batch []*requestsv1.WatchEventsResponse
			idle  <-chan time.Time
		)
		if skipped > 0 {
			quiet.Reset(skipIdle)
			idle = quiet.C
		}
		select {
		case ev := <-events:
			batch = append(batch, ev)
		case ended = <-recvErr:
			recvErr = nil
			continue
		case <-ctx.Done():
			return healthy, ctx.Err()
		case <-idle:
		}
		quiet.Stop()
		// Without a batch the stream went quiet after events that reached
		// no one: their cursor is stored now, so a reconnect does not
		// replay them (nor find them pruned by Requests' retention).
		p := prepared{last: last}
		if len(batch) > 0 {
		take:
			for len(batch) < MaxBatch {
				select {
				case ev := <-events:
					batch = append(batch, ev)
				default:
					break take
				}
			}
			ds, types, err := c.deliveries(ctx, batch)
			if err != nil {
				return healthy, err
			}
			p = prepared{last: batch[len(batch)-1].GetCursor(), ds: ds, types: types}
			if len(ds) == 0 {
				for _, t := range types {
					c.metrics.Consumed(t, 0)
				}
				last = p.last
				if skipped += len(batch); skipped < skipFlush {
					continue
				}
				p.types = nil // counted
			}
		}
		skipped = 0
		select {
		case ready <- p:
			// Only a batch handed to record counts: one that reached no
			// one and is not recorded yet leaves the stored cursor where
			// it was, so a failure after it replays it too.
			healthy = true
		case <-ctx.Done():
			return healthy, ctx.Err()
		}
	}
}

// record records the prepared batches in order, moving the cursor, and
// hands the loop its deliveries; it returns when ready closes or a write
// fails (a lockError).
func (c *Consumer) record(ctx context.Context, lock *store.Consumer, ready <-chan prepared) error {
	for p := range ready {
		c.lease(p.ds)
		recorded, err := lock.Record(ctx, p.last, p.ds, c.now())
		if err != nil {
			return &lockError{err}
		}
		for i, t := range p.types {
			if i == 0 {
				c.metrics.Consumed(t, len(recorded))
			} else {
				c.metrics.Consumed(t, 0)
			}
		}
		c.handOver(recorded)
		c.metrics.Cursor(p.last)
	}
	return nil
}

// lease marks the deliveries this replica's loop takes as leased to it.
func (c *Consumer) lease(ds []domain.Delivery) {
	until, room := c.loop.Offer(c.now())
	for i := range ds {
		if room > 0 && c.loop.Sends(ds[i].Kind) {
			ds[i].LeaseUntil = until
			room--
		}
	}
}

// handOver gives the loop the recorded deliveries leased to it, and rings
// for a claim of the others.
func (c *Consumer) handOver(recorded []domain.Delivery) {
	var (
		own      []domain.Delivery
		unleased bool
	)
	for _, d := range recorded {
		if d.LeaseUntil.IsZero() {
			unleased = true
		} else {
			own = append(own, d)
		}
	}
	c.loop.Hand(own)
	if unleased {
		c.loop.Wake()
	}
}

var eventTypes = map[requestsv1.EventType]domain.EventType{
	requestsv1.EventType_EVENT_TYPE_SLOT_FOUND: domain.SlotFound,
	requestsv1.EventType_EVENT_TYPE_EXPIRED:    domain.Expired,
	requestsv1.EventType_EVENT_TYPE_CANCELLED:  domain.Cancelled,
}

// deliveries renders the deliveries a batch of events causes: per event,
// one per contact of the request's applicant (for the events contacts
// hear of) and one per subscription hearing of the event on the request's
// mission. It returns each event's type too, for the metrics.
func (c *Consumer) deliveries(ctx context.Context, batch []*requestsv1.WatchEventsResponse) ([]domain.Delivery, []string, error) {
	type subKey struct {
		mission string
		typ     domain.EventType
	}
	var (
		out      []domain.Delivery
		types    = make([]string, 0, len(batch))
		contacts = map[uuid.UUID][]domain.Contact{}
		subs     = map[subKey][]domain.Subscription{}
		pending  []*requestsv1.WatchEventsResponse
		ids      []string
		seen     = map[string]bool{}
	)
	// First what each event reaches, from this database, once per
	// applicant and per mission in the batch.
	for _, ev := range batch {
		typ, ok := eventTypes[ev.GetType()]
		req := ev.GetRequest()
		if !ok || req == nil {
			types = append(types, "other")
			continue
		}
		types = append(types, string(typ))
		applicant, _ := uuid.Parse(req.GetApplicantId())
		reach := 0
		if applicant != uuid.Nil && (typ == domain.SlotFound || typ == domain.Expired) {
			cs, ok := contacts[applicant]
			if !ok {
				var err error
				if cs, err = c.store.ContactsOf(ctx, applicant); err != nil {
					return nil, nil, &lockError{err}
				}
				contacts[applicant] = cs
			}
			reach += len(cs)
		}
		k := subKey{req.GetMissionCode(), typ}
		ss, ok := subs[k]
		if !ok {
			var err error
			if ss, err = c.store.SubscriptionsFor(ctx, k.mission, typ); err != nil {
				return nil, nil, &lockError{err}
			}
			subs[k] = ss
		}
		if reach += len(ss); reach == 0 {
			continue
		}
		pending = append(pending, ev)
		if id := req.GetApplicantId(); id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(pending) == 0 {
		return nil, types, nil
	}
	// Then what the messages name, from Requests: one call for the names.
	names, err := c.lookup.ApplicantNames(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	for _, ev := range pending {
		typ, req := eventTypes[ev.GetType()], ev.GetRequest()
		e := content.Event{
			Cursor: ev.GetCursor(), Type: typ, OccurredAt: ev.GetOccurredAt().AsTime(), RequestID: req.GetId(),
			ApplicantID: req.GetApplicantId(), ApplicantName: names[req.GetApplicantId()], MissionCode: req.GetMissionCode(),
			Centre: req.GetCentre(), Category: req.GetVisaCategory(), EarliestDate: req.GetEarliestDate(), LatestDate: req.GetLatestDate(),
			SlotCount: int(req.GetMatchedSlotCount()),
		}
		for _, s := range req.GetMatchedSlots() {
			e.Slots = append(e.Slots, content.Slot{Date: s.GetDate(), Time: s.GetTime()})
		}
		if e.Timezone, err = c.lookup.MissionTimezone(ctx, req.GetMissionCode(), c.now()); err != nil {
			return nil, nil, err
		}
		requestID, _ := uuid.Parse(req.GetId())
		add := func(t domain.Target, contact, sub uuid.UUID, operator bool) {
			d := domain.Delivery{EventCursor: e.Cursor, EventType: typ, EventOccurredAt: e.OccurredAt, RequestID: requestID,
				ContactID: contact, SubscriptionID: sub, Kind: t.Kind, Address: t.Address}
			render := c.templates.Render
			if t.Kind == channel.Webhook {
				render = c.templates.RenderJSON
			}
			m, err := render(t.Language, operator, e, d.IdempotencyKey())
			if err != nil {
				// The same event renders the same way at every replay:
				// failing the batch would stop the stream at this event
				// for good. This recipient misses it; the others, and the
				// events after it, go on.
				c.metrics.RenderFailed(string(typ))
				c.logger.Error("cannot render a message: this recipient is not notified of the event",
					"event_cursor", e.Cursor, "event_type", string(typ), "recipient_id", d.RecipientID().String(),
					"kind", string(t.Kind), "language", t.Language, "error", err)
				return
			}
			d.Subject, d.Text, d.HTML, d.JSON = m.Subject, m.Text, m.HTML, m.JSON
			if t.Kind == channel.Webhook {
				// A webhook posts the JSON alone (which holds the text):
				// the log keeps what is sent, not every rendering.
				d.Text = ""
			}
			out = append(out, d)
		}
		applicant, _ := uuid.Parse(req.GetApplicantId())
		if typ == domain.SlotFound || typ == domain.Expired {
			for _, ct := range contacts[applicant] {
				add(ct.Target, ct.ID, uuid.Nil, false)
			}
		}
		for _, s := range subs[subKey{req.GetMissionCode(), typ}] {
			add(s.Target, uuid.Nil, s.ID, true)
		}
	}
	return out, types, nil
}
