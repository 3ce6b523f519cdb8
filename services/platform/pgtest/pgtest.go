// Package pgtest gives each test its own Postgres database with a service's
// migrations applied. Databases are cloned from a template built once per
// migration set (keyed by a hash of the migration files), so a new database
// costs one CREATE DATABASE and tests can run in parallel.
//
// The server comes from TEST_DATABASE_URL (then DATABASE_URL); `make test`
// starts a private cluster and sets it. Without one the test fails: a skipped
// database test proves nothing.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/platform/pgdb"
)

// ServerURL is the URL of the test server's maintenance database.
func ServerURL(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	t.Fatal("no test database: set TEST_DATABASE_URL, or run the tests with `make test`, which starts a private Postgres")
	return ""
}

// NewURL creates an empty-but-migrated database for this test and returns
// its URL. It is dropped when the test ends.
func NewURL(t testing.TB, sets ...pgdb.Migrations) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server := ServerURL(t)
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("pgtest: connect to test server: %v", err)
	}
	defer admin.Close(ctx)

	tmpl, err := ensureTemplate(ctx, admin, server, sets)
	if err != nil {
		t.Fatalf("pgtest: template: %v", err)
	}
	name := "test_" + randomHex(8)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(t, server, name)
}

// NewPool is NewURL plus a pool on it, closed when the test ends.
func NewPool(t testing.TB, sets ...pgdb.Migrations) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), NewURL(t, sets...))
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func withDatabase(t testing.TB, server, db string) string {
	t.Helper()
	u, err := url.Parse(server)
	if err != nil || u.Scheme == "" {
		t.Fatalf("pgtest: TEST_DATABASE_URL must be a postgres:// URL")
	}
	u.Path = "/" + db
	return u.String()
}

// ensureTemplate builds the template for this migration set unless it exists.
// An advisory lock serialises builders across test processes.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, server string, sets []pgdb.Migrations) (string, error) {
	h := sha256.New()
	for _, m := range sets {
		fmt.Fprintf(h, "schema %s\n", m.Schema)
		var names []string
		if err := fs.WalkDir(m.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				names = append(names, p)
			}
			return err
		}); err != nil {
			return "", err
		}
		sort.Strings(names)
		for _, n := range names {
			b, err := fs.ReadFile(m.FS, n)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%s %d\n", n, len(b))
			h.Write(b)
		}
	}
	name := "tmpl_" + hex.EncodeToString(h.Sum(nil))[:16]

	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7316001)"); err != nil {
		return "", err
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(7316001)") //nolint:errcheck

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", err
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		return "", err
	}
	for _, m := range sets {
		if err := m.Up(ctx, pool); err != nil {
			pool.Close()
			return "", err
		}
	}
	pool.Close()
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+ident+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return "", err
	}
	return name, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
