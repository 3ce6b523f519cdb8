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
	if err := migrations.Set.Command(ctx, pool, []string{"down"}, io.Discard); err != nil {
		t.Fatal(err)
	}
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
