package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

type seenEvent struct {
	cursor    int64
	typ       string
	requestID string
}

func (e seenEvent) String() string { return fmt.Sprintf("%d:%s:%s", e.cursor, e.typ, e.requestID) }

var eventTypeNames = map[requestsv1.EventType]string{
	requestsv1.EventType_EVENT_TYPE_CREATED:    "created",
	requestsv1.EventType_EVENT_TYPE_SLOT_FOUND: "slot_found",
	requestsv1.EventType_EVENT_TYPE_CANCELLED:  "cancelled",
	requestsv1.EventType_EVENT_TYPE_EXPIRED:    "expired",
}

// receive reads n events from the stream.
func receive(t *testing.T, s requestsv1.RequestsService_WatchEventsClient, n int) []seenEvent {
	t.Helper()
	var out []seenEvent
	for len(out) < n {
		ev, err := s.Recv()
		if err != nil {
			t.Fatalf("Recv after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, seenEvent{ev.GetCursor(), eventTypeNames[ev.GetType()], ev.GetRequest().GetId()})
	}
	return out
}

func eventsTable(t *testing.T, b *testBundle) []seenEvent {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT id, type, request_id::text FROM requests.events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []seenEvent
	for rows.Next() {
		var e seenEvent
		if err := rows.Scan(&e.cursor, &e.typ, &e.requestID); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// writeRequests starts writers goroutines, counted in wg, that wait for
// start to close and then each create perWriter requests of applicant
// (writer w at mission m<w>), handing each new request's id to created
// when it is not nil.
func writeRequests(t *testing.T, c requestsv1.RequestsServiceClient, wg *sync.WaitGroup, start <-chan struct{},
	applicant string, writers, perWriter int, created func(id string)) {
	t.Helper()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range perWriter {
				r, err := c.CreateAppointmentRequest(context.Background(), &requestsv1.CreateAppointmentRequestRequest{
					ApplicantId: applicant, MissionCode: fmt.Sprintf("m%d", w), Centre: "paris", VisaCategory: "tourism",
					EarliestDate: "2030-07-01", LatestDate: "2030-07-10",
				})
				if err != nil {
					t.Errorf("create: %v", err)
					return
				}
				if created != nil {
					created(r.GetRequest().GetId())
				}
			}
		}()
	}
}

func TestWatchEvents(t *testing.T) {
	t.Parallel()

	t.Run("ReplaysThenDeliversLiveEventsWithSnapshots", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		a := createApplicant(t, c)
		r := createRequest(t, c, a.GetId(), reqArgs{})
		ctx, cancel := context.WithCancel(testkit.Context(t))
		defer cancel()
		s, err := c.WatchEvents(ctx, &requestsv1.WatchEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		first, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if first.GetType() != requestsv1.EventType_EVENT_TYPE_CREATED || first.GetRequest().GetId() != r.GetId() ||
			first.GetRequest().GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING || first.GetOccurredAt() == nil {
			t.Fatalf("first event = %v", first)
		}
		// Live: a check that finds a slot arrives with the request as it
		// became.
		cl := claimOne(t, c, "fra")
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("paris", "tourism", "2030-07-03"))
		live, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got := live.GetRequest()
		if live.GetType() != requestsv1.EventType_EVENT_TYPE_SLOT_FOUND || live.GetCursor() <= first.GetCursor() ||
			got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_SLOT_FOUND || len(got.GetMatchedSlots()) != 1 || got.GetCheckCount() != 1 {
			t.Fatalf("live event = %v", live)
		}
	})

	t.Run("ReconnectWithCursorMissesNothingAndRepeatsNothing", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		// Writers keep producing events from several goroutines while the
		// subscriber is killed and comes back.
		const writers, perWriter = 4, 10
		var (
			wg  sync.WaitGroup
			ids = make(chan string, writers*perWriter)
		)
		start := make(chan struct{})
		writeRequests(t, c, &wg, start, a.GetId(), writers, perWriter, func(id string) { ids <- id })
		// Cancel some requests too, so there is more than one event type.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				id := <-ids
				if _, err := c.CancelAppointmentRequest(context.Background(), &requestsv1.CancelAppointmentRequestRequest{Id: id}); err != nil {
					t.Errorf("cancel: %v", err)
				}
			}
		}()
		const total = writers*perWriter + 5

		ctx1, kill := context.WithCancel(testkit.Context(t))
		s1, err := c.WatchEvents(ctx1, &requestsv1.WatchEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		close(start)
		got := receive(t, s1, 17)
		kill() // the subscriber dies mid-way
		// Events already buffered on the client are lost with it: it resumes
		// from the last one it processed.
		for {
			if _, err := s1.Recv(); err != nil {
				if !isCode(err, codes.Canceled) {
					t.Fatalf("killed stream: %v", err)
				}
				break
			}
		}

		s2, err := c.WatchEvents(testkit.Context(t), &requestsv1.WatchEventsRequest{AfterCursor: got[len(got)-1].cursor})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, receive(t, s2, total-len(got))...)
		wg.Wait()
		want := eventsTable(t, bundle)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("stream delivered\n%v\nevents table holds\n%v", got, want)
		}
		// And the resumed stream is still live.
		r := createRequest(t, c, a.GetId(), reqArgs{})
		if next := receive(t, s2, 1)[0]; next.requestID != r.GetId() || next.typ != "created" {
			t.Fatalf("next live event = %v", next)
		}
	})

	t.Run("ServerStopEndsStreamsSoClientsResume", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		s, err := c.WatchEvents(testkit.Context(t), &requestsv1.WatchEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		// One live event first, so the stream is established and waiting.
		createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{})
		receive(t, s, 1)
		done := make(chan error, 1)
		go func() { _, err := s.Recv(); done <- err }()
		bundle.server.stop()
		if err := <-done; !isCode(err, codes.Unavailable) {
			t.Fatalf("stream ended with %v, want UNAVAILABLE", err)
		}
	})
}

