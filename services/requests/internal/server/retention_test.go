package server_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
)

// retained is the retention of these tests; prunedBatch is small, so a
// prune takes several statements per table.
const (
	retained    = 48 * time.Hour
	prunedBatch = 2
)

// history writes, from the clock's time on, three hourly rounds in which
// fra and bel are claimed and only fra's claim is reported: 3 checks, 6
// claims (fra's third and bel's third are the missions' current ones),
// and the created events of the two requests.
func history(t *testing.T, c requestsv1.RequestsServiceClient, b *testBundle) (fra, bel *requestsv1.AppointmentRequest) {
	t.Helper()
	ap := createApplicant(t, c)
	fra = createRequest(t, c, ap.GetId(), reqArgs{mission: "fra"})
	bel = createRequest(t, c, ap.GetId(), reqArgs{mission: "bel"})
	for range 3 {
		claims := claim(t, c, 100, 10*time.Minute)
		if len(claims) != 2 {
			t.Fatalf("claims = %v, want fra and bel", claims)
		}
		for _, cl := range claims {
			if cl.GetMissionCode() == "fra" {
				report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
			}
		}
		b.clock.Advance(time.Hour)
	}
	return fra, bel
}

func prune(t *testing.T, b *testBundle) map[string]int {
	t.Helper()
	n, err := b.server.app.Prune(testkit.Context(t))
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	return n
}

// watchFrom opens a stream after cursor and returns its first n events, or
// the error that ended it before.
func watchFrom(t *testing.T, c requestsv1.RequestsServiceClient, cursor int64, n int) ([]*requestsv1.WatchEventsResponse, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(testkit.Context(t))
	defer cancel()
	s, err := c.WatchEvents(ctx, &requestsv1.WatchEventsRequest{AfterCursor: cursor})
	if err != nil {
		return nil, err
	}
	var out []*requestsv1.WatchEventsResponse
	for len(out) < n {
		ev, err := s.Recv()
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func TestRetention(t *testing.T) {
	t.Parallel()
	cfg := app.Config{Retention: retained, PruneBatch: prunedBatch, PrunePause: time.Millisecond}

	t.Run("PrunesHistoryOlderThanTheRetentionAndKeepsWhatIsInUse", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, cfg)
		fra, bel := history(t, c, b)
		if got := prune(t, b); got["checks"]+got["claims"]+got["events"] != 0 {
			t.Fatalf("pruned %v of rows younger than the retention", got)
		}

		b.clock.Advance(retained) // the history is now older than the retention
		recent := createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{mission: "deu"})

		got := prune(t, b)
		// Every check and claim of the history goes, but the two that are
		// still their missions' current claims (the one a report would
		// end); the two old created events go, the recent one stays.
		if got["checks"] != 3 || got["claims"] != 4 || got["events"] != 2 {
			t.Fatalf("pruned %v, want 3 checks, 4 claims, 2 events", got)
		}
		for table, want := range map[string]int{"checks": 3, "claims": 4, "events": 2} {
			if m := grpcservertest.Metric(t, b.server.registry, "slotwatch_requests_pruned_rows_total", "table", table); m != float64(want) {
				t.Errorf("pruned %s metric = %v, want %d", table, m, want)
			}
		}
		if n := count(t, b.pool, `SELECT count(*) FROM requests.claims c JOIN requests.missions m ON m.claim_id = c.id`); n != 2 {
			t.Fatalf("%d current claims left, want fra's and bel's", n)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM requests.events`); n != 1 {
			t.Fatalf("%d events left, want the recent one", n)
		}
		// Requests are never pruned; the missions are claimed and reported
		// as before (bel's lapsed claim taken over).
		for _, r := range []*requestsv1.AppointmentRequest{fra, bel, recent} {
			if got := getRequest(t, c, r.GetId()); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING {
				t.Fatalf("request %s after pruning = %v", r.GetId(), got)
			}
		}
		claims := claim(t, c, 100, 0)
		if len(claims) != 3 {
			t.Fatalf("claims = %v, want fra, bel and deu", claims)
		}
		for _, cl := range claims {
			report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		}
		// Replaced, the two old claims are history too; the new ones stay.
		if got := prune(t, b); got["claims"] != 2 || got["checks"]+got["events"] != 0 {
			t.Fatalf("the prune after new claims took %v, want the 2 replaced claims", got)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM requests.claims`); n != 3 {
			t.Fatalf("%d claims left, want the 3 new ones", n)
		}
	})

	t.Run("AStreamBehindThePrunedEventsIsOutOfRange", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, cfg)
		history(t, c, b)
		b.clock.Advance(retained)
		kept := createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{mission: "deu"})
		prune(t, b)
		events := eventsTable(t, b)
		if len(events) != 1 || events[0].requestID != kept.GetId() {
			t.Fatalf("events kept = %v, want the deu request's created", events)
		}
		oldest := events[0].cursor - 1 // the cursor pruned through

		_, err := watchFrom(t, c, 1, 1)
		st := testkit.WantCode(t, err, codes.OutOfRange)
		if want := "oldest cursor available is " + strconv.FormatInt(oldest, 10); !strings.Contains(st.Message(), want) {
			t.Fatalf("message %q does not say %q", st.Message(), want)
		}
		// A program reads the cursor from the error's ErrorInfo, not
		// from the message.
		if info, ok := apierr.InfoOf(err); !ok || info.GetReason() != apirule.ReasonEventsPruned ||
			info.GetMetadata()[apirule.MetaOldestCursor] != strconv.FormatInt(oldest, 10) {
			t.Fatalf("error detail %v (%v); want reason %s with %s %d", info, ok, apirule.ReasonEventsPruned, apirule.MetaOldestCursor, oldest)
		}
		// From the oldest cursor available, or from 0 (nothing seen yet),
		// the stream starts at the oldest event kept.
		for _, from := range []int64{oldest, 0} {
			got, err := watchFrom(t, c, from, 1)
			if err != nil || got[0].GetCursor() != events[0].cursor || got[0].GetRequest().GetId() != kept.GetId() {
				t.Fatalf("from %d: %v, %v", from, got, err)
			}
		}
	})

	t.Run("RetentionOffKeepsEverything", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, app.Config{})
		history(t, c, b)
		b.clock.Advance(10 * 365 * 24 * time.Hour)
		if got := prune(t, b); len(got) != 0 {
			t.Fatalf("pruned %v with retention off", got)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM requests.claims`); n != 6 {
			t.Fatalf("%d claims left, want 6", n)
		}
	})
}
