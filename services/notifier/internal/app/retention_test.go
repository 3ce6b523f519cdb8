package app_test

import (
	"sync"
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

func TestDeliveryRetention(t *testing.T) {
	t.Parallel()
	const keep = 90 * 24 * time.Hour

	type testBundle struct {
		st       *store.Store
		registry *prometheus.Registry
		metrics  *metrics.Notifier
	}
	// setup records n deliveries, sends all but one, and moves the clock
	// past the retention.
	setup := func(t *testing.T, n int) (*app.App, testBundle) {
		t.Helper()
		ctx := testkit.Context(t)
		st := store.New(pgtest.NewPool(t, migrations.Set))
		clock := testkit.NewClock(time.Now().UTC().Truncate(time.Millisecond))
		reg := prometheus.NewRegistry()
		b := testBundle{st: st, registry: reg, metrics: metrics.New(reg, st.CountByState, nil)}
		lock, err := st.AcquireConsumer(ctx, "requests", clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lock.Close)
		var ds []domain.Delivery
		for i := range n {
			ds = append(ds, domain.Delivery{EventCursor: int64(i + 1), EventType: domain.SlotFound, EventOccurredAt: clock.Now(),
				RequestID: uuid.New(), ContactID: uuid.New(), Kind: channel.Email, Address: "ada@example.com", Subject: "Slot found",
				Text: "t", JSON: []byte(`{}`)})
		}
		if _, err := lock.Record(ctx, int64(n), ds, clock.Now()); err != nil {
			t.Fatal(err)
		}
		claimed, err := st.Claim(ctx, clock.Now(), clock.Now().Add(time.Minute), []string{string(channel.Email)}, n-1)
		if err != nil || len(claimed) != n-1 {
			t.Fatalf("claim: %d, %v", len(claimed), err)
		}
		if sent, err := st.MarkDeliveredBatch(ctx, claimed, clock.Now()); err != nil || sent != n-1 {
			t.Fatalf("mark delivered: %d, %v", sent, err)
		}
		clock.Advance(keep + time.Hour)
		return app.New(st, nil, clock.Now, nil), b
	}
	wantLeft := func(t *testing.T, b testBundle) {
		t.Helper()
		left, err := b.st.CountByState(testkit.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		if left[domain.Pending] != 1 || left[domain.Delivered] != 0 {
			t.Fatalf("left %v; want the pending one only", left)
		}
	}

	t.Run("PrunesInBatchesAndCountsThem", func(t *testing.T) {
		t.Parallel()
		a, b := setup(t, 6)
		job := a.DeliveryRetention("requests", retention.Policy{Keep: keep, Batch: 2, Pause: time.Millisecond}, b.metrics, nil)
		if n, err := job.Prune(testkit.Context(t)); err != nil || n != 5 {
			t.Fatalf("Prune = %d, %v; want the 5 delivered", n, err)
		}
		grpcservertest.WantMetric(t, b.registry, 5, "slotwatch_notifier_deliveries_pruned_total")
		wantLeft(t, b)
	})

	t.Run("ReplicasPruningAtOnceDeleteEachRowOnce", func(t *testing.T) {
		t.Parallel()
		a, b := setup(t, 61)
		job := a.DeliveryRetention("requests", retention.Policy{Keep: keep, Batch: 5, Pause: time.Millisecond}, b.metrics, nil)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int
		)
		for range 3 {
			wg.Go(func() {
				// A replica whose batch another took ends its run early;
				// the next run goes on: run until nothing is left.
				for {
					n, err := job.Prune(testkit.Context(t))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					total += n
					done := total == 60
					mu.Unlock()
					if n == 0 || done {
						return
					}
				}
			})
		}
		wg.Wait()
		if total != 60 {
			t.Fatalf("the replicas pruned %d together; want the 60 delivered", total)
		}
		grpcservertest.WantMetric(t, b.registry, 60, "slotwatch_notifier_deliveries_pruned_total")
		wantLeft(t, b)
	})
}
