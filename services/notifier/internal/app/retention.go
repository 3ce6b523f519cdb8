package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/internal/metrics"
	"github.com/slotwatch/slotwatch/services/platform/retention"
)

// DefaultRetention is NOTIFIER_RETENTION's default, AccountPool's and
// Requests' too.
const DefaultRetention = 90 * 24 * time.Hour

// DeliveryRetention is the delivery log's retention (NOTIFIER_RETENTION)
// under policy: it deletes delivered and dead deliveries recorded more
// than policy.Keep ago whose events are at or before stream's stored
// cursor (store.PruneDeliveries says why that keeps "never twice"),
// counted in m. Every replica may run it.
func (a *App) DeliveryRetention(stream string, policy retention.Policy, m *metrics.Notifier, logger *slog.Logger) retention.Job {
	return retention.Job{What: "delivery log", Setting: "NOTIFIER_RETENTION", Policy: policy, Now: a.now, Logger: logger,
		Delete: func(ctx context.Context, cutoff time.Time, limit int) (int, error) {
			n, err := a.store.PruneDeliveries(ctx, stream, cutoff, limit)
			m.DeliveriesPruned(n)
			return n, err
		}}
}
