// Command notifier serves slotwatch.notifier.v1.NotifierService (contacts,
// subscriptions, the delivery log) and turns Requests' events into
// deliveries: it follows WatchEvents (one replica at a time), records the
// deliveries each event causes with its cursor, and sends them (every
// replica), by email, Telegram or signed webhook.
//
//	notifier                          serve (applies migrations first)
//	notifier migrate up|down|status   manage the notifier schema
//	notifier keyset generate          print a new encryption keyset
//
// Settings (environment):
//
//	DATABASE_URL               Postgres (required)
//	ENCRYPTION_KEYSET_FILE     Tink keyset sealing webhook secrets (required)
//	LISTEN_ADDR                gRPC address (:50054)
//	METRICS_ADDR               Prometheus /metrics and probes (:9094)
//	REQUESTS_ADDR              Requests (localhost:50052)
//	AUTH_TOKEN_FILE            this notifier's token for Requests (role reader); TLS_CA_FILE, TLS_INSECURE
//	AUTH_TOKENS_FILE           tokens this server accepts; TLS_CERT_FILE, TLS_KEY_FILE, RATE_LIMIT_RPS, RATE_LIMIT_BURST
//	LOG_LEVEL                  debug, info, warn, error (info)
//	NOTIFIER_MAX_ATTEMPTS      attempts before a delivery is DEAD (8)
//	NOTIFIER_BACKOFF_BASE      wait after a first failure, doubling (2s)
//	NOTIFIER_BACKOFF_MAX       longest wait between attempts (10m)
//	NOTIFIER_LEASE             how long one attempt holds a delivery (1m)
//	NOTIFIER_POLL_INTERVAL     how often the log is read for due deliveries (1s)
//	NOTIFIER_CONCURRENCY       sends at once (8; 1 to 1024)
//	NOTIFIER_WEBHOOK_TIMEOUT   one webhook POST, answer included (10s)
//	NOTIFIER_RETENTION         delivered and dead deliveries older than this are deleted (90d; 0 keeps all)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	// Missions' time zones are IANA names; the binary carries the zone
	// database, so messages show portal times without /usr/share/zoneinfo.
	_ "time/tzdata"

	"golang.org/x/sync/errgroup"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/app"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel/email"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel/telegram"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel/webhook"
	"github.com/slotwatch/slotwatch/services/notifier/internal/consumer"
	"github.com/slotwatch/slotwatch/services/notifier/internal/content"
	"github.com/slotwatch/slotwatch/services/notifier/internal/delivery"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/metrics"
	"github.com/slotwatch/slotwatch/services/notifier/internal/server"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/notifier/migrations"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/pgdb"
	"github.com/slotwatch/slotwatch/services/platform/retention"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

func main() { grpcserver.Main(run) }

const usage = "usage: notifier [migrate up|down|status | keyset generate]"

const keysetHint = "make one with `notifier keyset generate > keyset.json && chmod 600 keyset.json` and point ENCRYPTION_KEYSET_FILE at it"

type config struct {
	databaseURL  string
	keysetFile   string
	listenAddr   string
	metricsAddr  string
	requestsAddr string
	client       auth.ClientConfig
	delivery     delivery.Config
	webhook      webhook.Config
	// email and telegram are on when NOTIFIER_SMTP_HOST and
	// NOTIFIER_TELEGRAM_TOKEN_FILE are set.
	email    email.Config
	telegram telegram.Config
	// retention: delivered and dead deliveries recorded longer ago are
	// deleted (NOTIFIER_RETENTION; 0 keeps them).
	retention time.Duration
}

