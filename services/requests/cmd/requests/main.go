// Command requests serves slotwatch.requests.v1.RequestsService: gRPC on
// LISTEN_ADDR, its JSON gateway on HTTP_ADDR, Prometheus metrics on
// METRICS_ADDR.
//
//	requests                          serve (applies migrations first)
//	requests migrate up|down|status   manage the requests schema
//	requests keyset generate          print a new encryption keyset
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
	// Missions' time zones are IANA names; the binary carries the zone
	// database, so validating and using them does not depend on the
	// image having /usr/share/zoneinfo.
	_ "time/tzdata"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/pgdb"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
	"github.com/slotwatch/slotwatch/services/requests/internal/metrics"
	"github.com/slotwatch/slotwatch/services/requests/internal/server"
	"github.com/slotwatch/slotwatch/services/requests/internal/store"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

func main() { grpcserver.Main(run) }

const usage = "usage: requests [migrate up|down|status | keyset generate]"

// keysetHint tells an operator without a keyset how to make one.
const keysetHint = "make one with `requests keyset generate > keyset.json && chmod 600 keyset.json` (accountpool's keysets work too) and point ENCRYPTION_KEYSET_FILE at it"

// sweepEvery is how often the server expires requests whose window passed,
// besides doing it on every ClaimDueMissions.
const sweepEvery = time.Minute

// minRetention keeps REQUESTS_RETENTION at least a claim's longest life
// (apirule.MaxClaimTTL), so a claim and its check are pruned only once
// both are history (PruneClaims also never takes a mission's current
// claim).
const minRetention = apirule.MaxClaimTTL

type config struct {
	databaseURL   string
	keysetFile    string
	listenAddr    string
	metricsAddr   string
	httpAddr      string
	checkInterval time.Duration
	claimTTL      time.Duration
	retention     time.Duration
	watch         app.WatchConfig
	walls         domain.WallRules
}

