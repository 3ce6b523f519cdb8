package server_test

import (
	"testing"
	"time"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestAPauseAnOlderRequestsBeganKeepsItsLevel: after 00011's backfill every
// portal paused before has a pause_level_until. A Requests older than 00011
// (a replica not yet replaced during the rollout, or the whole Deployment
// after `kubectl rollout undo`, which OPERATIONS allows while 00011 stays)
// keeps pausing with its own escalation (level from paused_until) and never
// writes pause_level_until. Here it pauses vfs a 4th time in a row (2h,
// level 4), exactly as its writePortal does. When that pause ends and the
// portal still meets walls, the next pause must build on level 4 (4h), as
// the old code and the code before 5f8e6fd would: the last pause that raised
// the level ended moments ago. The new code counts the reset from the stale
// pause_level_until (a pause 7h ago) and pauses 15 minutes at level 1.
func TestAPauseAnOlderRequestsBeganKeepsItsLevel(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	portalMissions(t, c, "vfs", 1)
	raiseLevel(t, c, b, 1) // new code: pause_level_until recorded (15m)

	// Seven hours later, an older Requests has paused vfs three times in
	// a row (15m, 30m, 1h) and now a fourth (2h, level 4). Its write, as
	// 00010's writePortal makes it: every pause column but pause_level_until.
	b.clock.Advance(7 * time.Hour)
	now := b.clock.Now()
	if _, err := b.pool.Exec(testkit.Context(t), `UPDATE requests.portals SET paused_at = $2, paused_until = $3,
		pause_reason = '3 walls in 10m0s (last: captcha)', pause_level = 4, pause_open = true, updated_at = $2
		WHERE name = $1`, "vfs", now, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := portalStatus(t, c, "vfs").GetPauseLevel(); got != 4 {
		t.Errorf("during the older Requests' 4th pause in a row, pause_level %d, want 4", got)
	}
	// The pause ends; the portal still pushes back.
	b.clock.Advance(2 * time.Hour)
	for range 3 {
		reportWall(t, c, wallCaptcha, 0)
	}
	st := portalStatus(t, c, "vfs")
	if got, want := st.GetPausedUntil().AsTime().Sub(b.clock.Now()), 4*time.Hour; got != want {
		t.Errorf("the pause after four in a row lasts %s (level %d), want %s (level 5)", got, st.GetPauseLevel(), want)
	}
	_ = requestsv1.CheckOutcome_CHECK_OUTCOME_CAPTCHA
}

// TestAResumeByAnOlderRequestsCountsTheResetFromTheResume: the same mixed
// versions, the other way. The new code pauses vfs a 4th time in a row
// (2h; pause_level_until = its end). An operator resumes it a minute later
// through a Requests older than 00011 (slotctl reaches any replica): that
// one sets paused_until to the resume and leaves pause_level_until 2h
// ahead. Walls 6h30 after the resume must pause 15 minutes (the old code,
// and the new code's own Resume, count the 6 hours from the resume); the
// new code counts them from the pause's uncut end and pauses 4h at level 5.
// docs/requests.md says a pause an older Requests touches makes the level
// reset "too soon"; this one resets too late, and the portal goes unchecked.
func TestAResumeByAnOlderRequestsCountsTheResetFromTheResume(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	portalMissions(t, c, "vfs", 1)
	raiseLevel(t, c, b, 3)
	for range 3 {
		reportWall(t, c, wallCaptcha, 0) // the fourth pause, 2h, by the new code
	}
	wantPausedUntil(t, c, "vfs", b.clock.Now().Add(2*time.Hour))
	b.clock.Advance(time.Minute)
	now := b.clock.Now()
	// 00010's ResumePortal: Resume, then writePortal without pause_level_until.
	if _, err := b.pool.Exec(testkit.Context(t), `UPDATE requests.portals SET paused_until = $2,
		pause_reason = 'resumed by an operator', pause_open = false, updated_at = $2 WHERE name = $1`, "vfs", now); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(6*time.Hour + 30*time.Minute)
	for range 3 {
		reportWall(t, c, wallCaptcha, 0)
	}
	st := portalStatus(t, c, "vfs")
	if got, want := st.GetPausedUntil().AsTime().Sub(b.clock.Now()), 15*time.Minute; got != want {
		t.Errorf("walls 6h30 after the resume pause %s (level %d), want %s (level 1)", got, st.GetPauseLevel(), want)
	}
}
