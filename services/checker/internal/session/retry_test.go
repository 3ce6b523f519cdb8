package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sethvargo/go-retry"
)

// unavailable is a call that fails as an unreachable service does, counting
// its tries and running then (if set) after each.
type unavailable struct {
	tries int
	then  func()
	err   error
}

func (u *unavailable) call(context.Context) error {
	u.tries++
	if u.then != nil {
		u.then()
	}
	if u.err != nil {
		return u.err
	}
	return ErrUnavailable
}

func TestRetryUnavailableStopsAtOnceWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	u := &unavailable{then: func() { cancel(errCut) }}
	done := make(chan error, 1)
	// An hour between tries: only the cancel can end the wait.
	go func() { done <- retryUnavailable(ctx, retry.NewConstant(time.Hour), u.call) }()
	select {
	case err := <-done:
		if !errors.Is(err, errCut) {
			t.Errorf("err = %v, want the cancel's cause", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("retry still waits after its context was cancelled")
	}
	if u.tries != 1 {
		t.Errorf("%d tries, want 1", u.tries)
	}
}

func TestRetryUnavailableTriesOnceAfterTheCut(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errCut)
	u := &unavailable{}
	if err := retryUnavailable(ctx, retry.NewConstant(time.Hour), u.call); !errors.Is(err, ErrUnavailable) || u.tries != 1 {
		t.Errorf("after the cut: %d tries, err %v; want 1 try, its own error", u.tries, err)
	}
}

func TestRetryUnavailableRetriesOnlyUnavailable(t *testing.T) {
	t.Parallel()
	tiny := func() retry.Backoff { return retry.WithMaxRetries(2, retry.NewConstant(time.Microsecond)) }
	u := &unavailable{}
	if err := retryUnavailable(context.Background(), tiny(), u.call); !errors.Is(err, ErrUnavailable) || u.tries != 3 {
		t.Errorf("unavailable: %d tries, err %v; want 3 tries, ErrUnavailable", u.tries, err)
	}
	lost := &unavailable{err: ErrLeaseLost}
	if err := retryUnavailable(context.Background(), tiny(), lost.call); !errors.Is(err, ErrLeaseLost) || lost.tries != 1 {
		t.Errorf("lease lost: %d tries, err %v; want 1 try, ErrLeaseLost", lost.tries, err)
	}
}
