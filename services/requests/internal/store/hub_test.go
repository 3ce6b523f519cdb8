package store

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// TestHubWakesAfterItsConnectionIsTerminated: the hub wakes its
// subscribers on connecting, on each notification, and again when its
// LISTEN connection was terminated and it listens anew (the events
// committed in between are read then); later notifications arrive. Silent
// connections are pgdb.Listener's tests.
func TestHubWakesAfterItsConnectionIsTerminated(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t, migrations.Set)
	db, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	hub := NewHub(New(db), slog.New(slog.NewTextHandler(io.Discard, nil)))
	wake, unsubscribe := hub.Subscribe()
	defer unsubscribe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitWake := func(what string) {
		t.Helper()
		select {
		case <-wake:
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake: %s", what)
		}
	}
	notify := func() {
		t.Helper()
		if _, err := db.Exec(context.Background(), `SELECT pg_notify($1, '')`, EventChannel); err != nil {
			t.Fatal(err)
		}
	}
	waitWake("on connecting")
	notify()
	waitWake("on a notification")

	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate the hub's connection: %d terminated, %v", n, err)
	}
	waitWake("on listening again")
	notify()
	waitWake("on a notification after reconnecting")
}
