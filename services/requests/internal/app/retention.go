package app

import (
	"context"
	"time"

	"github.com/slotwatch/slotwatch/services/requests/internal/store"
)

// Retention returns the configured retention (0: keep everything).
func (a *App) Retention() time.Duration { return a.cfg.Retention }

// Prune deletes the checks, claims and events older than the retention
// (Config.Retention; nothing when it is 0), each table in batches of
// Config.PruneBatch rows with Config.PrunePause between them, until none
// is left, and returns how many rows it deleted from each table. Request
// rows are never pruned: a request's status is its state, and a pending
// request's claim is a mission's current one, which PruneClaims keeps.
// Every replica may run it; they take turns on the same rows.
func (a *App) Prune(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	if a.cfg.Retention <= 0 {
		return out, nil
	}
	cutoff := a.Now().Add(-a.cfg.Retention)
	// Checks before claims: a check refers to its claim.
	for _, t := range []struct {
		name  string
		prune func(context.Context, time.Time, int) (int, error)
	}{
		{store.TableChecks, a.store.PruneChecks},
		{store.TableClaims, a.store.PruneClaims},
		{store.TableEvents, a.store.PruneEvents},
	} {
		for {
			n, err := t.prune(ctx, cutoff, a.cfg.PruneBatch)
			out[t.name] += n
			a.metrics.Pruned(t.name, n)
			if err != nil {
				return out, err
			}
			if n < a.cfg.PruneBatch {
				break
			}
			select {
			case <-ctx.Done():
				return out, ctx.Err()
			case <-time.After(a.cfg.PrunePause):
			}
		}
	}
	return out, nil
}
