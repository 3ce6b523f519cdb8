package app_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/notifier/internal/app"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/metrics"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/notifier/migrations"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/retention"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestDeliveryRetentionPrunesInBatchesAndCountsThem: five deliveries
// recorded, sent, and aged past the retention go, in batches of two (the
// last one short); the metric counts them; one still pending stays.
func TestDeliveryRetentionPrunesInBatchesAndCountsThem(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	pool := pgtest.NewPool(t, migrations.Set)
	st := store.New(pool)
	clock := testkit.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, st.CountByState, nil)
	a := app.New(st, nil, clock.Now, nil)

	lock, err := st.AcquireConsumer(ctx, "requests", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lock.Close)
	var ds []domain.Delivery
	for i := range 6 {
		ds = append(ds, domain.Delivery{EventCursor: int64(i + 1), EventType: domain.SlotFound, EventOccurredAt: clock.Now(),
			RequestID: uuid.New(), ContactID: uuid.New(), Kind: channel.Email, Address: "ada@example.com", Subject: "Slot found",
			Text: "t", JSON: []byte(`{}`)})
	}
	if _, err := lock.Record(ctx, 6, ds, clock.Now()); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.Claim(ctx, clock.Now(), clock.Now().Add(time.Minute), []string{string(channel.Email)}, 5)
	if err != nil || len(claimed) != 5 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	if n, err := st.MarkDeliveredBatch(ctx, claimed, clock.Now()); err != nil || n != 5 {
		t.Fatalf("mark delivered: %d, %v", n, err)
	}
	clock.Advance(91 * 24 * time.Hour)

	job := a.DeliveryRetention("requests", retention.Policy{Keep: 90 * 24 * time.Hour, Batch: 2, Pause: time.Millisecond}, m, nil)
	if n, err := job.Prune(ctx); err != nil || n != 5 {
		t.Fatalf("Prune = %d, %v; want the 5 delivered", n, err)
	}
	grpcservertest.WantMetric(t, reg, 5, "slotwatch_notifier_deliveries_pruned_total")
	left, err := st.CountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if left[domain.Pending] != 1 || left[domain.Delivered] != 0 {
		t.Fatalf("left %v; want the pending one only", left)
	}
}
