package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/notifier/migrations"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func TestPruneDeliveries(t *testing.T) {
	t.Parallel()
	const stream = "requests"
	now := time.Now().UTC().Truncate(time.Millisecond)
	cutoff := now.Add(-90 * 24 * time.Hour)
	old := cutoff.Add(-time.Hour)

	type bundle struct {
		pool *pgxpool.Pool
		st   *store.Store
	}
	setup := func(t *testing.T, cursor int64) bundle {
		t.Helper()
		pool := pgtest.NewPool(t, migrations.Set)
		if _, err := pool.Exec(testkit.Context(t), `INSERT INTO notifier.cursors (stream, cursor, updated_at) VALUES ($1, $2, $3)`,
			stream, cursor, now); err != nil {
			t.Fatal(err)
		}
		return bundle{pool, store.New(pool)}
	}
	// add writes a delivery as the delivery loop leaves it, recorded at
	// createdAt (ad-hoc SQL: Record cannot put one after the cursor).
	add := func(t *testing.T, b bundle, cursor int64, state domain.DeliveryState, createdAt time.Time) int64 {
		t.Helper()
		var id int64
		if err := b.pool.QueryRow(testkit.Context(t), `INSERT INTO notifier.deliveries (event_cursor, event_type, event_occurred_at,
				request_id, contact_id, kind, address, subject, body_text, body_html, body_json, state, next_attempt_at, created_at, delivered_at)
			VALUES ($1, 'slot_found', $3, $4, $5, 'email', 'ada@example.com', 'Slot found', 'Ada Lovelace, 12 Main St', '', '{}', $2, $3, $3,
				CASE WHEN $2 = 'delivered' THEN $3::timestamptz END)
			RETURNING id`, cursor, string(state), createdAt, uuid.New(), uuid.New()).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	left := func(t *testing.T, b bundle) []int64 {
		t.Helper()
		rows, err := b.pool.Query(testkit.Context(t), `SELECT id FROM notifier.deliveries ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	prune := func(t *testing.T, b bundle, limit int) int {
		t.Helper()
		n, err := b.st.PruneDeliveries(testkit.Context(t), stream, cutoff, limit)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("DeletesOldDeliveredAndDeadAndKeepsPendingRecentAndAfterTheCursor", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 10)
		delivered := add(t, b, 1, domain.Delivered, old)
		dead := add(t, b, 2, domain.Dead, old)
		pending := add(t, b, 3, domain.Pending, old.Add(-365*24*time.Hour))
		recent := add(t, b, 4, domain.Delivered, cutoff.Add(time.Minute))
		atCursor := add(t, b, 10, domain.Delivered, old)
		// Older than the retention but after the stored cursor: a replay
		// of event 11 must still meet its row.
		afterCursor := add(t, b, 11, domain.Delivered, old)

		if n := prune(t, b, 1000); n != 3 {
			t.Fatalf("pruned %d; want the old delivered, dead and at-the-cursor ones", n)
		}
		if got, want := left(t, b), []int64{pending, recent, afterCursor}; !slices.Equal(got, want) {
			t.Fatalf("left %v; want pending %d, recent %d, after the cursor %d (pruned %d, %d, %d)",
				got, pending, recent, afterCursor, delivered, dead, atCursor)
		}
		if n := prune(t, b, 1000); n != 0 {
			t.Fatalf("a second run pruned %d; want nothing left to prune", n)
		}
	})

	t.Run("HonoursTheLimitOldestFirst", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 10)
		// Ids in the opposite order of age: the oldest are the last added.
		var byAge []int64
		for i := range 5 {
			byAge = append([]int64{add(t, b, int64(i+1), domain.Delivered, old.Add(-time.Duration(i)*time.Hour))}, byAge...)
		}
		if n := prune(t, b, 2); n != 2 {
			t.Fatalf("pruned %d with limit 2", n)
		}
		if got := left(t, b); !slices.Equal(got, []int64{byAge[4], byAge[3], byAge[2]}) {
			t.Fatalf("left %v; want the 3 youngest (oldest first: %v)", got, byAge)
		}
	})

	t.Run("APrunedEventReplayedIsNotRecordedAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 0)
		ctx := testkit.Context(t)
		lock, err := b.st.AcquireConsumer(ctx, stream, old)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lock.Close)
		d := domain.Delivery{EventCursor: 7, EventType: domain.SlotFound, EventOccurredAt: old, RequestID: uuid.New(),
			ContactID: uuid.New(), Kind: channel.Email, Address: "ada@example.com", Subject: "Slot found", Text: "t", JSON: []byte(`{}`)}
		if _, err := lock.Record(ctx, 7, []domain.Delivery{d}, old); err != nil {
			t.Fatal(err)
		}
		claimed, err := b.st.Claim(ctx, old, old.Add(time.Minute), []string{string(channel.Email)}, 10)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v, %v", claimed, err)
		}
		if ok, err := b.st.MarkDelivered(ctx, claimed[0], old); err != nil || !ok {
			t.Fatalf("mark delivered: %v, %v", ok, err)
		}
		if n := prune(t, b, 1000); n != 1 {
			t.Fatalf("pruned %d; want the delivered one", n)
		}
		// Requests replays event 7 (the consumer restarted from an older
		// cursor it had in memory): nothing is recorded twice.
		again, err := lock.Record(ctx, 7, []domain.Delivery{d}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 || len(left(t, b)) != 0 {
			t.Fatalf("replay recorded %v; left %v; want nothing", again, left(t, b))
		}
	})

	t.Run("ADeadDeliveryRetriedWhileTheBatchWaitsStays", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 10)
		ctx := testkit.Context(t)
		dead := add(t, b, 1, domain.Dead, old)
		// RetryDelivery's UPDATE, held open: the prune picks the row while
		// it is still dead in its snapshot, then waits for the row lock.
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		if _, err := tx.Exec(ctx, `UPDATE notifier.deliveries SET state = 'pending', attempts = 0 WHERE id = $1`, dead); err != nil {
			t.Fatal(err)
		}
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			n, err := b.st.PruneDeliveries(ctx, stream, cutoff, 1000)
			done <- result{n, err}
		}()
		waitForLockWait(t, b.pool)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if r := <-done; r.err != nil || r.n != 0 {
			t.Fatalf("prune = %d, %v; want the retried delivery kept", r.n, r.err)
		}
		if got := left(t, b); !slices.Equal(got, []int64{dead}) {
			t.Fatalf("left %v; want the retried delivery %d", got, dead)
		}
	})
}

// waitForLockWait returns once a session of pool's database waits for a
// row lock.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testkit.Context(t), 30*time.Second)
	defer cancel()
	for {
		var waiting bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting); err != nil {
			t.Fatalf("waiting for the prune to wait for the row lock: %v", err)
		}
		if waiting {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
