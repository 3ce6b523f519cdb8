package store

import (
	"context"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slotwatch/slotwatch/services/platform/pgdb"
)

// Hub is the one LISTEN connection of a server process (a pgdb.Listener).
// It wakes its subscribers (the event feed, app.Feed, which reads new
// events once for every stream) when events are committed. A wake carries
// no data, so a missed or merged notification costs nothing: whenever the
// listener (re)connects it wakes everyone, because notifications sent while
// it was not listening are gone.
type Hub struct {
	cfg    *pgx.ConnConfig
	logger *slog.Logger

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// NewHub returns a hub that listens with a copy of the store pool's
// connection settings, on its own connection outside the pool.
func NewHub(s *Store, logger *slog.Logger) *Hub {
	if logger == nil {
		logger = slog.Default()
	}
	return &Hub{cfg: s.pool.Config().ConnConfig.Copy(), logger: logger, subs: map[chan struct{}]struct{}{}}
}

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
// drops or goes silent (pgdb.Listener).
func (h *Hub) Run(ctx context.Context) error {
	l := &pgdb.Listener{
		Config: h.cfg, Channels: []string{EventChannel}, Logger: h.logger,
		Notify: func(*pgconn.Notification) { h.wakeAll() },
		Missed: h.wakeAll,
	}
	l.Run(ctx)
	return nil
}
