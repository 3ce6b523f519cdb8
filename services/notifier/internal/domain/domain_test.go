package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

func TestRetry(t *testing.T) {
	t.Parallel()
	r := domain.Retry{MaxAttempts: 5, Base: time.Second, Max: 10 * time.Second, MaxRetryAfter: time.Minute}
	t.Run("BackoffDoublesWithJitterInItsUpperHalf", func(t *testing.T) {
		t.Parallel()
		for attempt, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 30: 10 * time.Second} {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := r.Backoff(attempt)
				if d < full/2 || d > full {
					t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, full/2, full)
				}
				seen[d] = true
			}
			if len(seen) < 10 {
				t.Errorf("attempt %d: %d distinct waits in 200: no jitter", attempt, len(seen))
			}
		}
	})
	temp := errors.New("503")
	now := time.Date(2027, 1, 12, 9, 30, 0, 0, time.UTC)
	r.MaxDefer = 10 * time.Minute
	tests := []struct {
		name     string
		attempts int
		age      time.Duration // since the delivery was recorded
		err      error
		want     domain.Outcome // Wait exact, when not a backoff
	}{
		{"PermanentIsDeadAtOnce", 1, 0, channel.Permanent(temp), domain.Outcome{Dead: true}},
		{"LastAttemptIsDead", 5, 0, temp, domain.Outcome{Dead: true}},
		{"RetryAfterIsHonoured", 1, 0, channel.RetryAfter(42*time.Second, temp), domain.Outcome{Wait: 42 * time.Second}},
		{"RetryAfterIsCapped", 1, 0, channel.RetryAfter(time.Hour, temp), domain.Outcome{Wait: time.Minute}},
		{"RetryAfterOnTheLastAttemptIsDead", 5, 0, channel.RetryAfter(time.Second, temp), domain.Outcome{Dead: true}},
		{"DeferralCountsNoAttempt", 1, time.Minute, channel.Deferred(3*time.Second, temp), domain.Outcome{Wait: 3 * time.Second, Deferred: true}},
		{"DeferralOnTheLastAttemptIsNotDead", 5, time.Minute, channel.Deferred(3*time.Second, temp), domain.Outcome{Wait: 3 * time.Second, Deferred: true}},
		{"DeferralIsCapped", 5, time.Minute, channel.Deferred(time.Hour, temp), domain.Outcome{Wait: time.Minute, Deferred: true}},
		{"DeferralPastMaxDeferIsAnAttempt", 2, 10 * time.Minute, channel.Deferred(3*time.Second, temp), domain.Outcome{Wait: 3 * time.Second}},
		{"DeferralPastMaxDeferOnTheLastAttemptIsDead", 5, 11 * time.Minute, channel.Deferred(3*time.Second, temp), domain.Outcome{Dead: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := domain.Delivery{Attempts: tt.attempts, CreatedAt: now.Add(-tt.age)}
			if got := r.Outcome(d, tt.err, now); got != tt.want {
				t.Errorf("Outcome = %+v; want %+v", got, tt.want)
			}
		})
	}
	t.Run("ABackoffWithoutAWaitOfTheReceiver", func(t *testing.T) {
		t.Parallel()
		got := r.Outcome(domain.Delivery{Attempts: 3, CreatedAt: now}, temp, now)
		if got.Dead || got.Deferred || got.Wait < 2*time.Second || got.Wait > 4*time.Second {
			t.Errorf("Outcome = %+v; want pending after the third backoff (2-4s)", got)
		}
	})
}

func TestEventTypes(t *testing.T) {
	t.Parallel()
	var v apirule.FieldErrors
	if got := domain.EventTypes(&v, "event_types", nil); len(got) != 1 || got[0] != domain.SlotFound || v.Len() != 0 {
		t.Errorf("empty: %v %v", got, v)
	}
	v = nil
	domain.EventTypes(&v, "event_types", []domain.EventType{domain.Cancelled})
	if v.Len() != 1 {
		t.Errorf("without SLOT_FOUND: %v", v)
	}
}

// TestTelegramChat: what validation accepts as a Telegram address is what
// the channel can send to: a non-zero int64 chat id or an @channel.
func TestTelegramChat(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want any
	}{
		{"123456789", int64(123456789)}, {"-1001234567890", int64(-1001234567890)},
		{"9223372036854775807", int64(9223372036854775807)}, {"@slotwatch", "@slotwatch"},
		{"0", nil}, {"-0", nil}, {"9223372036854775808", nil}, {"-99999999999999999999", nil}, {"+42", nil},
		{"@abc", nil}, {"ada lovelace", nil}, {"", nil},
	} {
		chat, ok := domain.TelegramChat(tt.in)
		if chat != tt.want || ok != (tt.want != nil) {
			t.Errorf("TelegramChat(%q) = %v, %v; want %v", tt.in, chat, ok, tt.want)
		}
		var v apirule.FieldErrors
		domain.Address(&v, "address", channel.Telegram, tt.in)
		if (v.Len() == 0) != ok {
			t.Errorf("Address(%q): violations %v; want them exactly when TelegramChat refuses it", tt.in, v)
		}
	}
}
