package demo

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
)

func TestView(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	setup := func(t *testing.T, elapsed time.Duration) (*View, *strings.Builder) {
		t.Helper()
		var b strings.Builder
		now := func() time.Time { return start.Add(elapsed) }
		return NewView(&b, start, now, map[string]string{"fra": "France", "bel": "Belgium"}), &b
	}

	for _, tc := range []struct {
		name    string
		elapsed time.Duration
		write   func(v *View)
		want    string
	}{
		{
			name:    "CheckLine",
			elapsed: 5 * time.Second,
			write: func(v *View) {
				v.Check(Event{Session: "3", Mission: "fra", AccountEmail: "acc3@demo.test", Outcome: "no_slot", Duration: 1240 * time.Millisecond})
			},
			want: "00:05  session 3   fra  acc3@demo.test  no_slot    0 slots             1.2s\n",
		},
		{
			name:    "SuccessShowsWhatMatched",
			elapsed: 63 * time.Second,
			write: func(v *View) {
				v.Check(Event{Session: "12", Mission: "fra", AccountEmail: "acc1@demo.test", Outcome: "success", Slots: 1, Matched: 1, Duration: 900 * time.Millisecond})
			},
			want: "01:03  session 12  fra  acc1@demo.test  success    1 slot (1 matched)  0.9s\n",
		},
		{
			name:    "FailureShowsItsDetailOnOneLine",
			elapsed: 5 * time.Second,
			write: func(v *View) {
				v.Check(Event{Session: "2", Mission: "bel", AccountID: 4, Outcome: "login_fail", Duration: 2 * time.Second, Detail: "the portal said:\n  bad credentials"})
			},
			want: "00:05  session 2   bel  account 4       login_fail 0 slots             2.0s  the portal said: bad credentials\n",
		},
		{
			name:    "WaitingNamesTheAccountThatFreesFirst",
			elapsed: 13 * time.Second,
			write: func(v *View) {
				v.Waiting(Event{Session: "4", Mission: "fra", RetryAfter: 6200 * time.Millisecond}, Freeing{Email: "acc1@demo.test", Rest: "cooldown"})
			},
			want: "00:13  session 4   fra  no account free: the Checker waits 7s, until acc1@demo.test's cooldown ends\n",
		},
		{
			name:    "WaitingWithoutKnowingWhichAccount",
			elapsed: 13 * time.Second,
			write: func(v *View) {
				v.Waiting(Event{Session: "4", Mission: "bel", RetryAfter: 90 * time.Second}, Freeing{})
			},
			want: "00:13  session 4   bel  no account free: the Checker waits 1m30s, until an account is free again\n",
		},
		{
			name:    "NotChecked",
			elapsed: 40 * time.Second,
			write: func(v *View) {
				v.NotChecked(Event{Session: "12", Mission: "bel", Outcome: "no_account", Detail: "no account free before the claim's deadline"})
			},
			want: "00:40  session 12  bel  not checked (no_account): no account free before the claim's deadline\n",
		},
		{
			name: "PoolAllCoolingDown",
			write: func(v *View) {
				v.Pool(PoolCounts{Cooldown: 6, NextFree: 13400 * time.Millisecond})
			},
			want: "       pool: 0 available, 6 cooling down, next free in 14s\n",
		},
		{
			name: "PoolShowsOnlyTheStatesThatHaveAccounts",
			write: func(v *View) {
				v.Pool(PoolCounts{Available: 3, Leased: 1, Cooldown: 1, Quarantined: 1, NextFree: time.Minute})
			},
			want: "       pool: 3 available, 1 leased, 1 cooling down, 1 quarantined\n",
		},
		{
			name:    "Found",
			elapsed: 75 * time.Second,
			write: func(v *View) {
				v.Found(Found{Applicant: "Amélie Laurent", Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2026-03-22", Time: "09:30"})
			},
			want: "01:15  FOUND  Amélie Laurent: France (fra), London, tourism, 2026-03-22 09:30\n",
		},
		{
			name:    "FoundByEmail",
			elapsed: 75 * time.Second,
			write: func(v *View) {
				v.Found(Found{Applicant: "Amélie Laurent", Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2026-03-22", Time: "09:30",
					To: "amelie.laurent@example.com", Subject: "Slot found: fra London, 2026-03-22 09:30", Latency: 412345 * time.Microsecond, File: ".data/mail/001.eml"})
			},
			want: "01:15  FOUND  Amélie Laurent: France (fra), London, tourism, 2026-03-22 09:30\n" +
				`              email to amelie.laurent@example.com 412ms after the check: "Slot found: fra London, 2026-03-22 09:30" (.data/mail/001.eml)` + "\n",
		},
		{
			name:    "Webhook",
			elapsed: 75 * time.Second,
			write: func(v *View) {
				at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
				v.Hook(Hook{Received: at.Add(38 * time.Millisecond), OccurredAt: at, Type: "slot_found", Key: "slotwatch-5-0190"})
			},
			want: "01:15  webhook  slot_found to the operator, signature verified, 38ms after the check (Idempotency-Key slotwatch-5-0190)\n",
		},
		{
			name: "FoundInAMissionWithoutAName",
			write: func(v *View) {
				v.Found(Found{Applicant: "X", Mission: "nld", Centre: "Leeds", VisaCategory: "study", Date: "2026-03-22"})
			},
			want: "00:00  FOUND  X: nld, Leeds, study, 2026-03-22\n",
		},
		{
			name:    "Problem",
			elapsed: 2 * time.Second,
			write:   func(v *View) { v.Problem(Event{Message: "browser start: no chromium"}) },
			want:    "00:02  checker error: browser start: no chromium\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, b := setup(t, tc.elapsed)
			tc.write(v)
			if b.String() != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
}

func TestNextFreeing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	accounts := []*apv1.Account{
		{Email: "acc1@demo.test", State: apv1.AccountState_ACCOUNT_STATE_COOLDOWN, CooldownUntil: ts(14 * time.Second)},
		{Email: "acc2@demo.test", State: apv1.AccountState_ACCOUNT_STATE_QUARANTINED, QuarantineUntil: ts(5 * time.Second)},
		{Email: "acc3@demo.test", State: apv1.AccountState_ACCOUNT_STATE_LEASED},
		// A cooldown that has passed: the account is free, whatever its
		// state says.
		{Email: "acc4@demo.test", State: apv1.AccountState_ACCOUNT_STATE_COOLDOWN, CooldownUntil: ts(-time.Second)},
	}

	t.Run("TheEarliestRestEnds", func(t *testing.T) {
		t.Parallel()
		if got, want := NextFreeing(accounts, now), (Freeing{Email: "acc2@demo.test", Rest: "quarantine"}); got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
	t.Run("NoneRests", func(t *testing.T) {
		t.Parallel()
		if got := NextFreeing(accounts[2:], now); got != (Freeing{}) {
			t.Fatalf("got %+v, want none", got)
		}
	})
}
