package reconnect

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sethvargo/go-retry"
)

func TestWaitsDoubleUpToTheCapAndStartOverAfterAHealthyRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Run's own series with the durations scaled down 100,000 times, so
	// that the test waits microseconds.
	fresh := func() retry.Backoff {
		return retry.WithCappedDuration(MaxWait/100_000, retry.NewExponential(FirstWait/100_000))
	}
	healthy := map[int]bool{4: true}
	runs := 0
	var waits []time.Duration
	runWith(ctx, fresh, func(context.Context) (bool, error) {
		runs++
		return healthy[runs], errors.New("dropped")
	}, func(err error, wait time.Duration) {
		if err == nil || err.Error() != "dropped" {
			t.Errorf("dropped told %v", err)
		}
		waits = append(waits, wait*100_000)
		if len(waits) == 12 {
			cancel()
		}
	})
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, MaxWait, MaxWait}
	if !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
}

func TestCancelEndsAWaitAtOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		// An hour between tries: only the cancel can end the wait.
		runWith(ctx, func() retry.Backoff { return retry.NewConstant(time.Hour) },
			func(context.Context) (bool, error) { runs++; return false, errors.New("down") },
			func(error, time.Duration) { cancel() })
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run still waits after its context was cancelled")
	}
	if runs != 1 {
		t.Errorf("%d runs, want 1", runs)
	}
}

func TestARunThatEndsWithTheContextIsNotADrop(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	Run(ctx, func(ctx context.Context) (bool, error) {
		cancel()
		return true, ctx.Err()
	}, func(err error, _ time.Duration) { t.Errorf("dropped(%v) on shutdown", err) })
}
