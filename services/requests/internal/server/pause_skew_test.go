package server_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

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

// TestAResumeRetriedThroughAReplicaBehindIsANoOp: an operator resumes a
// portal through replica A, whose clock is 2 seconds ahead of B's; the
// answer is lost and the client retries (slotctl, a load balancer), and
// the retry reaches B. By B's clock the pause still runs until A's resume,
// but its PORTAL_RESUMED is written (pause_open false): the retry must
// change nothing (no second PORTAL_RESUMED, paused_until and the level's
// end not moved back to B's now) and answer what the first call answered;
// B's status and slotwatch_requests_portal_paused read the portal resumed.
func TestAResumeRetriedThroughAReplicaBehindIsANoOp(t *testing.T) {
	t.Parallel()
	servers, clock := replicas(t, serverOpts{}, 0, 2*time.Second)
	cB, cA := servers[0].client, servers[1].client

	portalMissions(t, cB, "vfs", 3)
	for range 3 {
		reportWall(t, cB, wallCaptcha, 0)
	}
	clock.Advance(time.Minute)
	first, err := cA.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetStatus().GetPaused() {
		t.Fatalf("first ResumePortal answered %v, want not paused", first.GetStatus())
	}
	retry, err := cB.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"})
	if err != nil {
		t.Fatalf("the retried ResumePortal: %v", err)
	}
	if !proto.Equal(retry.GetStatus(), first.GetStatus()) {
		t.Errorf("the retried ResumePortal answered %v, want the first call's %v", retry.GetStatus(), first.GetStatus())
	}
	if st := portalStatus(t, cA, "vfs"); !proto.Equal(st, first.GetStatus()) {
		t.Errorf("after the retry the status is %v, want the first resume's %v", st, first.GetStatus())
	}
	// B's gauge reads the portal resumed too, as its status does.
	wantPaused(t, &testBundle{server: servers[0]}, "vfs", "")

	createRequest(t, cB, createApplicant(t, cB).GetId(), reqArgs{mission: "endmark"})
	var types []string
	for _, ev := range portalEvents(t, cB) {
		types = append(types, ev.GetType().String())
	}
	want := []string{requestsv1.EventType_EVENT_TYPE_PORTAL_PAUSED.String(), requestsv1.EventType_EVENT_TYPE_PORTAL_RESUMED.String()}
	if !slices.Equal(types, want) {
		t.Errorf("portal events %v, want %v: one pause, resumed once", types, want)
	}
}

// TestAWallJustAfterAResumeIsAPauseWhateverTheClocks: an operator resumes
// the portal through A, and at once a check claimed before the pause
// reports to B a rate limit with a Retry-After of an hour. With B's clock
// 2 s behind A's the wall re-opens the resumed pause; with the clocks
// together it begins a new one. Either way the portal ran between (claims
// went on by A's clock) and was stopped again for an hour, and a consumer
// of the events sees the same sequence: two pauses, each ended. Only the
// level tells them apart (a re-opened pause does not raise it: its wall
// is of the episode the first pause was for).
func TestAWallJustAfterAResumeIsAPauseWhateverTheClocks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		skew  time.Duration
		level int32
	}{{"BBehindA", 2 * time.Second, 1}, {"ClocksTogether", 0, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			servers, clock := replicas(t, serverOpts{}, 0, tc.skew)
			cB, cA := servers[0].client, servers[1].client
			portalMissions(t, cB, "vfs", 3)
			held := claim(t, cB, 1, 0)
			if len(held) != 1 {
				t.Fatalf("claimed %d, want 1", len(held))
			}
			for range 3 {
				reportWall(t, cB, wallCaptcha, 0)
			}
			clock.Advance(time.Minute)
			if _, err := cA.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"}); err != nil {
				t.Fatal(err)
			}
			reportHeld(t, cB, held[0], wallRateLimited, time.Hour)
			st := portalStatus(t, cB, "vfs")
			if !st.GetPaused() || st.GetPauseLevel() != tc.level {
				t.Errorf("after the wall: %v, want paused at level %d", st, tc.level)
			}
			clock.Advance(2 * time.Hour)
			claim(t, cB, 100, 0) // writes the PORTAL_RESUMED the end owes
			createRequest(t, cB, createApplicant(t, cB).GetId(), reqArgs{mission: "endmark"})
			var types []string
			for _, ev := range portalEvents(t, cB) {
				types = append(types, strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))
			}
			if want := []string{"PORTAL_PAUSED", "PORTAL_RESUMED", "PORTAL_PAUSED", "PORTAL_RESUMED"}; !slices.Equal(types, want) {
				t.Errorf("portal events %v, want %v", types, want)
			}
		})
	}
}
