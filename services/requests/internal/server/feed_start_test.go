package server_test

import (
	"context"
	"testing"
	"time"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestAnEventInFlightWhenAReplicaStartsReachesItsStreams: a replica whose
// feed starts while another replica writes an event (inserted, not yet
// committed) reads that event once it commits. The feed starts after the
// last committed event: the events' numbering (nextval moved at the
// INSERT) counts only for the cursors a consumer may hold
// (LastCursorGiven); taken as the start, the uncommitted id was skipped
// for good.
func TestAnEventInFlightWhenAReplicaStartsReachesItsStreams(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	c := b.server.client
	a := createApplicant(t, c)
	createRequest(t, c, a.GetId(), reqArgs{}) // event 1
	b.server.stop()

	ctx := testkit.Context(t)
	// Another replica's write, as appendEvents does it: lock, insert,
	// notify; not committed yet.
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	var inFlight int64
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7316003)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `INSERT INTO requests.events (type, request_id, request, occurred_at)
		SELECT type, request_id, request, occurred_at FROM requests.events ORDER BY id LIMIT 1 RETURNING id`).Scan(&inFlight); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('requests_events', '')`); err != nil {
		t.Fatal(err)
	}

	// This replica starts now, and a consumer watches from the start.
	c = startServer(t, b.pool, serverOpts{now: b.clock.Now}).client
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := c.WatchEvents(sctx, &requestsv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	// The other replica commits; then one more event.
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	next := createRequest(t, c, a.GetId(), reqArgs{})
	var got []int64
	for {
		e, err := s.Recv()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, e.GetCursor())
		if e.GetRequest().GetId() == next.GetId() {
			break
		}
	}
	if len(got) != 2 || got[0] != inFlight {
		t.Fatalf("stream from 0: first event %d, then cursors %v; want %d (committed by another replica as this one started), then the next", first.GetCursor(), got, inFlight)
	}
}
