// Command accountpool serves slotwatch.accountpool.v1.AccountPoolService.
//
//	accountpool                       serve (applies pending migrations first)
//	accountpool migrate up|down|status
//	accountpool keyset generate       print a new encryption keyset
//	accountpool keyset rotate FILE    print FILE's keyset with a new primary key
//	accountpool tokens generate [ROLE[:NAME]...]  new tokens: digest lines for servers, tokens for clients
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/app"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/metrics"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/server"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/accountpool/migrations"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/pgdb"
	"github.com/slotwatch/slotwatch/services/platform/retention"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

func main() { grpcserver.Main(run) }

const usage = `usage:
  accountpool                        serve AccountPoolService (applies migrations first)
  accountpool migrate up|down|status manage the accountpool schema
  accountpool keyset generate        print a new encryption keyset (JSON)
  accountpool keyset rotate FILE     print FILE's keyset with a new primary key added
  accountpool tokens generate [ROLE[:NAME]...]
                                     new tokens (default: admin, checker, reader): the digest
                                     lines for servers' AUTH_TOKENS_FILE, and each token, shown
                                     once, for its client's AUTH_TOKEN_FILE`

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return serve(ctx)
	}
	switch args[0] {
	case "serve":
		return serve(ctx)
	case "migrate":
		return migrate(ctx, args[1:], stdout)
	case "keyset":
		return keysetCommand(args[1:], stdout)
	case "tokens":
		if len(args) < 2 || args[1] != "generate" {
			return errors.New("usage: accountpool tokens generate [ROLE[:NAME]...] (ROLE: admin, checker or reader)")
		}
		return auth.GenerateTokens(stdout, args[2:]...)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func keysetCommand(args []string, stdout io.Writer) error {
	var (
		out []byte
		err error
	)
	switch {
	case len(args) == 1 && args[0] == "generate":
		out, err = secrets.Generate()
	case len(args) == 2 && args[0] == "rotate":
		var in []byte
		if in, err = os.ReadFile(args[1]); err != nil {
			return fmt.Errorf("read keyset: %w", err)
		}
		out, err = secrets.Rotate(in)
	default:
		return errors.New("usage: accountpool keyset generate | accountpool keyset rotate FILE")
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func migrate(ctx context.Context, args []string, stdout io.Writer) error {
	env := envconfig.New()
	url := env.Require("DATABASE_URL", "set it to the Postgres connection string")
	if err := env.Err(); err != nil {
		return err
	}
	db, err := pgdb.Connect(ctx, url, "accountpool-migrate")
	if err != nil {
		return err
	}
	defer db.Close()
	return migrations.Set.Command(ctx, db, args, stdout)
}

type config struct {
	databaseURL, listenAddr, metricsAddr, keysetFile string
	pool                                             domain.Config
	usageRetention                                   time.Duration
	// batching coalesces concurrent Acquires and Releases (POOL_BATCHING).
	batching bool
}

func loadConfig(env *envconfig.Loader) (config, error) {
	def := domain.DefaultConfig()
	c := config{
		databaseURL: env.Require("DATABASE_URL", "set it to the Postgres connection string"),
		listenAddr:  env.String("LISTEN_ADDR", ":50051"),
		metricsAddr: env.String("METRICS_ADDR", ":9091"),
		keysetFile:  env.Require("ENCRYPTION_KEYSET_FILE", secrets.HowToMake),
		batching:    env.Bool("POOL_BATCHING", true),
		pool: domain.Config{
			Cooldown:        env.Duration("POOL_COOLDOWN", def.Cooldown),
			Quarantine:      env.Duration("POOL_QUARANTINE", def.Quarantine),
			BanQuarantine:   env.Duration("POOL_BAN_QUARANTINE", def.BanQuarantine),
			MaxFailures:     env.Int("POOL_MAX_FAILURES", def.MaxFailures, 1),
			LeaseTTL:        env.Duration("POOL_LEASE_TTL", def.LeaseTTL),
			SessionMaxAge:   env.Duration("POOL_SESSION_MAX_AGE", def.SessionMaxAge),
			MaxLoginsPerDay: env.Int("POOL_MAX_LOGINS_PER_DAY", def.MaxLoginsPerDay, 1),
		},
		usageRetention: env.Age("POOL_USAGE_RETENTION", app.DefaultUsageRetention),
	}
	// Every bad setting at once, the malformed ones (env) and those out of
	// their range, so that an operator fixes them in one restart.
	errs := []error{env.Err()}
	if c.usageRetention != 0 && c.usageRetention < app.MinUsageRetention {
		errs = append(errs, fmt.Errorf("POOL_USAGE_RETENTION=%s: want 0 (keep everything) or at least %s, the login budget's window", c.usageRetention, app.MinUsageRetention))
	}
	if c.pool.LeaseTTL < apirule.MinLeaseTTL || c.pool.LeaseTTL > apirule.MaxLeaseTTL {
		errs = append(errs, fmt.Errorf("POOL_LEASE_TTL=%s: want at least %s and at most %s", c.pool.LeaseTTL, apirule.MinLeaseTTL, apirule.MaxLeaseTTL))
	}
	if c.pool.SessionMaxAge <= 0 || c.pool.SessionMaxAge > apirule.MaxSessionMaxAge {
		errs = append(errs, fmt.Errorf("POOL_SESSION_MAX_AGE=%s: want more than 0 and at most %s", c.pool.SessionMaxAge, apirule.MaxSessionMaxAge))
	}
	return c, errors.Join(errs...)
}

func serve(ctx context.Context) error {
	env := envconfig.New()
	cfg, err := loadConfig(env)
	if err != nil {
		return grpcserver.WithEdgeErrors(err, env, cfg.listenAddr)
	}
	keys, err := secrets.LoadFile(cfg.keysetFile)
	if err != nil {
		return err
	}
	logger, sec, err := grpcserver.LoadEdge(env, cfg.listenAddr)
	if err != nil {
		return err
	}
	db, err := migrations.Set.Open(ctx, cfg.databaseURL, "accountpool")
	if err != nil {
		return err
	}
	defer db.Close()

	srv := grpcserver.New(grpcserver.Config{
		Name: "accountpool", ListenAddr: cfg.listenAddr, MetricsAddr: cfg.metricsAddr, Logger: logger,
		Security: sec, Policy: server.Policy,
	})
	srv.Registry.MustRegister(pgdb.NewCollector(db))
	var storeOpts []store.Option
	if cfg.batching {
		storeOpts = append(storeOpts, store.WithBatching())
	}
	st := store.New(db, storeOpts...)
	m := metrics.New(srv.Registry, func(ctx context.Context) (domain.PoolStatus, error) {
		return st.PoolStatus(ctx, time.Now().UTC(), cfg.pool.MaxLoginsPerDay)
	}, logger)
	pool := app.New(st, keys, cfg.pool, app.WithLogger(logger), app.WithMetrics(m))
	server.New(pool, logger).Register(srv.GRPC)
	logger.Info("account pool settings", "cooldown", cfg.pool.Cooldown, "quarantine", cfg.pool.Quarantine,
		"ban_quarantine", cfg.pool.BanQuarantine, "max_failures", cfg.pool.MaxFailures, "lease_ttl", cfg.pool.LeaseTTL,
		"batching", cfg.batching)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { <-ctx.Done(); pool.Stop(); return nil })
	g.Go(func() error { return pool.Listen(ctx, db.Config().ConnConfig) })
	g.Go(func() error { return pool.ExpireLoop(ctx, 5*time.Second) })
	g.Go(func() error { return pool.UsageRetention(retention.Policy{Keep: cfg.usageRetention}).Run(ctx) })
	err = g.Wait()
	// Leases no caller received (it gave up while its batch ran) are being
	// handed back: let that finish before the pool closes.
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if derr := st.Drain(drainCtx); derr != nil {
		logger.Warn("stopping before every lease no caller received was handed back; those end at their expiry", "error", derr)
	}
	return err
}

// drainTimeout bounds the wait for hand-backs at stop (one statement per
// batch, normally milliseconds).
const drainTimeout = 5 * time.Second
