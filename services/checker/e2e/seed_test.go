package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// TestSeedExampleSixAccountsTwoMissions plays the seed's "Example: 6
// Accounts, 2 Missions" with the real checker against portalsim:
//
//	Session 1: France→Acc1, Belgium→Acc2 (both no_slot → cooldown)
//	Session 2: France→Acc3 (SUCCESS!), Belgium→Acc4 (no_slot → cooldown)
//	Session 3: Belgium→Acc5 (no_slot → cooldown)
//	Session 4: Belgium→Acc6 (no_slot → cooldown)
//	Session 5: All in cooldown → WAIT until Acc1 cooldown expires
//	Session 6: Belgium→Acc1 (LRU, cooldown expired)
//
// What makes it deterministic:
//   - Sessions are run one at a time with RunSession (CHECKER_LOOP=false).
//   - The checker leases accounts for its claims in a fixed order, the
//     mission with the oldest request first; France's request is created
//     first. MAX_CONCURRENT_MISSIONS=1 makes France's check end (and Acc1
//     start cooling down) before Belgium leases Acc2, so Acc1's cooldown
//     ends first, as in the seed. Belgium waits for France's check for at
//     most half the claim (CHECKER_CLAIM_TTL=80s: 40s, far more than a check
//     takes even on a loaded machine).
//   - The cooldown (180s) outlasts sessions 1-4, so session 5 finds every
//     account cooling down; what is left of Acc1's cooldown then (180s less
//     sessions 1-4's six checks) is longer than half the claim, so the
//     checker does not sit on the claim: session 5 reports it FAILED with
//     the pool's delay,
//     the wait happens between sessions 5 and 6 (as the checker's loop
//     would pause), and session 6 gets Acc1.
//
// It runs on the classic portal and on the vfs family (a single-page app
// whose slots are a sentence), each with its shipped profile.
func TestSeedExampleSixAccountsTwoMissions(t *testing.T) {
	t.Parallel()
	for _, f := range []sim.Family{sim.Classic, sim.VFS} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			testSeedExample(t, f)
		})
	}
}

