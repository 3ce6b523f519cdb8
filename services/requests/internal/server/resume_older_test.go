package server_test

import (
	"strings"
	"testing"
	"time"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestLiftingAPauseAnOlderRequestsLengthenedWritesNoUnpairedResumed: a
// rollout beside a Requests older than c83a716. A (new code, 2 s ahead)
// resumes vfs: PORTAL_PAUSED, PORTAL_RESUMED. B, the older Requests,
// lengthens the pause it still sees running by a Retry-After of an hour;
// that code writes no event for a lengthening and leaves pause_open false
// (simulated with the one UPDATE it makes). A ResumePortal then must not
// write a PORTAL_RESUMED that pairs with no PORTAL_PAUSED (docs/requests.md
// says what the operator sees in that window, and that it ends at
// paused_until).
func TestLiftingAPauseAnOlderRequestsLengthenedWritesNoUnpairedResumed(t *testing.T) {
	t.Parallel()
	servers, clock := replicas(t, serverOpts{}, 0, 2*time.Second)
	b, a := servers[0], servers[1]
	portalMissions(t, a.client, "vfs", 3)
	for range 3 {
		reportWall(t, a.client, wallCaptcha, 0)
	}
	clock.Advance(time.Minute)
	if _, err := a.client.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"}); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	if _, err := b.pool.Exec(testkit.Context(t), `UPDATE requests.portals SET paused_until = $2, updated_at = $3
		WHERE name = $1`, "vfs", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Minute)
	if _, err := a.client.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"}); err != nil {
		t.Fatal(err)
	}
	if n := len(claim(t, a.client, 100, 0)); n != 0 {
		t.Errorf("claimed %d of vfs before the lengthened pause's end, want 0 (docs/requests.md)", n)
	}
	clock.Advance(time.Hour)
	if n := len(claim(t, a.client, 100, 0)); n == 0 {
		t.Error("nothing of vfs claimed after the lengthened pause's end: it did not end by itself")
	}
	createRequest(t, a.client, createApplicant(t, a.client).GetId(), reqArgs{mission: "endmark"})
	var types []string
	for _, ev := range portalEvents(t, a.client) {
		types = append(types, strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))
	}
	for i := 1; i < len(types); i++ {
		if types[i] == "PORTAL_RESUMED" && types[i-1] == "PORTAL_RESUMED" {
			t.Errorf("portal events %v: a PORTAL_RESUMED with no PORTAL_PAUSED before it", types)
			break
		}
	}
}
