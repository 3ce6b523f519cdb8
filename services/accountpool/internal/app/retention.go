package app

import (
	"context"
	"time"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
)

// Defaults of Retention.
const (
	DefaultUsageRetention = 90 * 24 * time.Hour
	DefaultPruneBatch     = 1000
	DefaultPrunePause     = 100 * time.Millisecond
	// MinUsageRetention keeps the rows the login budget counts
	// (domain.LoginWindow).
	MinUsageRetention = domain.LoginWindow
)

// Retention says what PruneUsage deletes: usage rows of ended leases
// acquired more than Keep ago (0: none), Batch rows per statement with
// Pause between statements, so a backlog never holds many row locks or
// the disk for long. Zero Batch and Pause take their defaults.
type Retention struct {
	Keep  time.Duration
	Batch int
	Pause time.Duration
}

// PruneUsage deletes the usage log rows r says, in batches until none is
// left, and returns how many it deleted. Rows of a held lease are kept
// however old (store.PruneUsage). Every replica may run it.
func (p *Pool) PruneUsage(ctx context.Context, r Retention) (int, error) {
	if r.Keep <= 0 {
		return 0, nil
	}
	if r.Batch <= 0 {
		r.Batch = DefaultPruneBatch
	}
	if r.Pause <= 0 {
		r.Pause = DefaultPrunePause
	}
	cutoff := p.Now().Add(-r.Keep)
	total := 0
	for {
		n, err := p.store.PruneUsage(ctx, cutoff, r.Batch)
		total += n
		p.metrics.UsagePruned(n)
		if err != nil || n < r.Batch {
			return total, err
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(r.Pause):
		}
	}
}

// PruneLoop runs PruneUsage at start and then every interval until ctx
// ends (nothing at all when r.Keep is 0).
func (p *Pool) PruneLoop(ctx context.Context, r Retention, interval time.Duration) error {
	if r.Keep <= 0 {
		p.logger.InfoContext(ctx, "usage log retention off: rows are kept forever (POOL_USAGE_RETENTION=0)")
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := p.PruneUsage(ctx, r); err != nil && ctx.Err() == nil {
			p.logger.WarnContext(ctx, "usage log retention: pruning failed; next try at the next tick", "error", err, "pruned", n)
		} else if n > 0 {
			p.logger.InfoContext(ctx, "usage log retention: pruned rows older than POOL_USAGE_RETENTION", "retention", r.Keep, "pruned", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
