package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/retention"
	"github.com/slotwatch/slotwatch/services/requests/internal/store"
)

// RetentionJobs are REQUESTS_RETENTION's jobs (Config.Retention; they
// delete nothing when it is 0), one per table, each in batches of
// Config.PruneBatch rows with Config.PrunePause between them: the checks,
// claims and events older than the retention, counted in
// slotwatch_requests_pruned_rows_total{table}. Checks come before claims, as a
// check refers to its claim (a claim whose check is kept is kept). Request
// rows are never pruned: a request's status is its state, and a pending
// request's claim is a mission's current one, which PruneClaims keeps.
// Every replica may run them; they take turns on the same rows.
func (a *App) RetentionJobs(logger *slog.Logger) []retention.Job {
	policy := retention.Policy{Keep: a.cfg.Retention, Batch: a.cfg.PruneBatch, Pause: a.cfg.PrunePause}
	var jobs []retention.Job
	for _, t := range []struct {
		table  string
		delete retention.DeleteFunc
	}{
		{store.TableChecks, a.store.PruneChecks},
		{store.TableClaims, a.store.PruneClaims},
		{store.TableEvents, a.store.PruneEvents},
	} {
		jobs = append(jobs, retention.Job{What: t.table, Setting: "REQUESTS_RETENTION", Policy: policy, Now: a.Now, Logger: logger,
			Delete: func(ctx context.Context, cutoff time.Time, limit int) (int, error) {
				n, err := t.delete(ctx, cutoff, limit)
				a.metrics.Pruned(t.table, n)
				return n, err
			}})
	}
	return jobs
}

// Prune runs each of RetentionJobs once, in order, and returns how many
// rows it deleted from each table (none at all with retention off).
func (a *App) Prune(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	if a.cfg.Retention <= 0 {
		return out, nil
	}
	for _, j := range a.RetentionJobs(nil) {
		n, err := j.Prune(ctx)
		out[j.What] += n
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
