package domain

import (
	"testing"
	"time"
)

// TestAMaintenanceEndingWallsAtTheThresholdStillPausesForTheBackoff: the
// portal took the checks for a bot (captcha walls up to one short of the
// threshold); the wall that reaches it happens to be a maintenance page
// with a short Retry-After. The threshold is reached, so the pause must be
// at least Backoff(level) and raise the level, as for any other last wall.
func TestAMaintenanceEndingWallsAtTheThresholdStillPausesForTheBackoff(t *testing.T) {
	r := DefaultWallRules
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	p := NewPortal("vfs", now)
	p.Wall(now, OutcomeMaintenance, r.Threshold, time.Minute, r)
	if got, want := p.Pause.Until.Sub(now), r.Backoff(0); got < want {
		t.Errorf("pause %s after %d walls (%q); want at least Backoff(0) = %s", got, r.Threshold, p.Pause.Reason, want)
	}
	if p.Pause.Level != 1 {
		t.Errorf("pause level %d after %d walls; want 1", p.Pause.Level, r.Threshold)
	}
}

// TestAShortRetryAfterDoesNotMakeEveryClaimMeetTheMaintenance: a 2h
// maintenance answering Retry-After: 60 (a CDN's maintenance page). Each
// check that meets it is released `error` to the pool (one failure to an
// account, quarantine at POOL_MAX_FAILURES=3): the maintenance outcome
// exists so that a maintenance does not charge the pool a failure per
// claim. The pause must be at least PauseMin, so the window costs at most
// one check per PauseMin (before f8e3009: 15m, 30m, 1h, 2h: 4 checks).
func TestAShortRetryAfterDoesNotMakeEveryClaimMeetTheMaintenance(t *testing.T) {
	r := DefaultWallRules
	start := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	end := start.Add(2 * time.Hour)
	p := NewPortal("vfs", start)
	checks := 0
	for now := start; now.Before(end); now = p.Pause.Until {
		checks++
		p.Wall(now, OutcomeMaintenance, 1, time.Minute, r)
	}
	if max := int(end.Sub(start)/r.PauseMin) + 1; checks > max {
		t.Errorf("%d checks met a 2h maintenance (each a failure charged to an account); want at most %d (one per PauseMin %s)", checks, max, r.PauseMin)
	}
}
