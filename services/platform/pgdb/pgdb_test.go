package pgdb_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgdb"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
)

func applicationName(t *testing.T, dbURL, name string) string {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, dbURL, name)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var got string
	// What the server sees, as an operator reading pg_stat_activity would.
	err = pool.QueryRow(ctx, `SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()`).Scan(&got)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestConnectNamesTheConnections(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewURL(t)
	if got := applicationName(t, dbURL, "accountpool"); got != "accountpool" {
		t.Errorf("application_name = %q, want accountpool", got)
	}
	// A name in the URL is the operator's choice and wins.
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", "accountpool-eu")
	u.RawQuery = q.Encode()
	if got := applicationName(t, u.String(), "accountpool"); got != "accountpool-eu" {
		t.Errorf("with application_name in the URL: %q, want accountpool-eu", got)
	}
}

func TestCollectorExportsPoolStatistics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, pgtest.NewURL(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(pgdb.NewCollector(pool))
	grpcservertest.WantMetric(t, reg, float64(pool.Config().MaxConns), "pgxpool_max_conns")
	if got := grpcservertest.Metric(t, reg, "pgxpool_total_conns"); got < 1 {
		t.Errorf("pgxpool_total_conns = %v after Connect's ping, want at least 1", got)
	}
}

func TestLintMigrations(t *testing.T) {
	t.Parallel()
	first := "-- +goose Up\nCREATE TABLE s.t (id int);\nCREATE INDEX t_idx ON s.t (id);\n-- +goose Down\nDROP TABLE s.t;\n"
	for _, tc := range []struct {
		name, second, wantErr string
	}{
		{"concurrently", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY IF NOT EXISTS u_idx ON s.t (id);\n-- +goose Down\nDROP INDEX CONCURRENTLY IF EXISTS s.u_idx;\n", ""},
		{"locks the table", "-- +goose Up\nCREATE INDEX u_idx ON s.t (id);\n-- +goose Down\nDROP INDEX s.u_idx;\n", "00002_u.sql: CREATE INDEX without CONCURRENTLY"},
		{"unique too", "-- +goose NO TRANSACTION\n-- +goose Up\ncreate unique index u_idx on s.t (id);\n", "00002_u.sql: CREATE INDEX without CONCURRENTLY"},
		{"in a transaction", "-- +goose Up\nCREATE INDEX CONCURRENTLY u_idx ON s.t (id);\n", "00002_u.sql: CREATE INDEX CONCURRENTLY needs -- +goose NO TRANSACTION"},
		{"no index", "-- +goose Up\nALTER TABLE s.t ADD COLUMN n int;\n", ""},
		{"validate in a transaction", "-- +goose Up\nALTER TABLE s.t ADD CONSTRAINT c CHECK (id > 0) NOT VALID;\nALTER TABLE s.t VALIDATE CONSTRAINT c;\n", "00002_u.sql: VALIDATE CONSTRAINT in the migration's transaction"},
		{"validate outside", "-- +goose NO TRANSACTION\n-- +goose Up\nALTER TABLE s.t ADD CONSTRAINT c CHECK (id > 0) NOT VALID;\nALTER TABLE s.t VALIDATE CONSTRAINT c;\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := pgdb.Migrations{Schema: "s", FS: fstest.MapFS{
				"00001_t.sql": {Data: []byte(first)},
				"00002_u.sql": {Data: []byte(tc.second)},
			}}
			err := m.Lint()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Lint: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Lint = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestOpenConnectsAndMigrates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	good := pgdb.Migrations{Schema: "opentest", FS: fstest.MapFS{
		"00001_t.sql": {Data: []byte("-- +goose Up\nCREATE TABLE opentest.t (id int);\n-- +goose Down\nDROP TABLE opentest.t;\n")},
	}}
	pool, err := good.Open(ctx, pgtest.NewURL(t), "opentest")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `INSERT INTO opentest.t VALUES (1)`); err != nil {
		t.Errorf("the migrated table: %v", err)
	}
	bad := pgdb.Migrations{Schema: "opentest", FS: fstest.MapFS{
		"00001_t.sql": {Data: []byte("-- +goose Up\nCREATE TABLE nowhere.t (id int);\n")},
	}}
	if pool, err := bad.Open(ctx, pgtest.NewURL(t), "opentest"); err == nil {
		pool.Close()
		t.Error("a migration that fails: Open returned a pool")
	}
}
