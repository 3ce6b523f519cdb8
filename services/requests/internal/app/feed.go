package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
	"github.com/slotwatch/slotwatch/services/requests/internal/metrics"
	"github.com/slotwatch/slotwatch/services/requests/internal/store"
)

// Defaults of WatchConfig.
const (
	DefaultWatchPerCaller = 8
	DefaultWatchTotal     = 256
	// DefaultWatchBuffer is how many batches of live events a stream may
	// have waiting before it falls behind.
	DefaultWatchBuffer = 16
	// WatchRetryDelay is the RetryInfo of a stream refused by a limit: no
	// time is known at which a stream will end, so this is a pace, not a
	// promise.
	WatchRetryDelay = 10 * time.Second
)

// eventPage is how many events one query of the events table reads, live or
// replaying.
const eventPage = 500

// WatchConfig bounds WatchEvents streams on one replica.
type WatchConfig struct {
	// PerCaller: streams one caller (one token) may have open at once.
	PerCaller int
	// Total: streams open at once, every caller together.
	Total int
	// Buffer: batches of live events a stream may have waiting to be sent;
	// past that it goes back to replaying from its cursor.
	Buffer int
}

// Feed serves WatchEvents streams. It is the one reader of new events of
// a replica: woken by the hub's LISTEN, it reads what was committed after
// the highest cursor it has seen, once, and hands that batch to every
// stream. A stream first replays from its own cursor up to where the feed
// stood when it subscribed, in pages, then takes the feed's batches: the
// two meet at that cursor, so nothing is missed or sent twice. A stream
// whose client reads slower than events come has a bounded buffer; when it
// is full the feed drops the stream, which replays from its cursor again
// and subscribes anew, so nobody else waits for it.
type Feed struct {
	store   *store.Store
	cfg     WatchConfig
	metrics *metrics.Requests
	logger  *slog.Logger

	wake        <-chan struct{}
	unsubscribe func()
	ready       chan struct{} // closed once last is known

	mu        sync.Mutex
	last      int64 // the highest cursor read (and handed out) so far
	subs      map[*subscription]struct{}
	perCaller map[any]int
	total     int
}

// subscription is one stream's place in the feed.
type subscription struct {
	// from is the feed's last cursor when the stream subscribed: events up
	// to it come from the stream's replay, later ones from ch.
	from int64
	// ch carries batches of live events; the feed closes it when the
	// stream falls behind.
	ch chan []domain.Event
}

// NewFeed returns the feed of a replica; Run must run for streams to get
// events. Zero fields of cfg take their defaults.
func NewFeed(st *store.Store, hub *store.Hub, cfg WatchConfig, m *metrics.Requests, logger *slog.Logger) *Feed {
	if cfg.PerCaller <= 0 {
		cfg.PerCaller = DefaultWatchPerCaller
	}
	if cfg.Total <= 0 {
		cfg.Total = DefaultWatchTotal
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultWatchBuffer
	}
	if logger == nil {
		logger = slog.Default()
	}
	// Subscribed to the hub before it runs, so its first wake (on
	// connecting) is not missed, and before Run reads the last event id, so
	// an event committed after that read wakes the feed.
	wake, unsubscribe := hub.Subscribe()
	return &Feed{store: st, cfg: cfg, metrics: m, logger: logger, wake: wake, unsubscribe: unsubscribe,
		ready: make(chan struct{}), subs: map[*subscription]struct{}{}, perCaller: map[any]int{}}
}

// Run reads new events whenever the hub wakes it, until ctx ends. The hub
// wakes it on every (re)connection too, so events committed while it was
// not listening are read then.
func (f *Feed) Run(ctx context.Context) error {
	defer f.unsubscribe()
	err := f.retry(ctx, "read the last event id", func() error {
		last, err := f.store.LastEventID(ctx)
		if err == nil {
			f.mu.Lock()
			f.last = last
			f.mu.Unlock()
		}
		return err
	})
	if err != nil {
		return nil // ctx ended
	}
	close(f.ready)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
		}
		if err := f.retry(ctx, "read new events", func() error { return f.readNew(ctx) }); err != nil {
			return nil
		}
	}
}

