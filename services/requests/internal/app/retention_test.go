package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
	"github.com/slotwatch/slotwatch/services/requests/internal/store"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// TestAReplayOvertakenByPruningEnds: a stream replaying from an old cursor
// while retention prunes past it ends with the cursor it reached and the
// one pruning reached, instead of skipping the events in between. The
// prune runs inside the stream's first send, so it lands after the replay
// read its first page (500 events) and before it reads the next.
func TestAReplayOvertakenByPruningEnds(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	pool := pgtest.NewPool(t, migrations.Set)
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	if _, err := pool.Exec(ctx, `INSERT INTO requests.events (type, portal, occurred_at)
		SELECT 'portal_paused', '{}', $1 FROM generate_series(1, 600)`, now.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New(pool)
	a := app.New(st, nil, testkit.NewClock(now).Now, app.Config{Retention: 24 * time.Hour})
	hub := store.NewHub(st, logger)
	feed := app.NewFeed(st, hub, app.WatchConfig{}, nil, logger)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = hub.Run(runCtx) }()
	go func() { _ = feed.Run(runCtx) }()

	var sent []int64
	err := feed.Watch(ctx, "consumer", 1, func(e domain.Event) error {
		if len(sent) == 0 {
			if n, err := a.Prune(ctx); err != nil || n[store.TableEvents] != 600 {
				t.Errorf("Prune = %v, %v; want the 600 events", n, err)
			}
		}
		sent = append(sent, e.Cursor)
		return nil
	})
	var pruned *domain.CursorPrunedError
	if !errors.As(err, &pruned) || pruned.Cursor != 501 || pruned.PrunedThrough != 600 {
		t.Fatalf("Watch ended with %v, want a CursorPrunedError at 501, pruned through 600", err)
	}
	if len(sent) != 500 || sent[0] != 2 || sent[499] != 501 {
		t.Fatalf("sent %d events (%v..), want the first page, 2..501", len(sent), sent[:min(len(sent), 3)])
	}
}
