package domain_test

import (
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time { t := t0.Add(d); return &t }

func TestApplyOutcome(t *testing.T) {
	t.Parallel()
	cfg := domain.DefaultConfig()
	leased := domain.Account{ID: 1, Active: true, LeaseID: "l", LeasedBy: "c", LeaseExpiresAt: at(time.Minute)}

	tests := []struct {
		name         string
		failures     int
		outcome      domain.Outcome
		wantFailures int
		wantState    domain.State
		wantFreeAt   time.Time
	}{
		{"SuccessResetsFailuresAndCoolsDown", 2, domain.OutcomeSuccess, 0, domain.StateCooldown, t0.Add(10 * time.Minute)},
		{"NoSlotResetsFailuresAndCoolsDown", 2, domain.OutcomeNoSlot, 0, domain.StateCooldown, t0.Add(10 * time.Minute)},
		{"LoginFailBelowMaxCoolsDown", 1, domain.OutcomeLoginFail, 2, domain.StateCooldown, t0.Add(10 * time.Minute)},
		{"LoginFailAtMaxQuarantines", 2, domain.OutcomeLoginFail, 3, domain.StateQuarantined, t0.Add(30 * time.Minute)},
		{"ErrorBelowMaxCoolsDown", 0, domain.OutcomeError, 1, domain.StateCooldown, t0.Add(10 * time.Minute)},
		{"ErrorAtMaxQuarantines", 2, domain.OutcomeError, 3, domain.StateQuarantined, t0.Add(30 * time.Minute)},
		{"BannedQuarantinesLongerAtOnce", 0, domain.OutcomeBanned, 1, domain.StateQuarantined, t0.Add(60 * time.Minute)},
		{"LeaseExpiredCountsAFailureAndCoolsDown", 0, domain.OutcomeLeaseExpired, 1, domain.StateCooldown, t0.Add(10 * time.Minute)},
		{"AbortedAtMaxMinusOneLeavesFailuresAndCoolsDown", 2, domain.OutcomeAborted, 2, domain.StateCooldown, t0.Add(10 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := leased
			a.ConsecutiveFailures = tt.failures
			got := cfg.ApplyOutcome(a, tt.outcome, t0)
			if got.LeaseID != "" || got.LeasedBy != "" || got.LeaseExpiresAt != nil {
				t.Fatalf("lease not cleared: %+v", got)
			}
			if got.ConsecutiveFailures != tt.wantFailures {
				t.Errorf("failures = %d, want %d", got.ConsecutiveFailures, tt.wantFailures)
			}
			if s := got.State(t0); s != tt.wantState {
				t.Errorf("state = %s, want %s", s, tt.wantState)
			}
			if s := got.State(tt.wantFreeAt.Add(-time.Microsecond)); s != tt.wantState {
				t.Errorf("state just before %s = %s, want %s", tt.wantFreeAt, s, tt.wantState)
			}
			if s := got.State(tt.wantFreeAt); s != domain.StateAvailable {
				t.Errorf("state when its time has passed = %s, want available", s)
			}
		})
	}
}

func TestStatePrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a    domain.Account
		want domain.State
	}{
		{"NeverUsedIsAvailable", domain.Account{Active: true}, domain.StateAvailable},
		{"InactiveIsDisabledWhateverElse", domain.Account{Active: false, LeaseID: "l", QuarantineUntil: at(time.Hour)}, domain.StateDisabled},
		{"LeaseWinsOverQuarantine", domain.Account{Active: true, LeaseID: "l", LeaseExpiresAt: at(time.Minute), QuarantineUntil: at(time.Hour)}, domain.StateLeased},
		{"QuarantineWinsOverCooldown", domain.Account{Active: true, CooldownUntil: at(time.Hour), QuarantineUntil: at(time.Minute)}, domain.StateQuarantined},
		{"PastCooldownIsAvailable", domain.Account{Active: true, CooldownUntil: at(-time.Second)}, domain.StateAvailable},
		{"CooldownEndingNowIsAvailable", domain.Account{Active: true, CooldownUntil: at(0)}, domain.StateAvailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.a.State(t0); got != tt.want {
				t.Fatalf("State = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSessionRules(t *testing.T) {
	t.Parallel()
	cfg := domain.Config{SessionMaxAge: 12 * time.Hour}
	for _, tc := range []struct {
		maxAge time.Duration
		want   time.Time
	}{
		{0, t0.Add(12 * time.Hour)},
		{time.Hour, t0.Add(time.Hour)},
		{12 * time.Hour, t0.Add(12 * time.Hour)},
		{48 * time.Hour, t0.Add(12 * time.Hour)},
	} {
		if got := cfg.SessionExpiry(t0, tc.maxAge); !got.Equal(tc.want) {
			t.Errorf("SessionExpiry(max age %s) = %v, want %v", tc.maxAge, got, tc.want)
		}
	}
	for o, want := range map[domain.Outcome]bool{
		domain.OutcomeSuccess: false, domain.OutcomeNoSlot: false, domain.OutcomeError: false,
		domain.OutcomeLeaseExpired: false, domain.OutcomeAborted: false, domain.OutcomeLoginFail: true, domain.OutcomeBanned: true,
	} {
		if got := domain.ClearsSession(o); got != want {
			t.Errorf("ClearsSession(%s) = %v, want %v", o, got, want)
		}
	}
}
