// Package pgdb opens the Postgres pool a service uses and applies the
// service's own schema migrations.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/IBM/pgxpoolprometheus"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/prometheus/client_golang/prometheus"
)

// Connect opens a pool and checks that the server answers. name is the
// connections' application_name (the service: "accountpool"), which
// pg_stat_activity and the server's logs show, unless the URL sets one.
func Connect(ctx context.Context, url, name string) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, errors.New("DATABASE_URL is not set")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error can echo the URL, password included.
		return nil, errors.New("DATABASE_URL is not a valid Postgres connection string")
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgx's default (4 on a small node) starves a server handling many
		// concurrent RPCs; the URL's pool_max_conns still wins.
		cfg.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	if _, set := cfg.ConnConfig.RuntimeParams["application_name"]; !set && name != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = name
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("reach database %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// NewCollector exports the pool's statistics (connections acquired, idle,
// total and max; waits for a connection and their time; connections made
// and destroyed) as pgxpool_* metrics, read from pool.Stat at each scrape.
func NewCollector(pool *pgxpool.Pool) prometheus.Collector {
	return pgxpoolprometheus.NewCollector(pool, nil)
}

// Migrations is one schema's migration set: goose SQL files in FS, applied
// inside Schema, versions recorded in Schema.goose_db_version.
type Migrations struct {
	Schema string
	FS     fs.FS
	// Released are migrations released before a Lint rule they break;
	// Lint passes them (a released migration is never edited).
	Released []string
}

func (m Migrations) provider(pool *pgxpool.Pool, logger *slog.Logger) (*goose.Provider, func(), error) {
	db := stdlib.OpenDBFromPool(pool)
	if _, err := db.Exec("CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{m.Schema}.Sanitize()); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("create schema %s: %w", m.Schema, err)
	}
	// One advisory lock per schema, so replicas starting together migrate
	// one at a time.
	h := fnv.New64a()
	_, _ = io.WriteString(h, "slotwatch-migrate-"+m.Schema)
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64() >> 1)))
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migration lock: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(m.Schema + ".goose_db_version"),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, m.FS, opts...)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("load %s migrations: %w", m.Schema, err)
	}
	return p, func() { _ = db.Close() }, nil
}

// Open is how a service starts on its schema: Connect (name is the
// connections' application_name), then every pending migration of m. The
// pool is closed again if migrating fails.
func (m Migrations) Open(ctx context.Context, url, name string) (*pgxpool.Pool, error) {
	pool, err := Connect(ctx, url, name)
	if err != nil {
		return nil, err
	}
	if err := m.Up(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Up applies every pending migration.
func (m Migrations) Up(ctx context.Context, pool *pgxpool.Pool) error {
	p, done, err := m.provider(pool, nil)
	if err != nil {
		return err
	}
	defer done()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s up: %w", m.Schema, err)
	}
	return nil
}

// Command runs `migrate up|down|status`, as a service's subcommand and the
// Kubernetes migration Job use it. down reverts the newest migration only.
func (m Migrations) Command(ctx context.Context, pool *pgxpool.Pool, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: migrate up|down|status")
	}
	p, done, err := m.provider(pool, nil)
	if err != nil {
		return err
	}
	defer done()
	switch args[0] {
	case "up":
		res, err := p.Up(ctx)
		for _, r := range res {
			fmt.Fprintf(out, "applied %s (%s)\n", r.Source.Path, r.Duration.Round(1e6))
		}
		if err != nil {
			return fmt.Errorf("migrate %s up: %w", m.Schema, err)
		}
		if len(res) == 0 {
			fmt.Fprintln(out, "no pending migrations")
		}
	case "down":
		r, err := p.Down(ctx)
		if err != nil {
			return fmt.Errorf("migrate %s down: %w", m.Schema, err)
		}
		fmt.Fprintf(out, "reverted %s\n", r.Source.Path)
	case "status":
		st, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate %s status: %w", m.Schema, err)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tFILE")
		for _, s := range st {
			at := "-"
			if !s.AppliedAt.IsZero() {
				at = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, at, s.Source.Path)
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown migrate command %q: want up, down or status", args[0])
	}
	return nil
}

var (
	createIndexRE   = regexp.MustCompile(`(?i)\bCREATE\s+(UNIQUE\s+)?INDEX\b(\s+CONCURRENTLY\b)?`)
	noTransactionRE = regexp.MustCompile(`(?m)^--\s*\+goose\s+NO\s+TRANSACTION\s*$`)
	validateRE      = regexp.MustCompile(`(?i)\bVALIDATE\s+CONSTRAINT\b`)
)

// Lint checks the rule for migrations after the first, which run against
// tables that already hold data while the previous version serves them: an
// index is built CONCURRENTLY (a plain CREATE INDEX blocks every write to
// the table until it is built), which Postgres allows only outside a
// transaction, so the file says -- +goose NO TRANSACTION; and a constraint
// added NOT VALID is validated outside a transaction too (-- +goose NO
// TRANSACTION): inside one, the ADD's ACCESS EXCLUSIVE lock is held through
// VALIDATE's scan of the whole table, and every read and write of it waits.
func (m Migrations) Lint() error {
	files, err := fs.Glob(m.FS, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	var errs []error
	for i, name := range files {
		if i == 0 {
			continue // the first migration creates the tables: nothing to block
		}
		b, err := fs.ReadFile(m.FS, name)
		if err != nil {
			return err
		}
		up, _, _ := strings.Cut(string(b), "+goose Down")
		if slices.Contains(m.Released, name) {
			continue
		}
		if validateRE.MatchString(up) && !noTransactionRE.MatchString(string(b)) {
			errs = append(errs, fmt.Errorf("%s: VALIDATE CONSTRAINT in the migration's transaction holds the ACCESS EXCLUSIVE lock of the ADD through the table's scan: add -- +goose NO TRANSACTION", name))
		}
		for _, c := range createIndexRE.FindAllStringSubmatch(up, -1) {
			switch {
			case c[2] == "":
				errs = append(errs, fmt.Errorf("%s: CREATE INDEX without CONCURRENTLY blocks writes to a live table", name))
			case !noTransactionRE.MatchString(string(b)):
				errs = append(errs, fmt.Errorf("%s: CREATE INDEX CONCURRENTLY needs -- +goose NO TRANSACTION", name))
			}
		}
	}
	return errors.Join(errs...)
}