func loadConfig(env *envconfig.Loader) (config, error) {
	c := config{
		databaseURL:   env.Require("DATABASE_URL", "set it to the Postgres URL, e.g. postgres://user@host:5432/slotwatch"),
		keysetFile:    env.Require("ENCRYPTION_KEYSET_FILE", keysetHint),
		listenAddr:    env.String("LISTEN_ADDR", ":50052"),
		metricsAddr:   env.String("METRICS_ADDR", ":9092"),
		httpAddr:      env.String("HTTP_ADDR", ":8082"),
		checkInterval: env.Duration("REQUESTS_CHECK_INTERVAL", app.DefaultCheckInterval),
		claimTTL:      env.Duration("REQUESTS_CLAIM_TTL", app.DefaultClaimTTL),
		retention:     env.Age("REQUESTS_RETENTION", app.DefaultRetention),
		watch: app.WatchConfig{
			PerCaller: env.Int("REQUESTS_WATCH_PER_CALLER", app.DefaultWatchPerCaller, 1),
			Total:     env.Int("REQUESTS_WATCH_MAX", app.DefaultWatchTotal, 1),
		},
		walls: domain.WallRules{
			Threshold:  env.Int("REQUESTS_WALL_THRESHOLD", domain.DefaultWallRules.Threshold, 1),
			Window:     env.Duration("REQUESTS_WALL_WINDOW", domain.DefaultWallRules.Window),
			PauseMin:   domain.DefaultWallRules.PauseMin,
			PauseMax:   domain.DefaultWallRules.PauseMax,
			ResetAfter: domain.DefaultWallRules.ResetAfter,
		},
	}
	if c.walls.Window < time.Minute || c.walls.Window > 24*time.Hour {
		return c, errors.Join(env.Err(), fmt.Errorf("REQUESTS_WALL_WINDOW=%s: want at least 1m and at most 24h", c.walls.Window))
	}
	if c.retention != 0 && c.retention < minRetention {
		return c, errors.Join(env.Err(), fmt.Errorf("REQUESTS_RETENTION=%s: want 0 (keep everything) or at least %s", c.retention, minRetention))
	}
	if c.claimTTL < apirule.MinClaimTTL || c.claimTTL > apirule.MaxClaimTTL {
		return c, errors.Join(env.Err(), fmt.Errorf("REQUESTS_CLAIM_TTL=%s: want at least %s and at most %s", c.claimTTL, apirule.MinClaimTTL, apirule.MaxClaimTTL))
	}
	return c, env.Err()
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	env := envconfig.New()
	if len(args) > 0 {
		switch {
		case len(args) == 2 && args[0] == "keyset" && args[1] == "generate":
			ks, err := secrets.Generate()
			if err != nil {
				return err
			}
			_, err = stdout.Write(ks)
			return err
		case args[0] == "migrate":
			pool, err := pgdb.Connect(ctx, env.String("DATABASE_URL", ""), "requests-migrate")
			if err != nil {
				return err
			}
			defer pool.Close()
			return migrations.Set.Command(ctx, pool, args[1:], stdout)
		default:
			return errors.New(usage)
		}
	}

	cfg, err := loadConfig(env)
	if err != nil {
		return grpcserver.WithEdgeErrors(err, env, cfg.listenAddr, cfg.httpAddr)
	}
	keys, err := secrets.LoadFile(cfg.keysetFile)
	if err != nil {
		return err
	}
	// The JSON gateway is the API too: it must be on loopback without auth.
	logger, sec, err := grpcserver.LoadEdge(env, cfg.listenAddr, cfg.httpAddr)
	if err != nil {
		return err
	}
	pool, err := migrations.Set.Open(ctx, cfg.databaseURL, "requests")
	if err != nil {
		return err
	}
	defer pool.Close()

	st := store.New(pool)
	gs := grpcserver.New(grpcserver.Config{Name: "requests", ListenAddr: cfg.listenAddr, MetricsAddr: cfg.metricsAddr, Logger: logger,
		Security: sec, Policy: server.Policy, LargestRequestBytes: server.LargestRequestBytes})
	gs.Registry.MustRegister(pgdb.NewCollector(pool))
	m := metrics.New(gs.Registry, st.CountByStatus, logger)
	a := app.New(st, keys, time.Now, app.Config{CheckInterval: cfg.checkInterval, ClaimTTL: cfg.claimTTL, Walls: cfg.walls, Retention: cfg.retention}, app.WithMetrics(m))
	gs.Registry.MustRegister(metrics.PortalsPaused(a.PausedPortals, logger))
	hub := store.NewHub(st, logger)
	feed := app.NewFeed(st, hub, cfg.watch, m, logger)
	server.New(a, feed, logger, gs.Stopping()).Register(gs.GRPC)

	lis, err := net.Listen("tcp", cfg.listenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listenAddr, err)
	}
	extra := map[string]http.Handler{}
	if cfg.httpAddr != "" {
		// The gateway passes each HTTP caller's "Authorization: Bearer"
		// header on as gRPC metadata, so its calls are authorized as the
		// caller's, through the same chain.
		conn, err := grpc.NewClient(loopback(lis.Addr()), grpc.WithTransportCredentials(gs.SelfCredentials()))
		if err != nil {
			lis.Close()
			return fmt.Errorf("gateway client: %w", err)
		}
		defer conn.Close()
		gw, err := server.Gateway(ctx, conn)
		if err != nil {
			lis.Close()
			return err
		}
		extra[cfg.httpAddr] = gw
		logger.Info("serving JSON gateway", "addr", cfg.httpAddr)
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return hub.Run(ctx) })
	g.Go(func() error { return feed.Run(ctx) })
	g.Go(func() error { sweep(ctx, a, logger); return nil })
	for _, j := range a.RetentionJobs(logger) {
		g.Go(func() error { return j.Run(ctx) })
	}
	g.Go(func() error { return gs.Serve(ctx, lis, extra) })
	return g.Wait()
}

// loopback is the address the gateway dials to reach this process's own
// gRPC listener.
func loopback(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("127.0.0.1:%d", tcp.Port)
		}
		return addr.String()
	}
	return tcp.String()
}

// sweep expires requests whose window passed even when no checker is
// claiming (ClaimDueMissions does it too, in its own transaction).
func sweep(ctx context.Context, a *app.App, logger *slog.Logger) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.ExpireDue(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("expiry sweep failed", "error", err)
			} else if n > 0 {
				logger.Info("expired requests", "count", n)
			}
		}
	}
}
