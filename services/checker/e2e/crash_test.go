package e2e

import (
	"testing"
	"time"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// TestKilledCheckerLeavesItsLeaseAndClaimToTheirTTLs kills a checker (SIGKILL,
// no chance to clean up) in the middle of a check, holding a lease and a
// claim. Both come back when their TTLs run out, and a second checker
// finishes the mission.
func TestKilledCheckerLeavesItsLeaseAndClaimToTheirTTLs(t *testing.T) {
	t.Parallel()
	const (
		claimTTL = 30 * time.Second
		leaseTTL = 10 * time.Second
	)
	s := newSystem(t, options{poolEnv: []string{"POOL_COOLDOWN=1m"}})
	accts := s.addAccounts(2)
	s.addMission("fra")
	// Account 1 (leased first) logs in slowly: the check is in progress
	// for seconds.
	if err := s.sim.SetBehaviour(accts[0].email, sim.Behaviour{DelayMS: 60000, Only: sim.LoginArea}); err != nil {
		t.Fatal(err)
	}
	settings := []string{"CHECKER_SESSION_INTERVAL=300ms", "CHECKER_CLAIM_TTL=" + claimTTL.String(), "CHECKER_LEASE_TTL=" + leaseTTL.String()}
	first := s.startChecker("checker-1", settings...)

	var inFlight *checkerv1.InFlightMission
	eventually(t, time.Minute, "checker-1 checks fra with account 1", func() bool {
		st, err := first.reader.GetStatus(testkit.Context(t), &checkerv1.GetStatusRequest{})
		if err != nil || len(st.GetInFlight()) != 1 || st.GetInFlight()[0].GetAccountId() != accts[0].id {
			return false
		}
		inFlight = st.GetInFlight()[0]
		return true
	})
	first.Kill()

	claims := s.claims()
	if len(claims) != 1 || claims[0].checker != "checker-1" || claims[0].reported != nil {
		t.Fatalf("claims right after the kill: %+v, want checker-1's, unreported", claims)
	}
	if inFlight.GetMissionCode() != "fra" || inFlight.GetAccountEmail() != accts[0].email ||
		inFlight.GetClaimId() != claims[0].id || inFlight.GetSessionNumber() < 1 {
		t.Errorf("in flight = %v, want fra with %s under claim %s in a session", inFlight, accts[0].email, claims[0].id)
	}
	usage := s.usage()
	if len(usage) != 1 || usage[0].GetAccountId() != accts[0].id || usage[0].GetResult() != apv1.UsageResult_USAGE_RESULT_UNSPECIFIED {
		t.Fatalf("usage right after the kill: %v, want account 1's lease, held", usage)
	}
	if st := s.account(accts[0].id).GetState(); st != apv1.AccountState_ACCOUNT_STATE_LEASED {
		t.Fatalf("account 1 is %v right after the kill, want leased", st)
	}

	second := s.startChecker("checker-2", settings...)
	var done checkRow
	eventually(t, 2*time.Minute, "a check of fra is reported", func() bool {
		for _, c := range s.checks() {
			done = c
			return true
		}
		return false
	})
	if done.checker != "checker-2" || done.account != accts[1].id || done.outcome != "no_slot" {
		t.Errorf("check = %+v, want checker-2's with account %d, no_slot", done, accts[1].id)
	}
	claims = s.claims()
	if len(claims) < 2 || claims[0].reported != nil || claims[1].checker != "checker-2" || claims[1].id != done.claim {
		t.Fatalf("claims = %+v, want checker-1's never reported, then checker-2's", claims)
	}
	if !claims[1].claimed.After(claims[0].expires) {
		t.Errorf("checker-2 claimed fra at %v, before checker-1's claim ran out at %v", claims[1].claimed, claims[0].expires)
	}

	// The pool takes account 1 back when the lease runs out: lease_expired,
	// cooling down, a failure counted.
	var lease1 *apv1.UsageRecord
	eventually(t, time.Minute, "account 1's lease expires", func() bool {
		for _, u := range s.usage() {
			if u.GetLeaseId() == usage[0].GetLeaseId() {
				lease1 = u
			}
		}
		return lease1.GetResult() == apv1.UsageResult_USAGE_RESULT_LEASE_EXPIRED
	})
	if held := lease1.GetReleasedAt().AsTime().Sub(lease1.GetAcquiredAt().AsTime()); held < leaseTTL {
		t.Errorf("account 1 came back after %s, before its %s lease ran out", held, leaseTTL)
	}
	a1 := s.account(accts[0].id)
	if a1.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN || a1.GetConsecutiveFailures() != 1 || a1.GetLeasedBy() != "" {
		t.Errorf("account 1 after its lease expired: %v, want cooldown with one failure", a1)
	}
	for _, u := range s.usage() {
		if u.GetLeaseId() != lease1.GetLeaseId() && u.GetHolder() != "checker-2" {
			t.Errorf("lease %v not by checker-2", u)
		}
	}
	second.Stop()
}
