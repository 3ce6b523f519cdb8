package session

import (
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// A check that reached the portal's verdict (banned, login_fail, no_slot,
// slots found) just before the drain's cut ended its context is released
// and reported with that verdict: the cut came after the portal answered,
// and says nothing that overrides the answer. Here the drain's grace runs
// out while the driver tells the trace of the step that ended the check
// (the last one of the check flow, or the one whose page was the wall),
// and the step goes on only once the cut has come.
func TestAVerdictReachedBeforeTheDrainsCutStands(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	cases := []struct {
		name       string
		behaviour  sim.Behaviour
		slots      []sim.Slot
		release    Outcome
		report     ReportOutcome
		lastOfFlow bool // the verdict comes after the check flow's last step
	}{
		{"Banned", sim.Behaviour{Kind: sim.Captcha, Only: sim.SlotPage}, nil, Banned, ReportCaptcha, false},
		{"LoginFail", sim.Behaviour{Kind: sim.RejectPassword}, nil, LoginFail, ReportFailed, false},
		{"NoSlot", sim.Behaviour{}, nil, NoSlot, ReportNoSlot, true},
		{"SlotFound", sim.Behaviour{}, []sim.Slot{march4}, Success, ReportSlotsFound, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c *Checker
			var last, lastKind string // the check flow's last step
			cut := func(tr portal.StepTrace) {
				if tr.End == "" && (!tc.lastOfFlow || tr.Flow != "check" || tr.Step != last || tr.Kind != lastKind) {
					return
				}
				go c.Drain(10 * time.Millisecond)
				select {
				case <-c.hard.Done():
				case <-time.After(time.Minute):
					t.Error("the drain did not cut the check in a minute")
				}
			}
			c, b := setupDriver(t, shared(t), Config{}, nil, driverOpts{trace: cut})
			prog := c.driver.(*portal.Driver).Program()
			step := prog.Flows.Check[len(prog.Flows.Check)-1]
			last, lastKind = step.Name, step.Kind()
			if err := b.sim.SetBehaviour("acc1@example.com", tc.behaviour); err != nil {
				t.Fatal(err)
			}
			if tc.slots != nil {
				if err := b.sim.SetSlots("fra", "London", "tourism", tc.slots); err != nil {
					t.Fatal(err)
				}
			}
			b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
			sum, err := c.RunSession(t.Context(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if c.hard.Err() == nil {
				t.Fatal("the drain never cut the check: the test did not test the cut")
			}
			b.pool.mu.Lock()
			releases := b.pool.releases
			b.pool.mu.Unlock()
			if len(releases) != 1 || releases[0].Outcome != tc.release {
				t.Errorf("releases %v; want one, %s (the verdict the check reached)", releases, tc.release)
			}
			if rep := b.requests.report("c-fra"); rep.Outcome != tc.report {
				t.Errorf("report %s (%q); want %s", rep.Outcome, rep.Detail, tc.report)
			}
			if r := sum.Results[0]; r.Outcome != tc.release {
				t.Errorf("result %s (%q); want %s", r.Outcome, r.Detail, tc.release)
			}
		})
	}
}
