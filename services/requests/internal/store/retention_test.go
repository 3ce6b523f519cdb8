package store

import (
	"context"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// insertEvents writes one portal event per time given, in that order, so
// their cursors follow it.
func insertEvents(t testing.TB, s *Store, at ...time.Time) {
	t.Helper()
	_, err := s.pool.Exec(context.Background(), `INSERT INTO requests.events (type, portal, occurred_at)
		SELECT 'portal_paused', '{}', u.at FROM unnest($1::timestamptz[]) WITH ORDINALITY AS u(at, n) ORDER BY u.n`, at)
	if err != nil {
		t.Fatal(err)
	}
}

// TestPruneEventsLeavesEveryEventAfterOneCursor: an old event behind a
// recent one (written by a replica whose clock lags) is kept, so what is
// left is every event after the pruned-through cursor, which EventsAfter
// reports with the events.
func TestPruneEventsLeavesEveryEventAfterOneCursor(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	s := New(pgtest.NewPool(t, migrations.Set))
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	old, recent := now.Add(-48*time.Hour), now.Add(-time.Hour)
	insertEvents(t, s, old, old, old, recent, old, recent)

	cutoff := now.Add(-24 * time.Hour)
	n, err := s.PruneEvents(ctx, cutoff, 2)
	if err != nil || n != 2 {
		t.Fatalf("first batch: %d, %v; want 2", n, err)
	}
	if n, err = s.PruneEvents(ctx, cutoff, 2); err != nil || n != 1 {
		t.Fatalf("second batch: %d, %v; want the third old event only", n, err)
	}
	if n, err = s.PruneEvents(ctx, cutoff, 2); err != nil || n != 0 {
		t.Fatalf("third batch: %d, %v; want nothing (the 4th event is recent)", n, err)
	}
	events, pruned, err := s.EventsAfter(ctx, 0, 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if pruned != 3 || len(events) != 3 || events[0].Cursor != 4 || events[1].Cursor != 5 {
		t.Fatalf("pruned through %d, events %v; want 3 and cursors 4, 5, 6", pruned, events)
	}
	// With no event left to read, the answer still says how far pruning went.
	if events, pruned, err = s.EventsAfter(ctx, 6, 100, 10); err != nil || pruned != 3 || len(events) != 0 {
		t.Fatalf("after the last: %v, %d, %v", events, pruned, err)
	}
	if last, err := s.LastEventID(ctx); err != nil || last != 6 {
		t.Fatalf("LastEventID = %d, %v", last, err)
	}
	// Once every event is pruned, the last cursor is the pruned-through one.
	if n, err = s.PruneEvents(ctx, now, 10); err != nil || n != 3 {
		t.Fatalf("prune all: %d, %v", n, err)
	}
	if last, err := s.LastEventID(ctx); err != nil || last != 6 {
		t.Fatalf("LastEventID with every event pruned = %d, %v; want 6", last, err)
	}
}

// BenchmarkPruneEvents measures deleting events older than the retention
// in batches of 1,000 (the production batch), per event.
func BenchmarkPruneEvents(b *testing.B) {
	s := New(pgtest.NewPool(b, migrations.Set))
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	at := make([]time.Time, 1000)
	for i := range at {
		at[i] = now.Add(-48 * time.Hour)
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		insertEvents(b, s, at...)
		b.StartTimer()
		if n, err := s.PruneEvents(ctx, now.Add(-24*time.Hour), len(at)); err != nil || n != len(at) {
			b.Fatalf("pruned %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(at)), "ns/event")
}
