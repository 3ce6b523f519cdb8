package domain

import (
	"testing"
	"time"
)

// TestAMaintenanceLengtheningAPauseDoesNotHoldBackTheLevelsReset: a check
// claimed before a bot-wall pause meets the portal's maintenance page
// (Retry-After 2h) while the pause runs. The pause is lengthened to the
// Retry-After, but that is the portal's downtime, not a push back: the
// level's reset still counts from the end of the bot-wall pause. A bot
// wall (rate limited) lengthening it is a push back, and moves the reset.
func TestAMaintenanceLengtheningAPauseDoesNotHoldBackTheLevelsReset(t *testing.T) {
	r := DefaultWallRules
	for _, tc := range []struct {
		late Outcome
		want time.Duration // the pause 6h30 after the bot-wall pause's end
	}{
		{OutcomeMaintenance, r.Backoff(0)},
		{OutcomeRateLimited, r.Backoff(2)},
	} {
		t.Run(string(tc.late), func(t *testing.T) {
			now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
			p := NewPortal("vfs", now)
			p.Wall(now, OutcomeCaptcha, r.Threshold, 0, r)
			now = p.Pause.Until
			p.Wall(now, OutcomeCaptcha, r.Threshold, 0, r) // level 2, 30m
			end := p.Pause.Until
			p.Wall(now.Add(5*time.Minute), tc.late, 1, 2*time.Hour, r)
			if got := p.Pause.Until.Sub(now); got != 2*time.Hour+5*time.Minute {
				t.Fatalf("pause lengthened to %s, want 2h05m", got)
			}
			now = end.Add(6*time.Hour + 30*time.Minute)
			p.Wall(now, OutcomeCaptcha, r.Threshold, 0, r)
			if got := p.Pause.Until.Sub(now); got != tc.want {
				t.Errorf("pause %s at level %d, want %s", got, p.Pause.Level, tc.want)
			}
		})
	}
}

// TestALevelWithoutARecordedEndResetsFromThePausesEnd: a pause begun by
// a Requests older than migration 00011 records no end of the pause that
// raised the level (a portal first paused during the rollout); the reset
// then counts from the pause's end, as before, and the level does not stay
// up for good.
func TestALevelWithoutARecordedEndResetsFromThePausesEnd(t *testing.T) {
	r := DefaultWallRules
	until := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	p := Portal{Name: "vfs", Pause: Pause{At: until.Add(-time.Hour), Until: until, Level: 3}}
	if got := p.LevelAt(until.Add(r.ResetAfter-time.Microsecond), r); got != 3 {
		t.Errorf("level %d just before the reset, want 3", got)
	}
	if got := p.LevelAt(until.Add(r.ResetAfter), r); got != 0 {
		t.Errorf("level %d %s after the pause's end, want 0", got, r.ResetAfter)
	}
}