// retry runs fn until it succeeds or ctx ends (then it returns ctx's error),
// backing off between attempts.
func (f *Feed) retry(ctx context.Context, what string, fn func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
		f.logger.Warn("event feed: "+what+" failed; retrying", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// readNew reads every event after the last one read and hands them out.
// Only Run calls it, so last changes nowhere else.
func (f *Feed) readNew(ctx context.Context) error {
	for {
		f.mu.Lock()
		after := f.last
		f.mu.Unlock()
		// The feed reads what was committed moments ago: retention, which
		// prunes what is older than REQUESTS_RETENTION, is never ahead of it.
		events, _, err := f.store.EventsAfter(ctx, after, math.MaxInt64, eventPage)
		f.metrics.EventsRead(metrics.ReadFeed)
		if err != nil {
			return err
		}
		if len(events) > 0 {
			f.publish(events)
		}
		if len(events) < eventPage {
			return nil
		}
	}
}

// publish hands a batch to every stream and moves last past it, in one
// step, so a stream subscribing now gets the batch either from its replay
// (from ≥ the batch) or from ch, never both or neither.
func (f *Feed) publish(events []domain.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = events[len(events)-1].Cursor
	for s := range f.subs {
		select {
		case s.ch <- events:
		default:
			delete(f.subs, s)
			close(s.ch)
			f.metrics.FellBehind()
		}
	}
}

// admit counts a new stream of caller against the limits.
func (f *Feed) admit(caller any) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.perCaller[caller] >= f.cfg.PerCaller:
		f.metrics.WatchRefused(metrics.LimitPerCaller)
		return nil, fmt.Errorf("%w: this caller has %d open, the most one caller may (REQUESTS_WATCH_PER_CALLER)", domain.ErrTooManyWatchers, f.perCaller[caller])
	case f.total >= f.cfg.Total:
		f.metrics.WatchRefused(metrics.LimitTotal)
		return nil, fmt.Errorf("%w: this server has %d open, the most it serves (REQUESTS_WATCH_MAX)", domain.ErrTooManyWatchers, f.total)
	}
	f.perCaller[caller]++
	f.total++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.perCaller[caller]--; f.perCaller[caller] == 0 {
			delete(f.perCaller, caller)
		}
		f.total--
	}, nil
}

func (f *Feed) subscribe() *subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &subscription{from: f.last, ch: make(chan []domain.Event, f.cfg.Buffer)}
	f.subs[s] = struct{}{}
	return s
}

func (f *Feed) drop(s *subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, s)
}

// errFellBehind ends one subscription of a stream that could not keep up.
var errFellBehind = errors.New("stream fell behind the live feed")

// Watch sends caller every event after the cursor after, in cursor order,
// then every new one, until ctx ends or send fails. After 0 means from the
// oldest event kept; a cursor (or a stream that falls) behind the events
// retention pruned ends with a *domain.CursorPrunedError; a cursor after
// the last event is a field error of after_cursor. caller tells callers
// apart for the per-caller limit (any comparable value); a stream past a
// limit is refused with domain.ErrTooManyWatchers before anything is read.
func (f *Feed) Watch(ctx context.Context, caller any, after int64, send func(domain.Event) error) error {
	release, err := f.admit(caller)
	if err != nil {
		return err
	}
	defer release()
	defer f.metrics.Watching()()
	select {
	case <-f.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if after > 0 {
		// A cursor this server never handed out (a consumer's stored one,
		// with the database restored from a backup or its events recreated)
		// would skip every new event up to it, in silence. Every event a
		// stream sent is committed, so the last one is at least its cursor.
		last, err := f.store.LastCursorGiven(ctx)
		if err != nil {
			return err
		}
		if after > last {
			var v apirule.FieldErrors
			v.Add("after_cursor", "must not be after the last event's cursor, %d: a cursor from another database, or from before this one was restored? Start from %d (or 0, the oldest event kept) after re-reading the state you need", last, last)
			return v.Err()
		}
	}
	cursor := after
	for {
		s := f.subscribe()
		err := f.follow(ctx, s, &cursor, send)
		f.drop(s)
		if !errors.Is(err, errFellBehind) {
			return err
		}
		f.logger.DebugContext(ctx, "event stream fell behind; replaying from its cursor", "cursor", cursor)
	}
}

// follow replays from *cursor up to s.from, then sends s's live batches;
// *cursor is the last event sent.
func (f *Feed) follow(ctx context.Context, s *subscription, cursor *int64, send func(domain.Event) error) error {
	for *cursor < s.from {
		events, pruned, err := f.store.EventsAfter(ctx, *cursor, s.from, eventPage)
		f.metrics.EventsRead(metrics.ReadReplay)
		if err != nil {
			return err
		}
		// Retention pruned events this stream has not seen: say so rather
		// than skip them. A stream from 0 (nothing seen yet) starts at the
		// oldest event kept.
		if *cursor != 0 && *cursor < pruned {
			return &domain.CursorPrunedError{Cursor: *cursor, PrunedThrough: pruned}
		}
		for _, e := range events {
			if err := send(e); err != nil {
				return err
			}
			*cursor = e.Cursor
		}
		if len(events) < eventPage {
			// Ids rolled back by aborted writers leave holes: nothing
			// more up to from.
			*cursor = max(*cursor, s.from)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case events, ok := <-s.ch:
			if !ok {
				return errFellBehind
			}
			for _, e := range events {
				if e.Cursor <= *cursor {
					continue
				}
				if err := send(e); err != nil {
					return err
				}
				*cursor = e.Cursor
			}
		}
	}
}