func loadConfig(env *envconfig.Loader) (config, error) {
	c := config{
		databaseURL:  env.Require("DATABASE_URL", "set it to the Postgres URL, e.g. postgres://user@host:5432/slotwatch"),
		keysetFile:   env.Require("ENCRYPTION_KEYSET_FILE", keysetHint),
		listenAddr:   env.String("LISTEN_ADDR", ":50054"),
		metricsAddr:  env.String("METRICS_ADDR", ":9094"),
		requestsAddr: env.String("REQUESTS_ADDR", "localhost:50052"),
		delivery: delivery.Config{
			Retry: domain.Retry{
				MaxAttempts:   env.Int("NOTIFIER_MAX_ATTEMPTS", domain.DefaultRetry.MaxAttempts, 1),
				Base:          env.Duration("NOTIFIER_BACKOFF_BASE", domain.DefaultRetry.Base),
				Max:           env.Duration("NOTIFIER_BACKOFF_MAX", domain.DefaultRetry.Max),
				MaxRetryAfter: domain.DefaultRetry.MaxRetryAfter,
				MaxDefer:      domain.DefaultRetry.MaxDefer,
			},
			Lease:       env.Duration("NOTIFIER_LEASE", delivery.DefaultLease),
			Poll:        env.Duration("NOTIFIER_POLL_INTERVAL", delivery.DefaultPoll),
			Concurrency: env.Int("NOTIFIER_CONCURRENCY", delivery.DefaultConcurrency, 1),
		},
		webhook:   webhook.Config{Timeout: env.Duration("NOTIFIER_WEBHOOK_TIMEOUT", webhook.DefaultTimeout)},
		email:     email.LoadConfig(env),
		telegram:  telegram.LoadConfig(env),
		retention: env.Age("NOTIFIER_RETENTION", app.DefaultRetention),
	}
	errs := []error{env.Err()}
	client, err := auth.ClientConfigFromEnv(env.Lookup) // AUTH_TOKEN_FILE, TLS_CA_FILE, TLS_INSECURE
	errs = append(errs, err)
	c.client = client
	d := c.delivery
	if d.Lease < 2*time.Second {
		errs = append(errs, fmt.Errorf("NOTIFIER_LEASE=%s: want at least 2s", d.Lease))
	}
	if d.Concurrency > delivery.MaxConcurrency {
		errs = append(errs, fmt.Errorf("NOTIFIER_CONCURRENCY=%d: want at most %d", d.Concurrency, delivery.MaxConcurrency))
	}
	if d.Poll < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("NOTIFIER_POLL_INTERVAL=%s: want at least 10ms", d.Poll))
	}
	if d.Retry.Base <= 0 || d.Retry.Max < d.Retry.Base {
		errs = append(errs, fmt.Errorf("NOTIFIER_BACKOFF_BASE=%s, NOTIFIER_BACKOFF_MAX=%s: want 0 < base <= max", d.Retry.Base, d.Retry.Max))
	}
	if c.webhook.Timeout <= 0 || c.webhook.Timeout > d.Lease*3/4 {
		errs = append(errs, fmt.Errorf("NOTIFIER_WEBHOOK_TIMEOUT=%s: want more than 0 and at most three quarters of NOTIFIER_LEASE (%s)", c.webhook.Timeout, d.Lease*3/4))
	}
	return c, errors.Join(errs...)
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
			pool, err := pgdb.Connect(ctx, env.String("DATABASE_URL", ""), "notifier-migrate")
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
		return grpcserver.WithEdgeErrors(err, env, cfg.listenAddr)
	}
	keys, err := secrets.LoadFile(cfg.keysetFile)
	if err != nil {
		return err
	}
	// A broken template stops the service here, not at the first slot.
	templates, err := content.Load()
	if err != nil {
		return err
	}
	logger, sec, err := grpcserver.LoadEdge(env, cfg.listenAddr)
	if err != nil {
		return err
	}
	conn, err := auth.Dial(cfg.requestsAddr, cfg.client)
	if err != nil {
		return fmt.Errorf("REQUESTS_ADDR: %w", err)
	}
	defer conn.Close()
	requests := requestsv1.NewRequestsServiceClient(conn)

	pool, err := migrations.Set.Open(ctx, cfg.databaseURL, "notifier")
	if err != nil {
		return err
	}
	defer pool.Close()

	// The channels this replica sends by. Deliveries of a kind missing
	// here stay queued for a replica that has it.
	senders := map[channel.Kind]channel.Sender{
		channel.Webhook: webhook.New(cfg.webhook),
	}
	if cfg.email.Host != "" {
		cfg.email.Logger = logger
		s, err := email.New(cfg.email)
		if err != nil {
			return err
		}
		senders[channel.Email] = s
	}
	if cfg.telegram.TokenFile != "" {
		s, err := telegram.New(cfg.telegram)
		if err != nil {
			return err
		}
		senders[channel.Telegram] = s
	}
	logger.Info("notifier channels", "email", senders[channel.Email] != nil, "telegram", senders[channel.Telegram] != nil, "webhook", true)

	st := store.New(pool)
	gs := grpcserver.New(grpcserver.Config{Name: "notifier", ListenAddr: cfg.listenAddr, MetricsAddr: cfg.metricsAddr, Logger: logger,
		Security: sec, Policy: server.Policy})
	gs.Registry.MustRegister(pgdb.NewCollector(pool))
	m := metrics.New(gs.Registry, st.CountByState, logger)
	lookup := consumer.NewLookup(requests)
	a := app.New(st, keys, time.Now, lookup)
	loop := delivery.New(st, a, senders, cfg.delivery, time.Now, m, logger)
	cons := consumer.New(st, requests, lookup, templates, time.Now, consumer.Config{}, loop, m, logger)
	server.New(a, logger).Register(gs.GRPC)

	lis, err := net.Listen("tcp", cfg.listenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listenAddr, err)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cons.Run(ctx) })
	g.Go(func() error { return loop.Run(ctx) })
	g.Go(func() error {
		return a.DeliveryRetention(consumer.Stream, retention.Policy{Keep: cfg.retention}, m, logger).Run(ctx)
	})
	g.Go(func() error { return gs.Serve(ctx, lis, nil) })
	return g.Wait()
}
