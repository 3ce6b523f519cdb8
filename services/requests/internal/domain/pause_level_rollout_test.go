package domain

import (
	"testing"
	"time"
)

// TestAMaintenanceAfterAPauseWithoutARecordedEndDoesNotHoldBackTheReset:
// a portal first paused by a Requests older than 00011 (after the backfill,
// or after a code rollback) has no pause_level_until (LevelAt counts from
// Until, 07fdf73). A maintenance pause the new code begins then keeps
// LevelUntil zero and moves Until: the reset counts from the maintenance's
// end, the very defect 5f8e6fd fixed. Bot walls 6h30 after the bot-wall
// pause, with a 30m maintenance in between, must pause 15 minutes.
func TestAMaintenanceAfterAPauseWithoutARecordedEndDoesNotHoldBackTheReset(t *testing.T) {
	r := DefaultWallRules
	end := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	p := Portal{Name: "vfs", Pause: Pause{At: end.Add(-2 * time.Hour), Until: end, Level: 4,
		Reason: "3 walls in 10m0s (last: captcha)"}}
	p.Wall(end.Add(time.Hour), OutcomeMaintenance, 1, 30*time.Minute, r)
	if !p.Paused(end.Add(time.Hour)) {
		t.Fatal("maintenance did not pause")
	}
	now := end.Add(6*time.Hour + 30*time.Minute)
	p.Wall(now, OutcomeCaptcha, r.Threshold, 0, r)
	if got := p.Pause.Until.Sub(now); got != r.PauseMin {
		t.Errorf("pause %s at level %d, want %s (the level reset 6h after the bot-wall pause)", got, p.Pause.Level, r.PauseMin)
	}
}
