package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// reportHeld reports a wall for a claim made before the portal's pause (a
// check that was already running when it began).
func reportHeld(t *testing.T, c requestsv1.RequestsServiceClient, cl *requestsv1.MissionClaim, o requestsv1.CheckOutcome, retryAfter time.Duration) {
	t.Helper()
	if _, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{ClaimId: cl.GetClaimId(),
		Outcome: o, AccountId: 7, RetryAfter: durationpb.New(retryAfter)}); err != nil {
		t.Fatalf("ReportCheckResult %v: %v", o, err)
	}
}

// portalEvents reads the portal events written so far, in order.
func portalEvents(t *testing.T, c requestsv1.RequestsServiceClient) []*requestsv1.WatchEventsResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(testkit.Context(t), 30*time.Second)
	defer cancel()
	s, err := c.WatchEvents(ctx, &requestsv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*requestsv1.WatchEventsResponse
	for {
		ev, err := s.Recv()
		if err != nil {
			t.Fatalf("WatchEvents: %v", err)
		}
		if ev.GetPortal() != nil {
			out = append(out, ev)
		}
		// The stream goes on live: the marker request event created
		// below, after what the test wrote, ends the backlog.
		if ev.GetType() == requestsv1.EventType_EVENT_TYPE_CREATED && ev.GetRequest().GetMissionCode() == "endmark" {
			return out
		}
	}
}

// TestAPauseLengthenedWhileItRunsIsAnnounced: a check claimed before the
// pause reports a bot wall whose Retry-After ends after the pause. The
// pause is lengthened, and operators (slotctl events follow) and every
// other reader of the events must learn the new end: another PORTAL_PAUSED
// event with the status after it, as the pause's start writes. A wall that
// does not move the end writes none.
func TestAPauseLengthenedWhileItRunsIsAnnounced(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	portalMissions(t, c, "vfs", 3)
	held := claim(t, c, 2, 0)
	if len(held) != 2 {
		t.Fatalf("claimed %d missions, want 2", len(held))
	}
	for range 3 {
		reportWall(t, c, wallCaptcha, 0)
	}
	start := b.clock.Now()
	wantPausedUntil(t, c, "vfs", start.Add(15*time.Minute))

	b.clock.Advance(time.Minute)
	reportHeld(t, c, held[0], wallRateLimited, time.Hour)
	lengthened := b.clock.Now()
	wantPausedUntil(t, c, "vfs", lengthened.Add(time.Hour))
	b.clock.Advance(time.Minute)
	reportHeld(t, c, held[1], wallCaptcha, 10*time.Minute) // ends before the pause does: nothing changes

	createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{mission: "endmark"})
	evs := portalEvents(t, c)
	if len(evs) != 2 {
		t.Fatalf("%d portal events, want 2 PORTAL_PAUSED (the start and the lengthening): %v", len(evs), evs)
	}
	for i, want := range []struct{ at, until time.Time }{{start, start.Add(15 * time.Minute)}, {lengthened, lengthened.Add(time.Hour)}} {
		ev := evs[i]
		if ev.GetType() != requestsv1.EventType_EVENT_TYPE_PORTAL_PAUSED || ev.GetPortal().GetName() != "vfs" || !ev.GetPortal().GetPaused() ||
			!ev.GetOccurredAt().AsTime().Equal(want.at) || !ev.GetPortal().GetPausedUntil().AsTime().Equal(want.until) {
			t.Errorf("event %d = %v, want PORTAL_PAUSED of vfs at %v, paused until %v", i, ev, want.at, want.until)
		}
	}
}

// TestABotWallLengtheningAMaintenancePauseReadsWalls: a maintenance's
// Retry-After paused the portal (reason="maintenance", the 6-hour alert);
// a check claimed before it then meets a CAPTCHA whose Retry-After ends
// later. The pause now lasts as long as the bot wall asked: it is a walls
// pause (SlotwatchPortalPaused's series), in the gauge, the status and the
// event. A maintenance's Retry-After that lengthens it after that does not
// turn it back: a pause reads maintenance only while a maintenance alone
// holds it.
func TestABotWallLengtheningAMaintenancePauseReadsWalls(t *testing.T) {
	t.Parallel()
	wallMaintenance := requestsv1.CheckOutcome_CHECK_OUTCOME_MAINTENANCE
	c, b := setup(t)
	portalMissions(t, c, "vfs", 3)
	held := claim(t, c, 2, 0)
	if len(held) != 2 {
		t.Fatalf("claimed %d missions, want 2", len(held))
	}
	reportWall(t, c, wallMaintenance, 30*time.Minute)
	wantPaused(t, b, "vfs", "maintenance")

	b.clock.Advance(time.Minute)
	reportHeld(t, c, held[0], wallCaptcha, 2*time.Hour)
	wantPausedUntil(t, c, "vfs", b.clock.Now().Add(2*time.Hour))
	wantPaused(t, b, "vfs", "walls")
	if r := portalStatus(t, c, "vfs").GetPauseReason(); !strings.HasPrefix(r, "captcha") {
		t.Errorf("pause reason %q, want the CAPTCHA's that holds the pause", r)
	}

	b.clock.Advance(time.Minute)
	reportHeld(t, c, held[1], wallMaintenance, 3*time.Hour)
	wantPausedUntil(t, c, "vfs", b.clock.Now().Add(3*time.Hour))
	wantPaused(t, b, "vfs", "walls")

	createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{mission: "endmark"})
	evs := portalEvents(t, c)
	if len(evs) != 3 {
		t.Fatalf("%d portal events, want 3 PORTAL_PAUSED: %v", len(evs), evs)
	}
	if r := evs[1].GetPortal().GetPauseReason(); !strings.HasPrefix(r, "captcha") {
		t.Errorf("the lengthening's event has reason %q, want the CAPTCHA's", r)
	}
}
