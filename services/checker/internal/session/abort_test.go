package session

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/browser/browsertest"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// A check slotwatch cut short itself (the drain's grace ran out, the
// browser died) says nothing about the account: it is released aborted, not error, and so pushes no account
// toward quarantine. The login it made is still released, for the budget.
// In each case the portal holds the slot answer back far longer than the
// cut, after a login that goes through. (A claim's deadline is the
// portal's: TestAPortalThatIsSlowOrHangsIsNotAborted.)
func TestACheckCutShortBySlotwatchIsReleasedAborted(t *testing.T) {
	t.Parallel()
	t0 := time.Now()

	// hold makes account 1's slot answer wait 2 minutes, and returns when the
	// check has logged in (it is then waiting for that answer).
	hold := func(t *testing.T, c *Checker, b *testBundle, run func()) {
		t.Helper()
		if err := b.sim.SetBehaviour("acc1@example.com", sim.Behaviour{DelayMS: 120000, Only: sim.SlotAPI}); err != nil {
			t.Fatal(err)
		}
		go run()
		deadline := time.Now().Add(time.Minute)
		for len(b.sim.Logins()) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no login in a minute: %v; status %+v", b.ev.all(), c.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // on to the slot request
	}
	// patient waits for the portal longer than any cut here, so that no
	// step's timeout (the portal's failure, rightly an error) comes first.
	patient := func(p *profile.Profile) {
		p.Timeouts.Page, p.Timeouts.Slots = profile.Duration(2*time.Minute), profile.Duration(2*time.Minute)
	}
	wantAborted := func(t *testing.T, b *testBundle, sum Summary, detail string) {
		t.Helper()
		b.ev.want(t, "claim max=10", "acquire fra: account 1", "report c-fra failed account 1", "release account 1 aborted")
		if r := sum.Results[0]; r.Outcome != Aborted || !strings.Contains(r.Detail, detail) {
			t.Errorf("result = %+v; want aborted, %q", r, detail)
		}
		if rel := b.pool.releases[0]; !rel.LoggedIn || !strings.Contains(rel.Detail, detail) {
			t.Errorf("release = %v (detail %q); want the login counted and %q", rel, rel.Detail, detail)
		}
	}

	// First and alone: a second Chromium starting beside the shared one
	// on a loaded machine can keep the shared one from starting in time.
	t.Run("TheBrowserDies", func(t *testing.T) {
		mgr := browser.New(browser.Config{ExecPath: browsertest.ExecPath(t), Background: true, NoSandbox: browsertest.NoSandbox(), StartTimeout: browsertest.StartTimeout()})
		t.Cleanup(func() { _ = mgr.Close() })
		c, b := setupOn(t, mgr, Config{}, patient)
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
		done := make(chan Summary, 1)
		hold(t, c, b, func() { done <- runSession(t, c) })
		pid := mgr.Status().PID
		if pid <= 0 { // kill(0) would signal the whole process group
			t.Fatalf("browser pid %d", pid)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		wantAborted(t, b, <-done, "browser")
	})

	t.Run("TheDrainsGraceRunsOut", func(t *testing.T) {
		t.Parallel()
		c, b := setupWith(t, Config{}, patient)
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
		done := make(chan Summary, 1)
		hold(t, c, b, func() { sum, _ := c.RunSession(t.Context(), 0); done <- sum })
		c.Drain(100 * time.Millisecond)
		wantAborted(t, b, <-done, errCut.Error())
	})

}
