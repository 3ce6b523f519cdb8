package app

import (
	"context"
	"time"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/retention"
)

// POOL_USAGE_RETENTION's default and its least value other than 0.
const (
	DefaultUsageRetention = 90 * 24 * time.Hour
	// MinUsageRetention keeps the rows the login budget counts
	// (domain.LoginWindow).
	MinUsageRetention = domain.LoginWindow
)

// UsageRetention is the usage log's retention (POOL_USAGE_RETENTION)
// under policy: it deletes the usage rows of ended leases acquired more
// than policy.Keep ago, counted in slotwatch_pool_usage_pruned_total.
// Rows of a held lease are kept however old (store.PruneUsage). Every
// replica may run it.
func (p *Pool) UsageRetention(policy retention.Policy) retention.Job {
	return retention.Job{What: "usage log", Setting: "POOL_USAGE_RETENTION", Policy: policy, Now: p.Now, Logger: p.logger,
		Delete: func(ctx context.Context, cutoff time.Time, limit int) (int, error) {
			n, err := p.store.PruneUsage(ctx, cutoff, limit)
			p.metrics.UsagePruned(n)
			return n, err
		}}
}
