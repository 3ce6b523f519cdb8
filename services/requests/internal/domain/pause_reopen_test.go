package domain

import (
	"strings"
	"testing"
	"time"
)

// TestAWallLengtheningAResumedPauseReopensIt: a pause whose PORTAL_RESUMED
// is written (an operator resumed it through a replica whose clock is 2 s
// ahead) but which this replica still sees running, lengthened by a wall
// of a check claimed before it: the pause is open again (its end owes a
// PORTAL_RESUMED), its reason names the wall, not the resume, it still
// reads walls, and the level stays as the pause left it, for a bot wall
// or a maintenance.
func TestAWallLengtheningAResumedPauseReopensIt(t *testing.T) {
	r := DefaultWallRules
	for _, o := range []Outcome{OutcomeRateLimited, OutcomeMaintenance} {
		t.Run(string(o), func(t *testing.T) {
			now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
			p := NewPortal("vfs", now)
			p.Wall(now, OutcomeCaptcha, r.Threshold, 0, r)
			level := p.Pause.Level
			now = now.Add(time.Minute)
			if !p.Resume(now.Add(2 * time.Second)) {
				t.Fatal("not resumed")
			}
			if !p.Wall(now, o, 1, time.Hour, r) {
				t.Fatal("the lengthening is not announced")
			}
			if !p.Pause.Open || !p.Pause.Until.Equal(now.Add(time.Hour)) {
				t.Errorf("pause open=%v until %v, want open until %v", p.Pause.Open, p.Pause.Until, now.Add(time.Hour))
			}
			if p.Pause.Level != level || p.LevelAt(now, r) != level {
				t.Errorf("level %d (at now %d), want %d: a wall of a check claimed before the pause raised it", p.Pause.Level, p.LevelAt(now, r), level)
			}
			if !strings.Contains(p.Pause.Reason, string(o)+retryAfterReason) {
				t.Errorf("reason %q does not name the wall", p.Pause.Reason)
			}
			// The pause was a walls pause (three captchas): a
			// maintenance that lengthens it leaves it walls, resumed
			// or not.
			if IsMaintenancePause(p.Pause.Reason) {
				t.Errorf("reason %q reads maintenance after a %s reopened a walls pause", p.Pause.Reason, o)
			}
		})
	}
}

// TestAResumeOfAResumedPauseChangesNothing: an operator resumed the pause
// through a replica whose clock is 2 s ahead of this one's (Until is that
// replica's now, Open false); the request is retried here, where the
// pause still seems to run. Resume must change nothing (its PORTAL_RESUMED
// is written: a second would pair with no PORTAL_PAUSED), and the status
// reads resumed, as the first resume answered.
func TestAResumeOfAResumedPauseChangesNothing(t *testing.T) {
	r := DefaultWallRules
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	p := NewPortal("vfs", now)
	p.Wall(now, OutcomeCaptcha, r.Threshold, 0, r)
	now = now.Add(time.Minute)
	if !p.Resume(now.Add(2 * time.Second)) {
		t.Fatal("not resumed")
	}
	before := p.Pause
	if p.Resume(now) {
		t.Errorf("a resume of a resumed pause resumed it again: %+v, was %+v", p.Pause, before)
	}
	if p.Pause != before {
		t.Errorf("a resume of a resumed pause changed it: %+v, was %+v", p.Pause, before)
	}
	if st := p.Status(now, r, 0, 0); st.Paused {
		t.Errorf("status %+v reads paused after the resume", st)
	}
}
