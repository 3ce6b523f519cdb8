package domain

import (
	"testing"
	"time"
)

// TestAMaintenanceLengtheningAWallsPauseReadsWallsWhetherOrNotItsEndWasSwept:
// docs/requests.md says a wall that lengthens a pause whose PORTAL_RESUMED
// is written "is the same pause lengthened, not a new one", and "a
// maintenance that lengthens a walls pause leaves it walls". A walls pause
// (3 CAPTCHAs) is swept as lapsed by a replica whose clock is 2 s ahead
// (pause_open false); a maintenance with a Retry-After of an hour reaches a
// replica that still sees it running. Wall's reopen replaces the Reason
// with the maintenance's, so the pause reads maintenance
// (IsMaintenancePause; metric series maintenance, the walls alert's series
// drops to 0) while the very same wall one sweep earlier leaves it walls:
// the pause's kind depends on whether another replica's sweep ran.
func TestAMaintenanceLengtheningAWallsPauseReadsWallsWhetherOrNotItsEndWasSwept(t *testing.T) {
	r := DefaultWallRules
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for _, swept := range []bool{false, true} {
		p := NewPortal("vfs", now)
		p.Wall(now, OutcomeCaptcha, r.Threshold, 0, r)
		at := p.Pause.Until.Add(-time.Second) // this replica still sees it running
		if swept {
			p.Pause.Open = false // the sweep of a replica 2 s ahead: PORTAL_RESUMED written
		}
		if !p.Wall(at, OutcomeMaintenance, 1, time.Hour, r) {
			t.Fatal("not lengthened")
		}
		if IsMaintenancePause(p.Pause.Reason) {
			t.Errorf("swept=%v: a maintenance lengthening a walls pause made it read maintenance (reason %q, level %d); want walls",
				swept, p.Pause.Reason, p.Pause.Level)
		}
	}
}