// TestWatchEventsRefusesACursorAfterTheLastEvent: a cursor after every
// event there is (a consumer's stored cursor, with Requests' database
// restored from a backup or its events table recreated; a typo) is
// refused, naming the last cursor. It used to be accepted: the stream
// then skipped every new event up to that cursor, silently. (Only until
// new events reach that cursor: TestRestoreRunbookKeepsTheStoredCursor.)
func TestWatchEventsRefusesACursorAfterTheLastEvent(t *testing.T) {
	t.Parallel()
	c, bundle := setup(t)
	a := createApplicant(t, c)
	createRequest(t, c, a.GetId(), reqArgs{})
	last := eventsTable(t, bundle)[0].cursor

	ctx, cancel := context.WithTimeout(testkit.Context(t), 5*time.Second)
	defer cancel()
	s, err := c.WatchEvents(ctx, &requestsv1.WatchEventsRequest{AfterCursor: last + 1000})
	if err != nil {
		t.Fatal(err)
	}
	// New events come meanwhile: none may be skipped in silence.
	createRequest(t, c, a.GetId(), reqArgs{mission: "bel"})
	ev, err := s.Recv()
	wantViolation(t, err, "after_cursor")
	if ev != nil {
		t.Fatalf("got event %v", ev)
	}
	// It names the last cursor there was (the second request may have
	// come before the stream started or after).
	named := false
	for _, e := range eventsTable(t, bundle) {
		named = named || strings.Contains(apierr.FieldViolations(err)["after_cursor"], fmt.Sprintf("cursor, %d:", e.cursor))
	}
	if !named {
		t.Fatalf("violation %q names no event's cursor", apierr.FieldViolations(err)["after_cursor"])
	}

	// The last cursor itself is fine: the stream goes on from there.
	s, err = c.WatchEvents(testkit.Context(t), &requestsv1.WatchEventsRequest{AfterCursor: last})
	if err != nil {
		t.Fatal(err)
	}
	if got := receive(t, s, 1); got[0].cursor <= last {
		t.Fatalf("after %d got %v", last, got)
	}
}

// restoreStep is the step of OPERATIONS, "Restoring Requests' database",
// as written there, with S the largest cursor a consumer stored.
const restoreStep = `SELECT setval('requests.events_id_seq', greatest($1, last_value)) FROM requests.events_id_seq`

// TestRestoreRunbookKeepsTheStoredCursor: Requests' database restored
// from a backup while a consumer stored a cursor. The refusal of a cursor
// after the last event lasts only until new events are numbered up to it;
// then a stream from it would skip them. The runbook moves the events'
// numbering past the stored cursor, never back, before Requests serves:
// the consumer then resumes from its cursor at once, and gets every event
// after it (those kept from before the backup, then every new one).
func TestRestoreRunbookKeepsTheStoredCursor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// backup: events the backup holds; stored: the consumer's cursor
		// (1-based positions among the 3 events made before).
		backup, stored int
	}{
		{name: "AConsumerAheadOfTheBackup", backup: 1, stored: 3},
		{name: "AConsumerBehindTheBackup", backup: 3, stored: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, b := setup(t)
			c := b.server.client
			a := createApplicant(t, c)
			var before []string
			for range 3 {
				before = append(before, createRequest(t, c, a.GetId(), reqArgs{}).GetId())
			}
			ev := eventsTable(t, b)
			if len(ev) != 3 {
				t.Fatalf("events %v", ev)
			}
			stored, last := ev[tc.stored-1].cursor, ev[tc.backup-1].cursor

			// The restore: the backup's events and the backup's numbering.
			b.server.stop()
			ctx := testkit.Context(t)
			var seq string
			if err := b.pool.QueryRow(ctx, `SELECT pg_get_serial_sequence('requests.events', 'id')`).Scan(&seq); err != nil || seq != "requests.events_id_seq" {
				t.Fatalf("the events' sequence is %q (%v); the runbook names requests.events_id_seq", seq, err)
			}
			if _, err := b.pool.Exec(ctx, `DELETE FROM requests.events WHERE id > $1`, last); err != nil {
				t.Fatal(err)
			}
			if _, err := b.pool.Exec(ctx, `SELECT setval('requests.events_id_seq', $1)`, last); err != nil {
				t.Fatal(err)
			}
			// The runbook's step, before Requests serves.
			if _, err := b.pool.Exec(ctx, restoreStep, stored); err != nil {
				t.Fatal(err)
			}
			c = startServer(t, b.pool, serverOpts{now: b.clock.Now}).client

			// At once, before any new event: an open stream, no refusal.
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			s, err := c.WatchEvents(sctx, &requestsv1.WatchEventsRequest{AfterCursor: stored})
			if err == nil {
				_, err = s.Recv()
			}
			cancel()
			if stored >= last && status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("WatchEvents from the stored cursor %d right after the step: %v; want an open stream waiting for the next event", stored, err)
			}

			var want []string // kept, after the stored cursor
			if tc.stored < tc.backup {
				want = append(want, before[tc.stored:tc.backup]...)
			}
			for range 3 {
				want = append(want, createRequest(t, c, a.GetId(), reqArgs{}).GetId())
			}
			got, err := watchFrom(t, c, stored, len(want))
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range got {
				if e.GetRequest().GetId() != want[i] || e.GetCursor() <= stored {
					t.Fatalf("event %d from the stored cursor %d: cursor %d, request %s; want the requests %v, in order",
						i, stored, e.GetCursor(), e.GetRequest().GetId(), want)
				}
			}
		})
	}
}
