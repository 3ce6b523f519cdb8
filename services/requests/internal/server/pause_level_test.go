package server_test

import (
	"testing"
	"time"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// raiseLevel pauses the portal n times in a row with CAPTCHA walls, each
// report the moment the last pause ended, and leaves the clock at the end
// of the last pause (level n).
func raiseLevel(t *testing.T, c requestsv1.RequestsServiceClient, b *testBundle, n int) {
	t.Helper()
	for range n {
		for range 3 {
			reportWall(t, c, wallCaptcha, 0)
		}
		b.clock.Advance(portalStatus(t, c, "vfs").GetPausedUntil().AsTime().Sub(b.clock.Now()))
	}
	if got := portalStatus(t, c, "vfs").GetPauseLevel(); got != int32(n) {
		t.Fatalf("pause level %d after %d pauses, want %d", got, n, n)
	}
}

// TestAMaintenanceDoesNotHoldBackTheLevelsReset: the level of a portal's
// pauses goes back to 0 6 hours (ResetAfter) after the last pause that
// raised it. A maintenance (a Retry-After below the walls threshold) pauses
// without raising the level, so it must not move that time either: bot
// walls 6h30 after the last bot-wall pause, with a maintenance in between,
// pause for 15 minutes, not at the level held since.
func TestAMaintenanceDoesNotHoldBackTheLevelsReset(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	portalMissions(t, c, "vfs", 1)
	raiseLevel(t, c, b, 4) // 15m, 30m, 1h, 2h
	levelEnd := b.clock.Now()

	b.clock.Advance(time.Hour)
	reportWall(t, c, requestsv1.CheckOutcome_CHECK_OUTCOME_MAINTENANCE, 30*time.Minute)
	wantPausedUntil(t, c, "vfs", b.clock.Now().Add(30*time.Minute))

	b.clock.Advance(levelEnd.Add(6*time.Hour + 30*time.Minute).Sub(b.clock.Now()))
	for range 3 {
		reportWall(t, c, wallCaptcha, 0)
	}
	wantPausedUntil(t, c, "vfs", b.clock.Now().Add(15*time.Minute))
	if got := portalStatus(t, c, "vfs").GetPauseLevel(); got != 1 {
		t.Errorf("pause level %d, want 1 (reset, then this pause)", got)
	}
}

// TestThePauseLevelShownIsTheNextPauses: GetPortalStatus' pause_level is
// "how many pauses in a row (the next one lasts twice as long)". Once the
// portal has gone ResetAfter (6h) past the last pause that raised it, the
// next pause is the first of a new row (15 minutes): the status must say 0,
// not the level a day-old row of pauses reached.
func TestThePauseLevelShownIsTheNextPauses(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	portalMissions(t, c, "vfs", 1)
	raiseLevel(t, c, b, 3)
	b.clock.Advance(6*time.Hour - time.Microsecond)
	if got := portalStatus(t, c, "vfs").GetPauseLevel(); got != 3 {
		t.Fatalf("pause level %d just before the reset, want 3", got)
	}
	b.clock.Advance(time.Microsecond)
	if got := portalStatus(t, c, "vfs").GetPauseLevel(); got != 0 {
		t.Errorf("pause level %d 6h after the last pause, want 0 (the next pause lasts 15m)", got)
	}
	for range 3 {
		reportWall(t, c, wallCaptcha, 0)
	}
	wantPausedUntil(t, c, "vfs", b.clock.Now().Add(15*time.Minute))
}

// TestAResumedPauseCountsTheResetFromTheResume: an operator's ResumePortal
// ends the pause then; the level's reset counts from there, not from the
// end the pause would have had.
func TestAResumedPauseCountsTheResetFromTheResume(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	portalMissions(t, c, "vfs", 1)
	raiseLevel(t, c, b, 3)
	for range 3 {
		reportWall(t, c, wallCaptcha, 0) // the fourth pause, 2h
	}
	wantPausedUntil(t, c, "vfs", b.clock.Now().Add(2*time.Hour))
	b.clock.Advance(time.Minute)
	if _, err := c.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(6 * time.Hour)
	for range 3 {
		reportWall(t, c, wallCaptcha, 0)
	}
	wantPausedUntil(t, c, "vfs", b.clock.Now().Add(15*time.Minute))
}

// TestWallsMetWhilePausedDoNotCountTowardTheNextPause: checks claimed
// before a pause (on other replicas, say) report their walls while it
// runs: the same episode as the walls that paused the portal, which is
// paused for it already. An operator resumes it once the cause is
// understood; the first check after the resume meets one wall. One wall is
// below the threshold (3): it must not pause the portal again, at twice
// the length, by adding up with the walls of the episode the pause was for.
func TestWallsMetWhilePausedDoNotCountTowardTheNextPause(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	portalMissions(t, c, "vfs", 3)
	held := claim(t, c, 2, 0)
	if len(held) != 2 {
		t.Fatalf("claimed %d missions, want 2", len(held))
	}
	for range 3 {
		reportWall(t, c, wallCaptcha, 0) // the third mission
	}
	wantPausedUntil(t, c, "vfs", b.clock.Now().Add(15*time.Minute))
	for _, cl := range held {
		b.clock.Advance(time.Minute)
		if _, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{
			ClaimId: cl.GetClaimId(), Outcome: wallCaptcha, AccountId: 7}); err != nil {
			t.Fatal(err)
		}
	}
	b.clock.Advance(time.Minute)
	if _, err := c.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Minute)
	reportWall(t, c, wallCaptcha, 0)
	if st := portalStatus(t, c, "vfs"); st.GetPaused() {
		t.Fatalf("one wall after the resume paused the portal again: %v", st)
	}
}
