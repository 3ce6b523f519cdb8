package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func getAccount(t *testing.T, c apv1.AccountPoolServiceClient, id int64) *apv1.Account {
	t.Helper()
	resp, err := c.GetAccount(testkit.Context(t), &apv1.GetAccountRequest{Id: id})
	if err != nil {
		t.Fatalf("get account %d: %v", id, err)
	}
	return resp.GetAccount()
}

func usage(t *testing.T, c apv1.AccountPoolServiceClient, accountID int64) []*apv1.UsageRecord {
	t.Helper()
	resp, err := c.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{AccountId: accountID, PageSize: 1000})
	if err != nil {
		t.Fatalf("list usage: %v", err)
	}
	return resp.GetRecords()
}

func TestReleaseOutcomes(t *testing.T) {
	t.Parallel()

	t.Run("SuccessAndNoSlotResetFailuresAndCoolDown", func(t *testing.T) {
		t.Parallel()
		for _, o := range []apv1.Outcome{apv1.Outcome_OUTCOME_SUCCESS, apv1.Outcome_OUTCOME_NO_SLOT} {
			c, b := setup(t)
			id := addAccounts(t, c, 1)[0]
			release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_LOGIN_FAIL)
			b.clock.Advance(11 * time.Minute)
			a := release(t, c, acquire(t, c, "fra"), o)
			if a.GetConsecutiveFailures() != 0 || a.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN ||
				!a.GetCooldownUntil().AsTime().Equal(b.clock.Now().Add(10*time.Minute)) {
				t.Fatalf("%v: account after release %v", o, a)
			}
			if got := getAccount(t, c, id); got.GetConsecutiveFailures() != 0 {
				t.Fatalf("%v: stored failures %d", o, got.GetConsecutiveFailures())
			}
		}
	})

	// A check called off before its first request to the portal (Requests
	// found the portal paused) leaves the account as it was: available at
	// once, its failures and session state untouched, the lease logged as
	// unused.
	t.Run("UnusedLeavesTheAccountAsItWas", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		id := addAccounts(t, c, 1)[0]
		release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_ERROR) // one failure, a cooldown
		b.clock.Advance(11 * time.Minute)
		a := release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_UNUSED)
		if a.GetState() != apv1.AccountState_ACCOUNT_STATE_AVAILABLE || a.GetConsecutiveFailures() != 1 {
			t.Fatalf("account after an unused lease: %v", a)
		}
		if u := usage(t, c, id); u[0].GetResult() != apv1.UsageResult_USAGE_RESULT_UNUSED {
			t.Fatalf("usage log's newest result: %v", u[0].GetResult())
		}
		acquire(t, c, "fra") // available again at once
	})

	t.Run("UnusedTakesNoLoginNorSessionState", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		addAccounts(t, c, 1)
		l := acquire(t, c, "fra")
		_, err := c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(),
			Outcome: apv1.Outcome_OUTCOME_UNUSED, LoggedIn: true, SessionState: []byte("cookies")})
		wantViolation(t, err, "logged_in")
		wantViolation(t, err, "session_state")
	})

	// A check slotwatch cut short itself (the Checker's drain, the claim's
	// deadline, a browser that died) says nothing about the account: its
	// failures stay as they were, even at POOL_MAX_FAILURES - 1, but it
	// may have reached the portal, so it rests its cooldown, its login
	// counts against its budget, and the session it kept is stored.
	t.Run("AbortedLeavesTheFailuresRestsTheCooldownAndCountsTheLogin", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		id := addAccounts(t, c, 1)[0]
		for range 2 { // two failures: a third would quarantine the account
			release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_ERROR)
			b.clock.Advance(11 * time.Minute)
		}
		l := acquire(t, c, "fra")
		budget := l.GetLoginBudgetLeft()
		a := releaseSession(t, c, l, apv1.Outcome_OUTCOME_ABORTED,
			&apv1.ReleaseRequest{LoggedIn: true, SessionState: []byte("cookies"), Detail: "the checker stopped before the check finished"}).GetAccount()
		if a.GetConsecutiveFailures() != 2 || a.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN ||
			!a.GetCooldownUntil().AsTime().Equal(b.clock.Now().Add(10*time.Minute)) || a.GetQuarantineUntil() != nil {
			t.Fatalf("account after an aborted check: %v", a)
		}
		if u := usage(t, c, id); u[0].GetResult() != apv1.UsageResult_USAGE_RESULT_ABORTED || !u[0].GetLoggedIn() {
			t.Fatalf("usage log's newest row: %v", u[0])
		}
		b.clock.Advance(10*time.Minute - time.Second)
		wantExhausted(t, c, time.Second)
		b.clock.Advance(time.Second)
		next := acquire(t, c, "fra")
		if next.GetLoginBudgetLeft() != budget-1 || string(next.GetSessionState()) != "cookies" {
			t.Fatalf("next lease: %d logins left (want %d), session %q", next.GetLoginBudgetLeft(), budget-1, next.GetSessionState())
		}
		// Aborted again and again, it never reaches quarantine.
		release(t, c, next, apv1.Outcome_OUTCOME_ABORTED)
		if got := getAccount(t, c, id); got.GetConsecutiveFailures() != 2 || got.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN {
			t.Fatalf("account after a second aborted check: %v", got)
		}
		b.clock.Advance(time.Second) // the window ends before now
		stats, err := c.GetUsageStats(testkit.Context(t), &apv1.GetUsageStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if s := stats.GetStats(); len(s) != 1 || s[0].GetUses() != 4 || s[0].GetErrors() != 2 || s[0].GetAborted() != 2 || s[0].GetLogins() != 1 {
			t.Fatalf("usage stats: %v; want 4 uses, 2 errors, 2 aborted, 1 login", s)
		}
	})

	// The portal's Retry-After outranks a shorter cooldown, never a longer
	// rest: the account is not used again before the portal said.
	t.Run("RetryAfterRestsTheAccountAtLeastThatLong", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		addAccounts(t, c, 1)
		for _, tc := range []struct {
			outcome    apv1.Outcome
			retryAfter time.Duration
			wantRest   time.Duration
		}{
			{apv1.Outcome_OUTCOME_NO_SLOT, 45 * time.Minute, 45 * time.Minute}, // longer than the 10m cooldown
			{apv1.Outcome_OUTCOME_NO_SLOT, time.Minute, 10 * time.Minute},      // shorter: the cooldown stands
			{apv1.Outcome_OUTCOME_BANNED, 5 * time.Minute, 60 * time.Minute},   // the ban's quarantine is longer
		} {
			l := acquire(t, c, "fra")
			a, err := c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(),
				Outcome: tc.outcome, RetryAfter: durationpb.New(tc.retryAfter)})
			if err != nil {
				t.Fatal(err)
			}
			until := a.GetAccount().GetCooldownUntil()
			if q := a.GetAccount().GetQuarantineUntil(); q != nil && (until == nil || q.AsTime().After(until.AsTime())) {
				until = q
			}
			if want := b.clock.Now().Add(tc.wantRest); !until.AsTime().Equal(want) {
				t.Errorf("%v with Retry-After %s: rests until %s, want %s", tc.outcome, tc.retryAfter, until.AsTime(), want)
			}
			b.clock.Advance(2 * time.Hour)
			if _, err := c.ResetAccount(testkit.Context(t), &apv1.ResetAccountRequest{Id: a.GetAccount().GetId()}); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("QuarantinesAfterThirdLoginFailure", func(t *testing.T) {
		t.Parallel()
		for _, o := range []apv1.Outcome{apv1.Outcome_OUTCOME_LOGIN_FAIL, apv1.Outcome_OUTCOME_ERROR} {
			c, b := setup(t)
			addAccounts(t, c, 1)
			for i := 1; i <= 2; i++ {
				a := release(t, c, acquire(t, c, "fra"), o)
				if a.GetConsecutiveFailures() != int32(i) || a.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN {
					t.Fatalf("%v #%d: %v", o, i, a)
				}
				b.clock.Advance(10 * time.Minute)
			}
			a := release(t, c, acquire(t, c, "fra"), o)
			if a.GetConsecutiveFailures() != 3 || a.GetState() != apv1.AccountState_ACCOUNT_STATE_QUARANTINED ||
				!a.GetQuarantineUntil().AsTime().Equal(b.clock.Now().Add(30*time.Minute)) {
				t.Fatalf("%v #3: %v", o, a)
			}
		}
	})

	t.Run("BanQuarantinesForTheBanPeriod", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		addAccounts(t, c, 1)
		a := release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_BANNED)
		if a.GetConsecutiveFailures() != 1 || a.GetState() != apv1.AccountState_ACCOUNT_STATE_QUARANTINED ||
			!a.GetQuarantineUntil().AsTime().Equal(b.clock.Now().Add(60*time.Minute)) {
			t.Fatalf("after ban: %v", a)
		}
		b.clock.Advance(59 * time.Minute)
		_, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
		testkit.WantCode(t, err, codes.ResourceExhausted)
		if d, _ := apierr.RetryDelay(err); d != time.Minute {
			t.Fatalf("retry delay %s, want 1m", d)
		}
		b.clock.Advance(time.Minute)
		acquire(t, c, "fra")
	})

	t.Run("ExpiredLeaseCountsAFailureAndIsLogged", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		id := addAccounts(t, c, 1)[0]
		l := acquire(t, c, "fra")
		b.clock.Advance(6 * time.Minute) // past the default 5m lease
		if n, err := b.pool.ExpireLeases(context.Background()); err != nil || n != 1 {
			t.Fatalf("ExpireLeases = %d, %v", n, err)
		}
		a := getAccount(t, c, id)
		wantCooldownEnd := l.GetExpiresAt().AsTime().Add(10 * time.Minute)
		if a.GetConsecutiveFailures() != 1 || a.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN ||
			!a.GetCooldownUntil().AsTime().Equal(wantCooldownEnd) || a.GetLeasedBy() != "" {
			t.Fatalf("after expiry: %v", a)
		}
		u := usage(t, c, id)
		if len(u) != 1 || u[0].GetResult() != apv1.UsageResult_USAGE_RESULT_LEASE_EXPIRED ||
			!u[0].GetReleasedAt().AsTime().Equal(l.GetExpiresAt().AsTime()) {
			t.Fatalf("usage after expiry: %v", u)
		}
		// A second pass finds nothing left to expire.
		if n, _ := b.pool.ExpireLeases(context.Background()); n != 0 {
			t.Fatalf("expired %d leases twice", n)
		}
	})
}

