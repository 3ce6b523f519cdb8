package migrations_test

import (
	"context"
	"io"
	"testing"

	"github.com/slotwatch/slotwatch/services/notifier/migrations"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
)

// TestLint: indexes of later migrations are built without blocking writes.
func TestLint(t *testing.T) {
	t.Parallel()
	if err := migrations.Set.Lint(); err != nil {
		t.Error(err)
	}
}

// TestDownAndUpAgain: every migration reverts, and applies again after.
func TestDownAndUpAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, migrations.Set)
	down := func() {
		t.Helper()
		if err := migrations.Set.Command(ctx, pool, []string{"down"}, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	down() // 00002: the retention index
	var index bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'notifier' AND indexname = 'deliveries_ended_idx')`).Scan(&index); err != nil {
		t.Fatal(err)
	}
	if index {
		t.Error("deliveries_ended_idx left after its down")
	}
	down() // 00001: the tables
	var tables int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'notifier' AND tablename <> 'goose_db_version'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d tables left after down", tables)
	}
	if err := migrations.Set.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
}
