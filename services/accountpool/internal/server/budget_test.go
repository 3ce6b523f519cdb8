package server_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// wantExhausted asserts that Acquire finds nothing and says to retry in
// exactly want.
func wantExhausted(t *testing.T, c apv1.AccountPoolServiceClient, want time.Duration) {
	t.Helper()
	_, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
	testkit.WantCode(t, err, codes.ResourceExhausted)
	if d, ok := apierr.RetryDelay(err); !ok || d != want {
		t.Fatalf("RetryInfo %s (present: %v), want %s", d, ok, want)
	}
}

// login leases an account and releases it saying the check logged in.
func login(t *testing.T, c apv1.AccountPoolServiceClient, req *apv1.ReleaseRequest) *apv1.Lease {
	t.Helper()
	l := acquire(t, c, "fra")
	req.LoggedIn = true
	releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, req)
	return l
}

func TestLoginBudget(t *testing.T) {
	t.Parallel()

	budget := func(n int) option {
		return withConfig(func(c *domain.Config) { c.Cooldown, c.MaxLoginsPerDay = 0, n })
	}

	t.Run("AccountOverBudgetWaitsForItsOldestLoginToLeaveTheWindow", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, budget(2))
		ids := addAccounts(t, c, 1)
		if l := login(t, c, &apv1.ReleaseRequest{}); l.GetLoginBudgetLeft() != 2 {
			t.Fatalf("first lease: %d logins left, want 2", l.GetLoginBudgetLeft())
		}
		b.clock.Advance(time.Hour)
		if l := login(t, c, &apv1.ReleaseRequest{}); l.GetLoginBudgetLeft() != 1 {
			t.Fatalf("second lease: %d logins left, want 1", l.GetLoginBudgetLeft())
		}
		b.clock.Advance(time.Hour)
		wantExhausted(t, c, 22*time.Hour)
		b.clock.Advance(22*time.Hour - time.Second)
		wantExhausted(t, c, time.Second)
		b.clock.Advance(time.Second)
		l := acquire(t, c, "fra")
		releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{LoggedIn: true})
		// Logins at 1h and 24h: the budget frees at 25h.
		wantExhausted(t, c, time.Hour)
		// The stats' window [now-24h, now) holds the logins at 0 and 1h.
		stats, err := c.GetUsageStats(testkit.Context(t), &apv1.GetUsageStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if s := stats.GetStats(); len(s) != 1 || s[0].GetAccountId() != ids[0] || s[0].GetLogins() != 2 || s[0].GetUses() != 2 {
			t.Fatalf("usage stats of the last 24h: %v", s)
		}
	})

	t.Run("PoolStatusCountsAccountsOverBudgetApart", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, budget(1))
		addAccounts(t, c, 3)
		status := func() *apv1.GetPoolStatusResponse {
			t.Helper()
			st, err := c.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		login(t, c, &apv1.ReleaseRequest{})                             // no session kept: over its budget
		login(t, c, &apv1.ReleaseRequest{SessionState: []byte(cookie)}) // over it too, but its session lets it check
		if st := status(); st.GetAvailable() != 2 || st.GetOverLoginBudget() != 1 || st.GetTotalActive() != 3 || st.GetNextAvailableAt() != nil {
			t.Fatalf("status with one account over budget: %v", st)
		}
		b.clock.Advance(time.Hour)
		login(t, c, &apv1.ReleaseRequest{}) // the third, never logged in before
		releaseSession(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{ClearSession: true})
		st := status()
		if st.GetAvailable() != 0 || st.GetOverLoginBudget() != 3 {
			t.Fatalf("status with every account over budget: %v", st)
		}
		// The first login (at 0) leaves the window at 24h.
		if got, want := st.GetNextAvailableAt().AsTime(), b.clock.Now().Add(23*time.Hour); !got.Equal(want) {
			t.Errorf("next_available_at = %v, want %v", got, want)
		}
		wantExhausted(t, c, 23*time.Hour)
	})

	// A lease granted for its session alone (no login left) whose check
	// finds the session logged out cannot log in: the Checker releases it
	// unused, clearing the session. That is the budget's doing, not a
	// failure of the account.
	t.Run("DeadSessionOverBudgetIsReleasedUnusedWithoutAFailure", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, budget(1))
		id := addAccounts(t, c, 1)[0]
		login(t, c, &apv1.ReleaseRequest{SessionState: []byte(cookie)})
		b.clock.Advance(time.Minute)
		l := acquire(t, c, "fra")
		if l.GetLoginBudgetLeft() != 0 {
			t.Fatalf("lease: %d logins left, want 0", l.GetLoginBudgetLeft())
		}
		a := releaseSession(t, c, l, apv1.Outcome_OUTCOME_UNUSED, &apv1.ReleaseRequest{ClearSession: true,
			Detail: "login_budget: the portal had logged the session out"})
		if n := a.GetAccount().GetConsecutiveFailures(); n != 0 {
			t.Errorf("failures after the release: %d, want 0", n)
		}
		// No session and no login left: it waits for its budget (the login
		// at 0 leaves the window at 24h).
		wantExhausted(t, c, 24*time.Hour-time.Minute)
		if u := usage(t, c, id); u[0].GetResult() != apv1.UsageResult_USAGE_RESULT_UNUSED || u[0].GetLoggedIn() {
			t.Errorf("usage log: %v", u[0])
		}
	})

	t.Run("ValidSessionKeepsAnAccountOverBudgetEligible", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, budget(1))
		addAccounts(t, c, 1)
		login(t, c, &apv1.ReleaseRequest{SessionState: []byte(cookie), SessionMaxAge: durationpb.New(2 * time.Hour)})
		b.clock.Advance(time.Minute)
		l := acquire(t, c, "fra")
		if string(l.GetSessionState()) != cookie || l.GetLoginBudgetLeft() != 0 {
			t.Fatalf("lease of an account over budget: session %q, %d logins left; want its session and none", l.GetSessionState(), l.GetLoginBudgetLeft())
		}
		// The check reused the session; the next one still may.
		releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{})
		// Once the session expires, the account needs a login and waits for
		// its budget: the login at 0 leaves the window at 24h.
		b.clock.Advance(2 * time.Hour)
		wantExhausted(t, c, 24*time.Hour-2*time.Hour-time.Minute)
		// A cleared session makes it wait too.
		b.clock.Advance(24*time.Hour - 2*time.Hour - time.Minute)
		l = acquire(t, c, "fra")
		releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{LoggedIn: true, SessionState: []byte(cookie)})
		b.clock.Advance(time.Minute)
		releaseSession(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{ClearSession: true})
		wantExhausted(t, c, 24*time.Hour-time.Minute)
	})

	t.Run("RetryInfoIsTheEarliestOfBudgetsRestsAndLeases", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, budget(1))
		ids := addAccounts(t, c, 3)
		for range ids {
			login(t, c, &apv1.ReleaseRequest{})
			b.clock.Advance(time.Hour)
		}
		// Every budget is spent; the first frees at 24h (now is 3h).
		wantExhausted(t, c, 21*time.Hour)
		// Account 3 now rests until 10 minutes from now: its rest ends
		// before any budget frees, so that is the answer (a lower bound: it
		// will still be over budget then, and the next answer says so).
		if _, err := b.db.Exec(testkit.Context(t), `UPDATE accountpool.accounts SET cooldown_until = $2 WHERE id = $1`,
			ids[2], b.clock.Now().Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		wantExhausted(t, c, 10*time.Minute)
		// A leased account that frees first wins.
		if _, err := c.ResetAccount(testkit.Context(t), &apv1.ResetAccountRequest{Id: ids[2]}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.Exec(testkit.Context(t), `DELETE FROM accountpool.usage_log WHERE account_id = $1`, ids[2]); err != nil {
			t.Fatal(err)
		}
		resp, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", LeaseTtl: durationpb.New(time.Minute)})
		if err != nil || resp.GetLease().GetAccountId() != ids[2] {
			t.Fatalf("acquire of the account with a fresh budget: %v %v", resp, err)
		}
		wantExhausted(t, c, time.Minute+domain.ExpiryGrace)
	})

	t.Run("UsageLogSaysWhetherTheCheckLoggedIn", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, budget(20))
		ids := addAccounts(t, c, 1)
		login(t, c, &apv1.ReleaseRequest{SessionState: []byte(cookie)})
		b.clock.Advance(time.Minute)
		release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_SUCCESS)
		u := usage(t, c, ids[0]) // newest first
		if len(u) != 2 || u[0].GetLoggedIn() || !u[1].GetLoggedIn() {
			t.Fatalf("usage log: %v", u)
		}
	})
}
