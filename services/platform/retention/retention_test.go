package retention_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/retention"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// table is rows by age, oldest first, that DeleteFunc deletes from: the
// loop's contract is with that function, whatever statement is behind it.
type table struct {
	mu      sync.Mutex
	rows    []time.Time
	calls   []call
	failOn  int // the call (1-based) that fails; 0: none
	deleted chan int
}

type call struct {
	cutoff time.Time
	limit  int
}

func (tb *table) delete(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	tb.mu.Lock()
	tb.calls = append(tb.calls, call{cutoff, limit})
	if len(tb.calls) == tb.failOn {
		tb.mu.Unlock()
		return 0, errors.New("connection reset")
	}
	n := 0
	for n < len(tb.rows) && n < limit && tb.rows[n].Before(cutoff) {
		n++
	}
	tb.rows = tb.rows[n:]
	tb.mu.Unlock()
	if tb.deleted != nil {
		select {
		case tb.deleted <- n:
		case <-ctx.Done():
		}
	}
	return n, nil
}

func (tb *table) snapshot() ([]time.Time, []call) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]time.Time(nil), tb.rows...), append([]call(nil), tb.calls...)
}

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// aged returns old rows older than keep and young ones younger, oldest first.
func aged(keep time.Duration, old, young int) []time.Time {
	var out []time.Time
	for i := range old {
		out = append(out, now.Add(-keep-time.Duration(old-i)*time.Minute))
	}
	for i := range young {
		out = append(out, now.Add(-keep+time.Duration(i+1)*time.Minute))
	}
	return out
}

