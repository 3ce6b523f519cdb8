package store_test

import (
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/accountpool/migrations"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestAcquireProbesTheUsageLogByAcquireID: the Acquire statement looks each
// request's acquire_id up in usage_log_acquire_id_key, whatever the usage
// log's size and statistics. Its NOT EXISTS was once planned as a hashed
// subplan (a sequential scan of the whole log, for every batch); on a
// young log, whose statistics said it was small, that plan stayed cached
// in the connection as the log grew, and it took nine tenths of the
// statement's time (poolbench, 16 clients: 1,065 pairs/s against 2,317
// after).
func TestAcquireProbesTheUsageLogByAcquireID(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	db := pgtest.NewPool(t, migrations.Set)
	s := store.New(db, store.WithBatching())
	check := func(when string) {
		t.Helper()
		for _, n := range []int{1, 16, 128} {
			plan, err := s.ExplainAcquire(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(plan, "Seq Scan on usage_log") || !strings.Contains(plan, "usage_log_acquire_id_key") {
				t.Errorf("%s, %d requests: the plan does not probe usage_log_acquire_id_key alone:\n%s", when, n, plan)
			}
		}
	}
	// A new usage log, never analyzed, as a fresh deployment's (autovacuum
	// analyzes a table from its 50th row): the planner assumes ten pages.
	var tuples float64
	if err := db.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'accountpool.usage_log'::regclass`).Scan(&tuples); err != nil {
		t.Fatal(err)
	}
	if tuples >= 0 {
		t.Fatalf("the new usage log has statistics already (reltuples %v)", tuples)
	}
	check("a new usage log")
	if _, err := db.Exec(ctx, `
		INSERT INTO accountpool.accounts (id, email, password_ciphertext, created_at, updated_at)
			VALUES (1, 'acc@example.com', 'sealed', now(), now());
		INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, acquired_at, acquire_id)
			SELECT gen_random_uuid(), 1, g, 'fra', 'checker-1', now() - g * interval '1 second', gen_random_uuid()
			FROM generate_series(1, 20000) g;
		ANALYZE accountpool.usage_log`); err != nil {
		t.Fatal(err)
	}
	check("20,000 usage rows")
}
