// Package retention deletes a table's old rows the way every service does:
// in batches with a pause between them, so a backlog never holds many row
// locks or the disk for long, at start and then periodically. The service
// supplies the statement that deletes one batch (which rows may go is its
// business); every replica may run the job, as a batch another replica
// took deletes nothing the second time.
package retention

import (
	"context"
	"log/slog"
	"time"
)

// Defaults of Policy and Job.
const (
	DefaultBatch = 1000
	DefaultPause = 100 * time.Millisecond
	DefaultEvery = 10 * time.Minute
	// MinEvery bounds the interval a short Keep sets: a retention of a
	// millisecond must not have every replica delete back to back.
	MinEvery = time.Minute
)

// Policy says what a prune deletes and how fast: rows older than Keep (0:
// none), Batch rows per statement, Pause between statements. Zero Batch
// and Pause take their defaults.
type Policy struct {
	Keep  time.Duration
	Batch int
	Pause time.Duration
}

// DeleteFunc deletes up to limit of the oldest rows older than cutoff that
// may go, and says how many it deleted.
type DeleteFunc func(ctx context.Context, cutoff time.Time, limit int) (int, error)

// Job is one table's retention.
type Job struct {
	// What names the rows in log lines ("usage log"), Setting the
	// variable that sets Policy.Keep ("POOL_USAGE_RETENTION").
	What, Setting string
	Policy        Policy
	// Every is how often Run prunes (when 0: DefaultEvery, or Policy.Keep
	// when that is shorter, but at least MinEvery).
	Every  time.Duration
	Now    func() time.Time
	Delete DeleteFunc
	Logger *slog.Logger
}

// Prune deletes the rows older than Policy.Keep at Now, batch after batch
// until one deletes fewer than Policy.Batch, and returns how many it
// deleted (those of the batches before an error too). It deletes nothing
// when Policy.Keep is 0.
func (j Job) Prune(ctx context.Context) (int, error) {
	p := j.Policy
	if p.Keep <= 0 {
		return 0, nil
	}
	if p.Batch <= 0 {
		p.Batch = DefaultBatch
	}
	if p.Pause <= 0 {
		p.Pause = DefaultPause
	}
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	// One cutoff for the whole run: rows coming of age meanwhile wait for
	// the next, so a run ends even while rows keep coming of age.
	cutoff := now().Add(-p.Keep)
	total := 0
	for {
		n, err := j.Delete(ctx, cutoff, p.Batch)
		total += n
		if err != nil || n < p.Batch {
			return total, err
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(p.Pause):
		}
	}
}

// Run prunes at start and then every Interval until ctx ends, with a log line
// per run: info when it deleted rows, debug when there were none, warn
// when it failed (the next run tries again). With Policy.Keep 0 it logs
// at info that rows are kept forever and returns at once.
func (j Job) Run(ctx context.Context) error {
	logger := j.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if j.Policy.Keep <= 0 {
		logger.InfoContext(ctx, j.What+" retention off: rows are kept forever ("+j.Setting+"=0)")
		return nil
	}
	t := time.NewTicker(j.Interval())
	defer t.Stop()
	for {
		n, err := j.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.WarnContext(ctx, j.What+" retention: pruning failed; next try at the next tick", "error", err, "pruned", n)
		case n > 0:
			logger.InfoContext(ctx, j.What+" retention: pruned rows older than "+j.Setting, "retention", j.Policy.Keep, "pruned", n)
		case err == nil:
			logger.DebugContext(ctx, j.What+" retention: nothing older than "+j.Setting, "retention", j.Policy.Keep, "pruned", 0)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Interval is how often Run prunes: Every, or when 0 DefaultEvery, or
// Policy.Keep when that is shorter, but at least MinEvery.
func (j Job) Interval() time.Duration {
	if j.Every > 0 {
		return j.Every
	}
	return min(DefaultEvery, max(j.Policy.Keep, MinEvery))
}
