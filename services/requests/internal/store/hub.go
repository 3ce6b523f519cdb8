package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slotwatch/slotwatch/services/platform/reconnect"
)

// Hub is the one LISTEN connection of a server process. It wakes its
// subscribers (the event feed, app.Feed, which reads new events once for
// every stream) when events are committed. A wake carries no data, so a
// missed or merged notification costs nothing: whenever the hub
// (re)connects it wakes everyone, because notifications sent while it was
// not listening are gone.
type Hub struct {
	cfg    *pgx.ConnConfig
	logger *slog.Logger
	// idle and pingTimeout: see hubIdleCheck and hubPingTimeout (tests
	// shorten them).
	idle, pingTimeout time.Duration

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// NewHub returns a hub that listens with a copy of the store pool's
// connection settings, on its own connection outside the pool.
func NewHub(s *Store, logger *slog.Logger) *Hub {
	if logger == nil {
		logger = slog.Default()
	}
	return &Hub{cfg: s.pool.Config().ConnConfig.Copy(), logger: logger, subs: map[chan struct{}]struct{}{},
		idle: hubIdleCheck, pingTimeout: hubPingTimeout}
}

// A connection can die without a word (a NAT or firewall entry dropped, the
// server's host gone): reads then block forever and every stream would wait
// for wakes that never come. So after hubIdleCheck without a notification
// the hub pings, and reconnects (waking everyone) when no answer comes
// within hubPingTimeout.
const (
	hubIdleCheck   = 30 * time.Second
	hubPingTimeout = 10 * time.Second
)

// Subscribe returns a channel that receives a value after events may have
// been committed (at most one wake is buffered), and a function to
// unsubscribe. Subscribe before reading the events table, so nothing
// committed after that read goes unnoticed.
func (h *Hub) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

func (h *Hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run listens until ctx ends, reconnecting with backoff when the connection
// drops (reconnect.Run: the waits start over after a connection that got
// as far as listening).
func (h *Hub) Run(ctx context.Context) error {
	reconnect.Run(ctx, h.listen, func(err error, wait time.Duration) {
		h.logger.Warn("event listener lost its connection; reconnecting", "error", err, "retry_in", wait)
	})
	return nil
}

// listen returns whether it got as far as listening, and why it stopped.
func (h *Hub) listen(ctx context.Context) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, h.cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{EventChannel}.Sanitize()); err != nil {
		return false, err
	}
	h.wakeAll()
	for {
		wctx, cancel := context.WithTimeout(ctx, h.idle)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			h.wakeAll()
		case ctx.Err() != nil:
			return true, ctx.Err()
		case wctx.Err() != nil:
			// Idle: a read deadline, which leaves the connection usable.
			pctx, cancel := context.WithTimeout(ctx, h.pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return true, fmt.Errorf("no answer to a ping after %s without notifications: %w", h.idle, err)
			}
		default:
			return true, err
		}
	}
}
