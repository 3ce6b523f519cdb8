package pgdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slotwatch/slotwatch/services/platform/reconnect"
)

// A LISTEN connection can die without a word (a NAT or firewall entry
// dropped, the server's host gone): reads then block forever and nobody is
// woken again. So after IdleCheck without a notification the listener
// pings, and reconnects when no answer comes within PingTimeout.
const (
	DefaultIdleCheck   = 30 * time.Second
	DefaultPingTimeout = 10 * time.Second
)

// Listener holds the one LISTEN connection of a process (AccountPool's
// account-free wake-ups, Requests' event feed) on a connection of its own
// outside the pool. It reconnects with backoff (reconnect.Run) until its
// context ends, and pings an idle connection to find out whether it is
// silently dead.
type Listener struct {
	// Config is a copy of the pool's connection settings.
	Config *pgx.ConnConfig
	// Channels are LISTENed to on every connection.
	Channels []string
	// Notify is called with each notification.
	Notify func(*pgconn.Notification)
	// Missed is called each time the listener (re)starts listening, the
	// first time included: notifications sent while it was not listening
	// are gone, so the caller re-scans what they would have told it.
	Missed func()
	// Logger is told of each lost connection (nil: slog.Default()).
	Logger *slog.Logger
	// IdleCheck and PingTimeout: 0 is DefaultIdleCheck, DefaultPingTimeout.
	IdleCheck, PingTimeout time.Duration
}

// Run listens until ctx ends. The waits between tries start over after a
// connection that got as far as listening.
func (l *Listener) Run(ctx context.Context) {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	reconnect.Run(ctx, l.listen, func(err error, wait time.Duration) {
		logger.WarnContext(ctx, "LISTEN connection lost; reconnecting", "channels", strings.Join(l.Channels, ","), "error", err, "retry_in", wait)
	})
}

// listen returns whether it got as far as listening, and why it stopped.
func (l *Listener) listen(ctx context.Context) (bool, error) {
	idle, pingTimeout := l.IdleCheck, l.PingTimeout
	if idle <= 0 {
		idle = DefaultIdleCheck
	}
	if pingTimeout <= 0 {
		pingTimeout = DefaultPingTimeout
	}
	// A server that accepts the connection and then goes silent must not
	// hold the listener in its handshake forever either.
	cctx, cancel := context.WithTimeout(ctx, idle+pingTimeout)
	conn, err := pgx.ConnectConfig(cctx, l.Config)
	if err != nil {
		cancel()
		return false, err
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(c)
	}()
	for _, ch := range l.Channels {
		if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			cancel()
			return false, fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	cancel()
	if l.Missed != nil {
		l.Missed()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, idle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if l.Notify != nil {
				l.Notify(n)
			}
		case ctx.Err() != nil:
			return true, ctx.Err()
		case errors.Is(wctx.Err(), context.DeadlineExceeded):
			// Idle: pgx turns the deadline into a read deadline, which
			// leaves the connection usable.
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return true, fmt.Errorf("no answer to a ping after %s without notifications: %w", idle, err)
			}
		default:
			return true, err
		}
	}
}
