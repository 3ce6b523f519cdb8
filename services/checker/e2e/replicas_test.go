package e2e

import (
	"slices"
	"testing"
	"time"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
)

// TestTwoCheckersNeverCheckAMissionOrUseAnAccountTwiceAtOnce runs two
// checker processes against one system, their loops on, with missions
// always due and short cooldowns, until both have checked several times.
// Requests' claims and AccountPool's usage log then show no mission
// claimed by two at once and no account leased to two at once.
func TestTwoCheckersNeverCheckAMissionOrUseAnAccountTwiceAtOnce(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{poolEnv: []string{"POOL_COOLDOWN=2s"}})
	s.addAccounts(5)
	for _, m := range []string{"m-a", "m-b", "m-c"} {
		s.addMission(m)
	}
	settings := []string{"CHECKER_SESSION_INTERVAL=200ms", "MAX_CONCURRENT_MISSIONS=2", "CHECKER_CLAIM_TTL=40s", "CHECKER_LEASE_TTL=20s"}
	one := s.startChecker("checker-one", settings...)
	two := s.startChecker("checker-two", settings...)

	eventually(t, 3*time.Minute, "both checkers check missions", func() bool {
		by := map[string]int{}
		for _, c := range s.checks() {
			if c.account != 0 {
				by[c.checker]++
			}
		}
		return by["checker-one"] >= 3 && by["checker-two"] >= 3
	})
	// A clean stop ends every claim and lease, so every interval below is
	// closed.
	one.Stop()
	two.Stop()

	type span struct {
		owner      string
		start, end time.Time
	}
	overlaps := func(what string, spans map[string][]span) {
		t.Helper()
		for key, ss := range spans {
			slices.SortFunc(ss, func(a, b span) int { return a.start.Compare(b.start) })
			for i := 1; i < len(ss); i++ {
				if ss[i].start.Before(ss[i-1].end) {
					t.Errorf("%s %s: held by %s from %v to %v and by %s from %v", what, key,
						ss[i-1].owner, ss[i-1].start, ss[i-1].end, ss[i].owner, ss[i].start)
				}
			}
		}
	}

	// Missions, as the portal saw them checked: the time from a portal
	// session's first slot page of the mission to its last answer.
	bySession := map[[2]string]*span{}
	for _, h := range s.hits.all() {
		k := [2]string{h.mission, h.session}
		sp := bySession[k]
		if sp == nil {
			bySession[k] = &span{h.session, h.start, h.end}
			continue
		}
		if h.start.Before(sp.start) {
			sp.start = h.start
		}
		if h.end.After(sp.end) {
			sp.end = h.end
		}
	}
	checked := map[string][]span{}
	for k, sp := range bySession {
		checked[k[0]] = append(checked[k[0]], *sp)
	}
	overlaps("mission checked", checked)

	// Missions, as Requests recorded their claims: each ended by its
	// report (none lapsed, none left behind), the next claim only after.
	// Requests stamps claimed_at with its clock before the claiming
	// statement runs (the row lock orders the claims, not the stamps), so
	// under load a claim may be stamped a little before the report it
	// waited for: the stamps are compared with that allowance.
	const stampSkew = time.Second
	claims := map[string][]span{}
	owners := map[string]string{}
	for _, c := range s.claims() {
		if c.reported == nil {
			t.Errorf("claim %s of %s by %s was left behind", c.id, c.mission, c.checker)
			continue
		}
		if !c.reported.Before(c.expires) {
			t.Errorf("claim %s of %s by %s reported after it lapsed", c.id, c.mission, c.checker)
		}
		claims[c.mission] = append(claims[c.mission], span{c.checker, c.claimed.Add(stampSkew), *c.reported})
		owners[c.id] = c.checker
	}
	overlaps("mission claimed", claims)
	for _, c := range s.checks() {
		if owners[c.claim] != c.checker {
			t.Errorf("check %+v reported by another checker than the claim's (%s)", c, owners[c.claim])
		}
	}

	leases := map[string][]span{}
	n := 0
	for _, u := range s.usage() {
		switch u.GetResult() {
		case apv1.UsageResult_USAGE_RESULT_UNSPECIFIED, apv1.UsageResult_USAGE_RESULT_LEASE_EXPIRED:
			t.Errorf("lease %s of account %d by %s: %v, want released", u.GetLeaseId(), u.GetAccountId(), u.GetHolder(), u.GetResult())
			continue
		}
		key := u.GetEmail()
		leases[key] = append(leases[key], span{u.GetHolder(), u.GetAcquiredAt().AsTime(), u.GetReleasedAt().AsTime()})
		n++
	}
	overlaps("account", leases)
	t.Logf("%d claims, %d portal checks, %d leases checked for overlaps", len(owners), len(bySession), n)
}
