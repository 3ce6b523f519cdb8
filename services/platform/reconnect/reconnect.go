// Package reconnect keeps a long-lived connection up (the Postgres LISTEN
// connections of AccountPool and Requests): when it drops it is opened
// again after a wait that doubles from FirstWait to MaxWait, and starts
// over once a connection was healthy. The waiting is
// github.com/sethvargo/go-retry's, so it ends the moment ctx does.
package reconnect

import (
	"context"
	"errors"
	"time"

	"github.com/sethvargo/go-retry"
)

const (
	// FirstWait is the wait after a first drop, and after a healthy run.
	FirstWait = 100 * time.Millisecond
	// MaxWait caps the doubling.
	MaxWait = 10 * time.Second
)

// Run calls run until ctx ends. run holds the connection and returns when
// it drops, saying whether it was healthy first (what healthy means is
// run's to say: it got as far as listening, it stayed up a while); then
// the waits start over from FirstWait. dropped is told each drop and the
// wait before the next try.
func Run(ctx context.Context, run func(ctx context.Context) (healthy bool, err error), dropped func(err error, wait time.Duration)) {
	runWith(ctx, func() retry.Backoff { return retry.WithCappedDuration(MaxWait, retry.NewExponential(FirstWait)) }, run, dropped)
}

// errClosed stands for a run that ended without an error while ctx had
// not: it is a drop like any other.
var errClosed = errors.New("connection closed")

// runWith is Run with the waits of each series from fresh.
func runWith(ctx context.Context, fresh func() retry.Backoff, run func(ctx context.Context) (bool, error), dropped func(error, time.Duration)) {
	waits := fresh()
	var last error
	backoff := retry.BackoffFunc(func() (time.Duration, bool) {
		d, _ := waits.Next()
		dropped(last, d)
		return d, false // never give up: only ctx ends it
	})
	_ = retry.Do(ctx, backoff, func(ctx context.Context) error {
		healthy, err := run(ctx)
		if ctx.Err() != nil {
			return ctx.Err() // not retryable: Do returns
		}
		if healthy {
			waits = fresh()
		}
		if err == nil {
			err = errClosed
		}
		last = err
		return retry.RetryableError(err)
	})
}
