package e2e

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// TestAMaintenancePagePausesItsPortal: a portal down for maintenance (503,
// Retry-After: 1800) is a wall. The first check that meets it reports
// MAINTENANCE with the Retry-After, which pauses the portal at once for
// 30 minutes; the next session claims none of its missions, so no other
// account is sent to it (and charged a failure) while it is down. Before,
// the check was reported FAILED, the portal was not paused, and every
// session sent another account.
func TestAMaintenancePagePausesItsPortal(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	accts := s.addAccounts(2)
	ctx := testkit.Context(t)
	for _, m := range []string{"m-a", "m-b"} {
		s.addMission(m)
		if _, err := s.rq.UpsertMission(ctx, &rqv1.UpsertMissionRequest{MissionCode: m, Portal: proto.String("psim")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.sim.SetBehaviour("", sim.Behaviour{Kind: sim.Maintenance}); err != nil {
		t.Fatal(err)
	}
	ch := s.startChecker("checker-maint", "CHECKER_LOOP=false", "MAX_CONCURRENT_MISSIONS=1")

	started := time.Now()
	first := ch.runSessionMax(t, 1)
	if len(first.GetResults()) != 1 || first.GetResults()[0].GetOutcome() != "error" {
		t.Fatalf("first session: %v, want one check released as error", first.GetResults())
	}
	checks := s.checks()
	if len(checks) != 1 || checks[0].outcome != "maintenance" {
		t.Fatalf("Requests' checks %+v, want one maintenance", checks)
	}
	resp, err := s.rq.GetPortalStatus(ctx, &rqv1.GetPortalStatusRequest{Name: "psim"})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.GetStatus()
	if !st.GetPaused() || st.GetPausedUntil().AsTime().Before(started.Add(30*time.Minute)) ||
		!strings.Contains(st.GetPauseReason(), "maintenance with Retry-After 30m0s") {
		t.Fatalf("portal status %v, want paused 30m (the portal's Retry-After) for maintenance", st)
	}

	seen := len(s.sim.Requests())
	second := ch.runSessionMax(t, 0)
	if len(second.GetResults()) != 0 {
		t.Errorf("second session checked %v while the portal is paused", second.GetResults())
	}
	if got := len(s.sim.Requests()); got != seen {
		t.Errorf("the paused portal saw %d more requests", got-seen)
	}
	used := 0
	for _, a := range accts {
		acct := s.account(a.id)
		if acct.GetConsecutiveFailures() > 0 {
			used++
		}
	}
	if used != 1 {
		t.Errorf("%d accounts charged a failure, want only the one that met the maintenance page", used)
	}
	for _, u := range s.usage() {
		if u.GetResult() != apv1.UsageResult_USAGE_RESULT_ERROR {
			t.Errorf("usage %v, want the one check's error only", u)
		}
	}
}