func testSeedExample(t *testing.T, family sim.Family) {
	const cooldown = 180 * time.Second
	s := newSystem(t, options{family: family, poolEnv: []string{"POOL_COOLDOWN=" + cooldown.String()}})
	accts := s.addAccounts(6)
	acc := func(n int) account { return accts[n-1] }
	fra := s.addMission("fra")
	bel := s.addMission("bel")
	c := s.startChecker("checker-seed", "CHECKER_LOOP=false", "MAX_CONCURRENT_MISSIONS=1", "CHECKER_CLAIM_TTL=80s")

	type step struct {
		mission string
		account int64 // 0: none leased
		outcome string
	}
	usageSeen, loginsSeen := 0, 0
	// session runs one session and checks its results, the usage log rows
	// and portal logins it added.
	session := func(n int, want ...step) *checkerv1.SessionSummary {
		t.Helper()
		sum := c.runSession(t)
		var got []step
		for _, r := range sum.GetResults() {
			got = append(got, step{r.GetMissionCode(), r.GetAccountId(), r.GetOutcome()})
		}
		if !slices.Equal(got, want) {
			t.Fatalf("session %d: results %v, want %v\n%v", n, got, want, sum)
		}
		var leased []step
		for _, w := range want {
			if w.account != 0 {
				leased = append(leased, w)
			}
		}
		usage := s.usage()
		var newUsage []step
		for _, u := range usage[usageSeen:] {
			newUsage = append(newUsage, step{u.GetMissionCode(), u.GetAccountId(), strings.ToLower(strings.TrimPrefix(u.GetResult().String(), "USAGE_RESULT_"))})
			if u.GetHolder() != c.id {
				t.Errorf("session %d: lease held by %q, want %q", n, u.GetHolder(), c.id)
			}
		}
		if !slices.Equal(newUsage, leased) {
			t.Fatalf("session %d: usage log rows %v, want %v", n, newUsage, leased)
		}
		usageSeen = len(usage)
		logins := s.sim.Logins()
		var emails, wantEmails []string
		for _, l := range logins[loginsSeen:] {
			if l.Result != sim.LoginOK {
				t.Errorf("session %d: login of %s: %s", n, l.Email, l.Result)
			}
			emails = append(emails, l.Email)
		}
		for _, w := range leased {
			for _, a := range accts {
				if a.id == w.account {
					wantEmails = append(wantEmails, a.email)
				}
			}
		}
		if !slices.Equal(emails, wantEmails) {
			t.Fatalf("session %d: portal logins %v, want %v", n, emails, wantEmails)
		}
		loginsSeen = len(logins)
		return sum
	}

	session(1, step{"fra", acc(1).id, "no_slot"}, step{"bel", acc(2).id, "no_slot"})

	s.putSlotThroughAdminAPI("fra", slotDate)
	s2 := session(2, step{"fra", acc(3).id, "success"}, step{"bel", acc(4).id, "no_slot"})
	if r := s2.GetResults()[0]; r.GetSlotsFound() != 1 || r.GetRequestsMatched() != 1 {
		t.Errorf("session 2: France found %d slots, matched %d requests; want 1 and 1", r.GetSlotsFound(), r.GetRequestsMatched())
	}

	// France's request has its slot: from now on only Belgium is due.
	session(3, step{"bel", acc(5).id, "no_slot"})
	session(4, step{"bel", acc(6).id, "no_slot"})

	// Session 5: every account cools down. The pool answers
	// RESOURCE_EXHAUSTED with a delay of exactly Acc1's remaining cooldown.
	acc1FreeAt := s.account(acc(1).id).GetCooldownUntil().AsTime()
	for _, a := range accts {
		if st := s.account(a.id).GetState(); st != apv1.AccountState_ACCOUNT_STATE_COOLDOWN {
			t.Fatalf("before session 5: account %d is %v, want cooldown", a.id, st)
		}
		if until := s.account(a.id).GetCooldownUntil().AsTime(); a.id != acc(1).id && !until.After(acc1FreeAt) {
			t.Fatalf("account %d's cooldown ends at %v, not after account 1's (%v)", a.id, until, acc1FreeAt)
		}
	}
	before := time.Now()
	s5 := session(5, step{"bel", 0, "no_account"})
	after := time.Now()
	delay := s5.GetResults()[0].GetRetryAfter().AsDuration()
	// The pool computed the delay at some moment inside the session.
	if delay > acc1FreeAt.Sub(before) || delay < acc1FreeAt.Sub(after) {
		t.Fatalf("session 5: retry after %s; want account 1's remaining cooldown, between %s and %s",
			delay, acc1FreeAt.Sub(after), acc1FreeAt.Sub(before))
	}
	waits := c.Log.With("no account free")
	if len(waits) != 1 || waits[0]["session"] != float64(5) || waits[0]["mission"] != "bel" ||
		waits[0]["retry_after"] != delay.String() || waits[0]["retry_after_ms"] != float64(delay.Milliseconds()) {
		t.Errorf(`"no account free" log lines = %v, want one for session 5, bel, retry after %s`, waits, delay)
	}

	// Wait what the pool said, then session 6: Acc1 is free again and the
	// least recently used.
	time.Sleep(time.Until(before.Add(delay)))
	eventually(t, 10*time.Second, "account 1 available", func() bool {
		return s.account(acc(1).id).GetState() == apv1.AccountState_ACCOUNT_STATE_AVAILABLE
	})
	session(6, step{"bel", acc(1).id, "no_slot"})

	// What Requests recorded.
	got, err := s.rq.GetAppointmentRequest(testkit.Context(t), &rqv1.GetAppointmentRequestRequest{Id: fra.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if r := got.GetRequest(); r.GetStatus() != rqv1.RequestStatus_REQUEST_STATUS_SLOT_FOUND ||
		len(r.GetMatchedSlots()) != 1 || r.GetMatchedSlots()[0].GetDate() != slotDate {
		t.Errorf("France's request = %v, want SLOT_FOUND with the slot of %s", r, slotDate)
	}
	got, err = s.rq.GetAppointmentRequest(testkit.Context(t), &rqv1.GetAppointmentRequestRequest{Id: bel.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if r := got.GetRequest(); r.GetStatus() != rqv1.RequestStatus_REQUEST_STATUS_PENDING {
		t.Errorf("Belgium's request = %v, want PENDING", r)
	}
	var belChecks []string
	for _, ch := range s.checks() {
		if ch.mission == "bel" {
			belChecks = append(belChecks, fmt.Sprintf("%s/%d", ch.outcome, ch.account))
		}
	}
	want := []string{
		fmt.Sprintf("no_slot/%d", acc(2).id), fmt.Sprintf("no_slot/%d", acc(4).id), fmt.Sprintf("no_slot/%d", acc(5).id),
		fmt.Sprintf("no_slot/%d", acc(6).id), "failed/0", fmt.Sprintf("no_slot/%d", acc(1).id),
	}
	if !slices.Equal(belChecks, want) {
		t.Errorf("Belgium's checks = %v, want %v", belChecks, want)
	}
	for _, cl := range s.claims() {
		if cl.reported == nil {
			t.Errorf("claim %s of %s was never reported", cl.id, cl.mission)
		}
	}
	// The demo reads these lines.
	if n := len(c.Log.With("session started")); n != 6 {
		t.Errorf("%d \"session started\" lines, want 6", n)
	}
	if n := len(c.Log.With("check finished")); n != 7 {
		t.Errorf("%d \"check finished\" lines, want 7", n)
	}
	for _, a := range accts {
		if strings.Contains(c.Log.Text(), a.password) {
			t.Fatalf("the checker logged the password of %s", a.email)
		}
	}
}