func TestLeases(t *testing.T) {
	t.Parallel()

	t.Run("LateReleaseAfterExpiryAndReleaseChangesNothing", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		id := addAccounts(t, c, 1)[0]
		first := acquire(t, c, "fra")
		b.clock.Advance(16 * time.Minute) // lease (5m) then cooldown (10m) over
		second := acquire(t, c, "bel")    // expires the first lease on the way
		if second.GetAccountId() != id || second.GetFencingToken() <= first.GetFencingToken() {
			t.Fatalf("re-lease: %v after %v", second, first)
		}
		before := getAccount(t, c, id)
		usageBefore := usage(t, c, id)

		_, err := c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: first.GetLeaseId(), FencingToken: first.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_SUCCESS})
		testkit.WantCode(t, err, codes.FailedPrecondition)
		// The old token against the new lease is refused too.
		_, err = c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: second.GetLeaseId(), FencingToken: first.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_SUCCESS})
		testkit.WantCode(t, err, codes.FailedPrecondition)
		_, err = c.Renew(testkit.Context(t), &apv1.RenewRequest{LeaseId: second.GetLeaseId(), FencingToken: first.GetFencingToken()})
		testkit.WantCode(t, err, codes.FailedPrecondition)

		if after := getAccount(t, c, id); !proto.Equal(before, after) {
			t.Fatalf("late release changed the account:\nbefore %v\nafter  %v", before, after)
		}
		if after := usage(t, c, id); !equalUsage(usageBefore, after) {
			t.Fatalf("late release changed the usage log:\nbefore %v\nafter  %v", usageBefore, after)
		}
		// The current holder is unaffected.
		release(t, c, second, apv1.Outcome_OUTCOME_NO_SLOT)
	})

	t.Run("RenewExtendsALeaseThatThenOutlivesItsFirstEnd", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		addAccounts(t, c, 1)
		l := acquire(t, c, "fra")
		b.clock.Advance(4 * time.Minute)
		resp, err := c.Renew(testkit.Context(t), &apv1.RenewRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), ExtendBy: durationpb.New(3 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if want := b.clock.Now().Add(3 * time.Minute); !resp.GetExpiresAt().AsTime().Equal(want) {
			t.Fatalf("renewed until %s, want %s", resp.GetExpiresAt().AsTime(), want)
		}
		b.clock.Advance(2 * time.Minute) // past the first end, inside the renewal
		if n, _ := b.pool.ExpireLeases(context.Background()); n != 0 {
			t.Fatal("a renewed lease expired at its first end")
		}
		release(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT)
	})

	t.Run("RenewOfAnExpiredLeaseFails", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		addAccounts(t, c, 1)
		l := acquire(t, c, "fra")
		b.clock.Advance(5 * time.Minute)
		_, err := c.Renew(testkit.Context(t), &apv1.RenewRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken()})
		testkit.WantCode(t, err, codes.FailedPrecondition)
	})

	t.Run("RetriedReleaseWithSameOutcomeAnswersTheSameAndLogsOnce", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		id := addAccounts(t, c, 1)[0]
		l := acquire(t, c, "fra")
		first := release(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT)
		b.clock.Advance(time.Minute)
		second := release(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT)
		if !proto.Equal(first, second) {
			t.Fatalf("retry answered differently:\nfirst  %v\nsecond %v", first, second)
		}
		if u := usage(t, c, id); len(u) != 1 || u[0].GetResult() != apv1.UsageResult_USAGE_RESULT_NO_SLOT {
			t.Fatalf("usage log after retried release: %v", u)
		}
		_, err := c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_BANNED})
		testkit.WantCode(t, err, codes.FailedPrecondition)
		if a := getAccount(t, c, id); a.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN || a.GetConsecutiveFailures() != 0 {
			t.Fatalf("release with another outcome changed the account: %v", a)
		}
	})

	t.Run("UnknownLeaseIsNotFound", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		_, err := c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: "6f1c1a4e-8a38-4f55-9d51-8e1c6c7a0a11", FencingToken: 1, Outcome: apv1.Outcome_OUTCOME_SUCCESS})
		testkit.WantCode(t, err, codes.NotFound)
		_, err = c.Renew(testkit.Context(t), &apv1.RenewRequest{LeaseId: "6f1c1a4e-8a38-4f55-9d51-8e1c6c7a0a11", FencingToken: 1})
		testkit.WantCode(t, err, codes.NotFound)
	})

	t.Run("NoActiveAccountIsFailedPrecondition", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		_, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
		testkit.WantCode(t, err, codes.FailedPrecondition)
		id := addAccounts(t, c, 1)[0]
		off := false
		if _, err := c.UpdateAccount(testkit.Context(t), &apv1.UpdateAccountRequest{Id: id, Active: &off}); err != nil {
			t.Fatal(err)
		}
		_, err = c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
		testkit.WantCode(t, err, codes.FailedPrecondition)
	})

	t.Run("LeastRecentlyUsedNeverUsedFirstTiesById", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(func(c *domain.Config) { c.Cooldown = 0 }))
		ids := addAccounts(t, c, 3)
		// Use account 1 then 2, then release them in the other order.
		l1 := acquire(t, c, "fra")
		l2 := acquire(t, c, "fra")
		b.clock.Advance(time.Second)
		release(t, c, l2, apv1.Outcome_OUTCOME_NO_SLOT)
		release(t, c, l1, apv1.Outcome_OUTCOME_NO_SLOT)
		var got []int64
		for range 3 {
			l := acquire(t, c, "fra")
			got = append(got, l.GetAccountId())
			b.clock.Advance(time.Second)
		}
		// 3 was never used; 1 was used (leased) before 2.
		want := []int64{ids[2], ids[0], ids[1]}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("acquire order %v, want %v", got, want)
			}
		}
	})

	t.Run("ResetClearsQuarantineAndFailures", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		id := addAccounts(t, c, 1)[0]
		release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_BANNED)
		resp, err := c.ResetAccount(testkit.Context(t), &apv1.ResetAccountRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		a := resp.GetAccount()
		if a.GetState() != apv1.AccountState_ACCOUNT_STATE_AVAILABLE || a.GetConsecutiveFailures() != 0 || a.GetQuarantineUntil() != nil {
			t.Fatalf("after reset: %v", a)
		}
		acquire(t, c, "fra")
	})
}

func equalUsage(a, b []*apv1.UsageRecord) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