func job(tb *table, p retention.Policy) retention.Job {
	return retention.Job{What: "test log", Setting: "TEST_RETENTION", Policy: p, Now: func() time.Time { return now }, Delete: tb.delete}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	const keep = 90 * 24 * time.Hour

	t.Run("DeletesInBatchesUntilOneIsShort", func(t *testing.T) {
		t.Parallel()
		tb := &table{rows: aged(keep, 25, 3)}
		n, err := job(tb, retention.Policy{Keep: keep, Batch: 10, Pause: time.Millisecond}).Prune(testkit.Context(t))
		if err != nil || n != 25 {
			t.Fatalf("Prune = %d, %v; want the 25 old rows", n, err)
		}
		rows, calls := tb.snapshot()
		if len(rows) != 3 {
			t.Errorf("%d rows left; want the 3 young ones", len(rows))
		}
		if len(calls) != 3 {
			t.Fatalf("%d statements; want 3 (10, 10, then 5 < the batch)", len(calls))
		}
		for _, c := range calls {
			if c.limit != 10 || !c.cutoff.Equal(now.Add(-keep)) {
				t.Errorf("statement %+v; want limit 10 and cutoff %s", c, now.Add(-keep))
			}
		}
	})

	t.Run("ZeroBatchTakesTheDefault", func(t *testing.T) {
		t.Parallel()
		tb := &table{rows: aged(keep, 1, 0)}
		if _, err := job(tb, retention.Policy{Keep: keep}).Prune(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		if _, calls := tb.snapshot(); len(calls) != 1 || calls[0].limit != retention.DefaultBatch {
			t.Fatalf("statements %+v; want one of %d rows", calls, retention.DefaultBatch)
		}
	})

	t.Run("KeepZeroDeletesNothing", func(t *testing.T) {
		t.Parallel()
		tb := &table{rows: aged(keep, 5, 0)}
		if n, err := job(tb, retention.Policy{}).Prune(testkit.Context(t)); n != 0 || err != nil {
			t.Fatalf("Prune = %d, %v; want nothing", n, err)
		}
		if _, calls := tb.snapshot(); len(calls) != 0 {
			t.Fatalf("%d statements with retention off; want none", len(calls))
		}
	})

	t.Run("AnErrorEndsTheRunAndCountsTheBatchesBefore", func(t *testing.T) {
		t.Parallel()
		tb := &table{rows: aged(keep, 25, 0), failOn: 2}
		n, err := job(tb, retention.Policy{Keep: keep, Batch: 10, Pause: time.Millisecond}).Prune(testkit.Context(t))
		if err == nil || n != 10 {
			t.Fatalf("Prune = %d, %v; want the first batch's 10 and the error", n, err)
		}
		if _, calls := tb.snapshot(); len(calls) != 2 {
			t.Fatalf("%d statements; want none after the failed one", len(calls))
		}
	})

	t.Run("StopsInThePauseWhenTheContextEnds", func(t *testing.T) {
		t.Parallel()
		tb := &table{rows: aged(keep, 25, 0), deleted: make(chan int, 10)}
		ctx, cancel := context.WithCancel(testkit.Context(t))
		go func() { <-tb.deleted; cancel() }()
		n, err := job(tb, retention.Policy{Keep: keep, Batch: 10, Pause: time.Hour}).Prune(ctx)
		if !errors.Is(err, context.Canceled) || n != 10 {
			t.Fatalf("Prune = %d, %v; want the first batch's 10 and context.Canceled", n, err)
		}
	})
}

func TestRun(t *testing.T) {
	t.Parallel()
	const keep = 24 * time.Hour

	t.Run("PrunesAtStartAndAtEachTickAndLogsEachRun", func(t *testing.T) {
		t.Parallel()
		var logs testkit.SyncBuffer
		tb := &table{rows: aged(keep, 3, 0), deleted: make(chan int)}
		j := job(tb, retention.Policy{Keep: keep, Batch: 10, Pause: time.Millisecond})
		j.Every = time.Millisecond
		j.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		ctx, cancel := context.WithCancel(testkit.Context(t))
		done := make(chan error, 1)
		go func() { done <- j.Run(ctx) }()
		if n := <-tb.deleted; n != 3 {
			t.Fatalf("the first run deleted %d; want the 3 old rows", n)
		}
		if n := <-tb.deleted; n != 0 {
			t.Fatalf("the second run deleted %d; want none left", n)
		}
		<-tb.deleted // a third run has logged the second
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v; want nil when the context ends", err)
		}
		out := logs.String()
		for _, want := range []string{
			`"level":"INFO","msg":"test log retention: pruned rows older than TEST_RETENTION","retention":86400000000000,"pruned":3`,
			`"level":"DEBUG","msg":"test log retention: nothing older than TEST_RETENTION","retention":86400000000000,"pruned":0`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("KeepZeroLogsThatRowsAreKeptAndReturns", func(t *testing.T) {
		t.Parallel()
		var logs testkit.SyncBuffer
		tb := &table{rows: aged(keep, 3, 0)}
		j := job(tb, retention.Policy{})
		j.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		if err := j.Run(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		if _, calls := tb.snapshot(); len(calls) != 0 {
			t.Errorf("%d statements with retention off; want none", len(calls))
		}
		if want := `"level":"INFO","msg":"test log retention off: rows are kept forever (TEST_RETENTION=0)"`; !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	})

	t.Run("AFailedRunIsLoggedAndTheNextTries", func(t *testing.T) {
		t.Parallel()
		var logs testkit.SyncBuffer
		tb := &table{rows: aged(keep, 3, 0), failOn: 1, deleted: make(chan int)}
		j := job(tb, retention.Policy{Keep: keep, Batch: 10, Pause: time.Millisecond})
		j.Every = time.Millisecond
		j.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		ctx, cancel := context.WithCancel(testkit.Context(t))
		done := make(chan error, 1)
		go func() { done <- j.Run(ctx) }()
		if n := <-tb.deleted; n != 3 {
			t.Fatalf("the run after the failed one deleted %d; want the 3 old rows", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if want := `"level":"WARN","msg":"test log retention: pruning failed; next try at the next tick","error":"connection reset","pruned":0`; !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	})
}

// TestInterval: a short retention prunes as often as it keeps, but not
// back to back (NOTIFIER_RETENTION=1ms).
func TestInterval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ keep, every, want time.Duration }{
		{90 * 24 * time.Hour, 0, retention.DefaultEvery},
		{5 * time.Minute, 0, 5 * time.Minute},
		{time.Millisecond, 0, retention.MinEvery},
		{time.Nanosecond, 0, retention.MinEvery},
		{time.Hour, time.Millisecond, time.Millisecond},
	} {
		j := retention.Job{Policy: retention.Policy{Keep: tc.keep}, Every: tc.every}
		if got := j.Interval(); got != tc.want {
			t.Errorf("keep %s, every %s: interval %s, want %s", tc.keep, tc.every, got, tc.want)
		}
	}
}
