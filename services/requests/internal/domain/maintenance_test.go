package domain

import (
	"testing"
	"time"
)

// TestAPortalBackFromMaintenanceIsCheckedWithinItsRetryAfter: a
// maintenance window of 2h05m on a portal answering
// Retry-After: 1800 (portalsim's, VFS-style) is met by the first check
// after each pause. The portal promised to be back within 30 minutes of
// each answer, and slots are often released right as it comes back; the
// pause must not run past the portal's end of maintenance by more than its
// Retry-After.
func TestAPortalBackFromMaintenanceIsCheckedWithinItsRetryAfter(t *testing.T) {
	r := DefaultWallRules
	start := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	end := start.Add(2*time.Hour + 5*time.Minute) // the portal is back
	const retryAfter = 30 * time.Minute
	p := NewPortal("vfs", start)
	now := start
	var pauses []time.Duration
	for now.Before(end) {
		// A check meets the maintenance page (one wall, with Retry-After).
		p.Wall(now, OutcomeMaintenance, 1, retryAfter, r)
		pauses = append(pauses, p.Pause.Until.Sub(now))
		now = p.Pause.Until // the next claim, the moment the pause ends
	}
	if late := now.Sub(end); late > retryAfter {
		t.Fatalf("pauses %v: the first check after the maintenance is %s after the portal was back (it said Retry-After %s)", pauses, late, retryAfter)
	}
	// Nor does it raise the level a later real wall pauses for.
	if p.Pause.Level != 0 {
		t.Errorf("pause level %d after a maintenance; want 0", p.Pause.Level)
	}
}
