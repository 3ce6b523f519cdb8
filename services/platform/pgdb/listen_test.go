package pgdb_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slotwatch/slotwatch/services/platform/faultproxy"
	"github.com/slotwatch/slotwatch/services/platform/pgdb"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
)

const testChannel = "listen_test"

// listenerBundle is a Listener running on a connection through a fault
// proxy, and a direct connection that notifies and terminates backends.
type listenerBundle struct {
	proxy  *faultproxy.Proxy
	direct *pgx.Conn
	// wakes receives "notify" per notification and "missed" per (re)start.
	wakes chan string
}

func setupListener(t *testing.T) *listenerBundle {
	t.Helper()
	url := pgtest.NewURL(t)
	ctx := t.Context()
	direct, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Close(context.Background()) })
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	srv := faultproxy.NewServer()
	t.Cleanup(srv.Close)
	proxy, err := srv.Start("postgres", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = proxy.DialContext
	cfg.RuntimeParams["application_name"] = "listen_test"
	b := &listenerBundle{proxy: proxy, direct: direct, wakes: make(chan string, 100)}
	l := &pgdb.Listener{
		Config: cfg, Channels: []string{testChannel},
		Notify: func(*pgconn.Notification) { b.wakes <- "notify" },
		Missed: func() { b.wakes <- "missed" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// Short, so that a silent connection is found out within the test.
		IdleCheck: 200 * time.Millisecond, PingTimeout: 300 * time.Millisecond,
	}
	lctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(lctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	b.want(t, "missed", "on first listening")
	return b
}

// want waits for the next wake and checks its kind.
func (b *listenerBundle) want(t *testing.T, kind, when string) {
	t.Helper()
	select {
	case got := <-b.wakes:
		if got != kind {
			t.Fatalf("%s: got a %q wake, want %q", when, got, kind)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no %q wake within 15s", when, kind)
	}
}

// notify sends a notification until it arrives, skipping the "missed"
// wakes of reconnects: a notification sent while the listener is between
// connections is lost, which is what Missed is for.
func (b *listenerBundle) notify(t *testing.T) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if _, err := b.direct.Exec(t.Context(), `SELECT pg_notify($1, '')`, testChannel); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-b.wakes:
			if got == "notify" {
				return
			}
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatal("no notification arrives")
		}
	}
}

func (b *listenerBundle) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-b.wakes:
		t.Fatalf("a %q wake on a healthy, quiet connection", got)
	case <-time.After(d):
	}
}

func TestListener(t *testing.T) {
	t.Parallel()

	t.Run("QuietHealthyConnectionStays", func(t *testing.T) {
		t.Parallel()
		b := setupListener(t)
		b.notify(t)
		// Several idle pings pass without a reconnect.
		b.quiet(t, time.Second)
		b.notify(t)
	})

	t.Run("RecoversFromTerminatedBackend", func(t *testing.T) {
		t.Parallel()
		b := setupListener(t)
		b.notify(t)
		var n int
		err := b.direct.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'listen_test' AND datname = current_database()`).Scan(&n)
		if err != nil || n != 1 {
			t.Fatalf("terminate the listener's backend: %d terminated, %v", n, err)
		}
		b.want(t, "missed", "after its backend was terminated")
		b.notify(t)
	})

	t.Run("RecoversFromSilentlyDeadConnection", func(t *testing.T) {
		t.Parallel()
		b := setupListener(t)
		b.notify(t)
		// The listener's connection carries nothing from now on, without
		// closing; new connections work. Only a ping finds that out.
		if err := b.proxy.Timeout(); err != nil {
			t.Fatal(err)
		}
		b.proxy.Bypass()
		b.want(t, "missed", "after the connection died silently")
		b.notify(t)
	})
}
