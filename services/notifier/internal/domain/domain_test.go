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
	tests := []struct {
		name     string
		attempts int
		err      error
		dead     bool
		wait     time.Duration // exact, when not a backoff
	}{
		{"PermanentIsDeadAtOnce", 1, channel.Permanent(temp), true, 0},
		{"LastAttemptIsDead", 5, temp, true, 0},
		{"RetryAfterIsHonoured", 1, channel.RetryAfter(42*time.Second, temp), false, 42 * time.Second},
		{"RetryAfterIsCapped", 1, channel.RetryAfter(time.Hour, temp), false, time.Minute},
		{"RetryAfterOnTheLastAttemptIsDead", 5, channel.RetryAfter(time.Second, temp), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dead, wait := r.Outcome(tt.attempts, tt.err)
			if dead != tt.dead || wait != tt.wait {
				t.Errorf("Outcome = %v, %v; want %v, %v", dead, wait, tt.dead, tt.wait)
			}
		})
	}
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
