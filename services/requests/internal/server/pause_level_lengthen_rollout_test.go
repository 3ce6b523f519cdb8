package server_test

import (
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestALengtheningByAnOlderRequestsCountsTheResetFromTheLengthenedEnd: the
// mixed versions of 0febd7b, a third way. The new code pauses vfs a 4th
// time in a row (2h, level 4; pause_level_until = its end, pause_level_at =
// its paused_at). A minute later a check claimed before the pause reports
// a bot wall with Retry-After 8h to a Requests older than 00011: its Wall
// lengthens the pause (paused_until = now+8h) and keeps paused_at, never
// touching pause_level_until/at. Walls 5h after the lengthened end must
// build on level 4 (4h): the old code counts the 6 hours from paused_until,
// and the new code's own lengthening by a bot wall moves pause_level_until
// too. The mixed state keeps pause_level_at == paused_at, and levelEnd()
// takes the stale 2h end (before paused_until), so the level resets: 15m.
func TestALengtheningByAnOlderRequestsCountsTheResetFromTheLengthenedEnd(t *testing.T) {
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
	// 00010's Wall while paused, then its writePortal: paused_until moves,
	// paused_at stays, pause_level_until/at are not its columns.
	if _, err := b.pool.Exec(testkit.Context(t), `UPDATE requests.portals SET paused_until = $2, updated_at = $3
		WHERE name = $1`, "vfs", now.Add(8*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(8*time.Hour + 5*time.Hour)
	for range 3 {
		reportWall(t, c, wallCaptcha, 0)
	}
	st := portalStatus(t, c, "vfs")
	if got, want := st.GetPausedUntil().AsTime().Sub(b.clock.Now()), 4*time.Hour; got != want {
		t.Errorf("walls 5h after the lengthened pause's end pause %s (level %d), want %s (level 5)", got, st.GetPauseLevel(), want)
	}
}
