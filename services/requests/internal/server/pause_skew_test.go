package server_test

import (
	"testing"
	"time"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestALengthenedPauseAfterItsResumeIsResumedToo: two Requests replicas
// over one database, A's clock 2 seconds ahead of B's. An operator resumes
// the portal through A (paused_until = A's now, PORTAL_RESUMED written,
// pause_open false); within those 2 seconds a check claimed before the
// pause reports to B a rate limit with a Retry-After of an hour. B still
// sees the portal paused, so Wall lengthens the pause (an hour more of no
// claims) and now writes a PORTAL_PAUSED, but leaves pause_open false: the
// pause it announced never gets its PORTAL_RESUMED (docs/requests.md: "its
// end writes PORTAL_RESUMED ... exactly once"), so every reader of the
// events (slotctl events follow) shows the portal paused for good. The
// reason still reads "resumed by an operator" on a paused portal.
func TestALengthenedPauseAfterItsResumeIsResumedToo(t *testing.T) {
	t.Parallel()
	servers, clock := replicas(t, serverOpts{}, 0, 2*time.Second)
	b, a := servers[0], servers[1]
	cB, cA := b.client, a.client
	advance := clock.Advance

	portalMissions(t, cB, "vfs", 3)
	held := claim(t, cB, 1, 0)
	if len(held) != 1 {
		t.Fatalf("claimed %d, want 1", len(held))
	}
	for range 3 {
		reportWall(t, cB, wallCaptcha, 0)
	}
	advance(time.Minute)
	if _, err := cA.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"}); err != nil {
		t.Fatal(err)
	}
	reportHeld(t, cB, held[0], wallRateLimited, time.Hour)
	st := portalStatus(t, cB, "vfs")
	t.Logf("after the held report: paused=%v until %v reason %q", st.GetPaused(), st.GetPausedUntil().AsTime(), st.GetPauseReason())

	// Well past any end: claims and the sweep owe every PORTAL_RESUMED.
	advance(2 * time.Hour)
	claim(t, cB, 100, 0)
	claim(t, cA, 100, 0)
	for _, s := range servers {
		if _, err := s.app.ExpireDue(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
	}
	createRequest(t, cB, createApplicant(t, cB).GetId(), reqArgs{mission: "endmark"})
	evs := portalEvents(t, cB)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.GetType().String())
	}
	if len(evs) == 0 || evs[len(evs)-1].GetType() != requestsv1.EventType_EVENT_TYPE_PORTAL_RESUMED {
		t.Fatalf("portal events %v: the last is not PORTAL_RESUMED, though the portal is not paused (paused=%v): the pause announced last never ends",
			types, portalStatus(t, cB, "vfs").GetPaused())
	}
}
