package server_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/retention"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func TestUsageRetention(t *testing.T) {
	t.Parallel()
	// Shorter than any production retention (at least a day), so one held
	// lease can be older than it; batches of 2 take several statements.
	keep := retention.Policy{Keep: 30 * time.Minute, Batch: 2, Pause: time.Millisecond}
	usageRows := func(t *testing.T, b *testBundle) int {
		t.Helper()
		var n int
		if err := b.db.QueryRow(testkit.Context(t), `SELECT count(*) FROM accountpool.usage_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	prune := func(t *testing.T, b *testBundle, r retention.Policy) int {
		t.Helper()
		n, err := b.pool.UsageRetention(r).Prune(testkit.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	round := func(t *testing.T, c apv1.AccountPoolServiceClient) {
		t.Helper()
		for range 3 {
			release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT)
		}
	}

	t.Run("PrunesEndedLeasesOlderThanTheRetentionAndKeepsHeldOnes", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		addAccounts(t, c, 4)
		round(t, c) // accounts 1-3, ended
		resp, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "slow", LeaseTtl: durationpb.New(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		held := resp.GetLease()
		b.clock.Advance(11 * time.Minute) // past the cooldown
		round(t, c)
		b.clock.Advance(25 * time.Minute) // the first round and the held lease are 36m old, the second 25m

		if n := prune(t, b, keep); n != 3 {
			t.Fatalf("pruned %d rows, want the first round's 3", n)
		}
		if n := usageRows(t, b); n != 4 {
			t.Fatalf("%d usage rows left, want the held lease's and the second round's", n)
		}
		if m := grpcservertest.Metric(t, b.registry, "slotwatch_pool_usage_pruned_total"); m != 3 {
			t.Fatalf("slotwatch_pool_usage_pruned_total = %v, want 3", m)
		}
		// The held lease's row is still there: its Release is logged, and
		// a retried Release gets the same answer.
		first := release(t, c, held, apv1.Outcome_OUTCOME_SUCCESS)
		if again := release(t, c, held, apv1.Outcome_OUTCOME_SUCCESS); again.GetUseCount() != first.GetUseCount() {
			t.Fatalf("retried release = %v, want %v", again, first)
		}
		// Ended, it is history like the others.
		if n := prune(t, b, keep); n != 1 {
			t.Fatalf("pruned %d rows after the release, want the held lease's", n)
		}
	})

	t.Run("RetentionOffKeepsEverything", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		addAccounts(t, c, 3)
		round(t, c)
		b.clock.Advance(1000 * 24 * time.Hour)
		if n := prune(t, b, retention.Policy{}); n != 0 || usageRows(t, b) != 3 {
			t.Fatalf("pruned %d with retention off; %d rows left", n, usageRows(t, b))
		}
	})
}
