package e2e

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestACheckClaimedBeforeItsPortalPausedSendsItNothing is issue 13's
// "nothing is sent to it until the pause ends" for the check that the
// pause cannot stop by refusing claims: one claimed just before the pause.
// The checker claims mission m-a and waits for the only account, which the
// test holds; meanwhile a wall reported on m-b (with a Retry-After) pauses
// the portal; then the test lets the account go. The check must call
// itself off before its first request: the portal sees nothing, Requests
// records no check, and the account goes back unused.
func TestACheckClaimedBeforeItsPortalPausedSendsItNothing(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{poolEnv: []string{"POOL_COOLDOWN=1s"}})
	acct := s.addAccounts(1)[0]
	ctx := testkit.Context(t)
	// The test releases this lease itself once the Checker has claimed,
	// renewing it first: its TTL outlasts a slow browser start on a loaded
	// machine (19 s in a CI run, past the 15 s it had then), yet the
	// Checker, told no account is free until it ends, asks again soon
	// after the release (with a 2-minute lease it waited past the test).
	const heldFor = 30 * time.Second
	held, err := s.ap.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "m-b", Holder: "test", LeaseTtl: durationpb.New(heldFor)})
	if err != nil {
		t.Fatal(err)
	}
	portalOf := func(m string) {
		t.Helper()
		if _, err := s.rq.UpsertMission(ctx, &rqv1.UpsertMissionRequest{MissionCode: m, Portal: proto.String("psim")}); err != nil {
			t.Fatal(err)
		}
	}
	// The test's own claim, made before m-a exists, so it is m-b's.
	s.addMission("m-b")
	portalOf("m-b")
	resp, err := s.rq.ClaimDueMissions(ctx, &rqv1.ClaimDueMissionsRequest{CheckerId: "test", MaxMissions: 1})
	if err != nil || len(resp.GetClaims()) != 1 {
		t.Fatalf("claim m-b: %v %v", resp, err)
	}
	wallClaim := resp.GetClaims()[0].GetClaimId()
	s.addMission("m-a")
	portalOf("m-a")

	c := s.startChecker("checker-one", "CHECKER_SESSION_INTERVAL=200ms")
	eventually(t, time.Minute, "the checker claims m-a", func() bool {
		for _, cl := range s.claims() {
			if cl.mission == "m-a" && cl.checker == "checker-one" {
				return true
			}
		}
		return false
	})
	// A rate limit with a Retry-After pauses the portal at once.
	if _, err := s.rq.ReportCheckResult(ctx, &rqv1.ReportCheckResultRequest{ClaimId: wallClaim,
		Outcome: rqv1.CheckOutcome_CHECK_OUTCOME_RATE_LIMITED, RetryAfter: durationpb.New(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.rq.GetPortalStatus(ctx, &rqv1.GetPortalStatusRequest{Name: "psim"}); err != nil || !st.GetStatus().GetPaused() {
		t.Fatalf("portal status after the wall: %v %v", st, err)
	}

	if _, err := s.ap.Renew(ctx, &apv1.RenewRequest{LeaseId: held.GetLease().GetLeaseId(),
		FencingToken: held.GetLease().GetFencingToken(), ExtendBy: durationpb.New(heldFor)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ap.Release(ctx, &apv1.ReleaseRequest{LeaseId: held.GetLease().GetLeaseId(),
		FencingToken: held.GetLease().GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_NO_SLOT}); err != nil {
		t.Fatal(err)
	}
	var used *apv1.UsageRecord
	eventually(t, 2*heldFor, "the checker's lease ends", func() bool {
		for _, u := range s.usage() {
			if u.GetHolder() == "checker-one" && u.GetResult() != apv1.UsageResult_USAGE_RESULT_UNSPECIFIED {
				used = u
				return true
			}
		}
		return false
	})
	c.Stop()

	if used.GetResult() != apv1.UsageResult_USAGE_RESULT_UNUSED || used.GetLoggedIn() {
		t.Errorf("the checker's lease: %v, want unused, no login", used)
	}
	if got := s.sim.Requests(); len(got) != 0 {
		t.Errorf("the paused portal saw %d requests, the first %v", len(got), got[0])
	}
	for _, ch := range s.checks() {
		if ch.mission == "m-a" {
			t.Errorf("Requests recorded a check of m-a: %+v", ch)
		}
	}
	if a := s.account(acct.id); a.GetConsecutiveFailures() != 0 {
		t.Errorf("the account has %d failures", a.GetConsecutiveFailures())
	}
}
