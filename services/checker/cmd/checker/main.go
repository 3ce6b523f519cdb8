// Command checker serves slotwatch.checker.v1.CheckerService and runs the
// check loop: claim due missions from Requests, lease accounts from
// AccountPool, read the portal's free slots with headless Chromium, release
// and report (DESIGN §1).
//
// Settings (environment):
//
//	LISTEN_ADDR               gRPC address (:50053)
//	METRICS_ADDR              Prometheus /metrics (:9093)
//	ACCOUNTPOOL_ADDR          AccountPool (localhost:50051)
//	REQUESTS_ADDR             Requests (localhost:50052)
//	AUTH_TOKEN_FILE           this checker's token (role checker), sent to both services
//	TLS_CA_FILE               CA certificates of the services' TLS certificates
//	AUTH_TOKENS_FILE          tokens this server accepts; TLS_CERT_FILE, TLS_KEY_FILE, RATE_LIMIT_RPS, RATE_LIMIT_BURST
//	LOG_LEVEL                 debug, info, warn, error (info)
//	CHROME_PATH               Chromium (/usr/bin/chromium)
//	CHROME_NO_SANDBOX         true: Chromium without its sandbox, for root-run local development only;
//	                          as root the checker refuses to start without it (false)
//	CHECKER_BROWSER_RECYCLE   checks per browser before it is replaced (100)
//	CHECKER_BROWSER_START_TIMEOUT  starting Chromium, and opening a tab in it (30s)
//	CHECKER_ARTIFACTS_DIR     what checks knew of pages they could not make sense of ($TMPDIR/slotwatch-artifacts)
//	CHECKER_ARTIFACTS_PAGES   true: keep those pages' HTML and a screenshot too, which can show
//	                          applicants' personal data (false)
//	CHECKER_ARTIFACTS_MAX_AGE      how long a check's artifacts are kept (72h)
//	CHECKER_ARTIFACTS_MAX_BYTES    bytes one check may save there (8 MiB)
//	CHECKER_ARTIFACTS_TOTAL_BYTES  disk the check folders may take (blocks, not lengths); the oldest checks go first (512 MiB)
//	PORTAL_PROFILE            a shipped portal profile: portalsim, vfs, tls or ais (portalsim)
//	PORTAL_PROFILE_FILE       a portal profile file, YAML or JSON, instead (docs/PROFILES.md)
//	PORTAL_BASE_URL           overrides the profile's base_url
//	MAX_CONCURRENT_MISSIONS   checks at once (5)
//	CHECKER_ID                holder and claimer id (hostname-pid)
//	CHECKER_SESSION_INTERVAL  pause after a session that found nothing due (10s)
//	CHECKER_CLAIM_TTL         claim length asked of Requests (5m)
//	CHECKER_LEASE_TTL         lease length asked of AccountPool, renewed at half (2m)
//	CHECKER_LOOP              false: no loop, sessions only by RunSession (true)
//	CHECKER_DRAIN_TIMEOUT     on SIGTERM, how long running checks may finish before they are cut (60s)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/client"
	"github.com/slotwatch/slotwatch/services/checker/internal/metrics"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/checker/internal/server"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
)

func main() { grpcserver.Main(run) }

const usage = `usage:
  checker                      serve CheckerService and run the check loop (settings in the environment; see the package doc)
  checker profile lint FILE    check a portal profile: every problem with its line (docs/PROFILES.md)
  checker profile try --profile FILE --mission M --centre C --category V --email E [--password-file F] [--out DIR] [--base-url URL]
                               run the profile's flows once, printing every step and saving the page after it`

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprintln(stdout, usage)
			return nil
		}
		if args[0] == "profile" {
			return profileCommand(ctx, args[1:], stdout)
		}
		if args[0] != "serve" {
			return fmt.Errorf("unknown command %q\n%s", args[0], usage)
		}
	}
	return serve(ctx)
}

type config struct {
	listenAddr, metricsAddr       string
	accountPoolAddr, requestsAddr string
	client                        auth.ClientConfig
	chromePath, artifactsDir      string
	noSandbox, artifactsPages     bool
	artifactsMaxAge               time.Duration
	recycle                       int
	browserStart                  time.Duration
	artifactsMax, artifactsTotal  int64
	loop                          bool
	drain                         time.Duration
	session                       session.Config
	profile                       *profile.Profile
}

func loadConfig(env *envconfig.Loader) (config, error) {
	c := config{
		listenAddr:      env.String("LISTEN_ADDR", ":50053"),
		metricsAddr:     env.String("METRICS_ADDR", ":9093"),
		accountPoolAddr: env.String("ACCOUNTPOOL_ADDR", "localhost:50051"),
		requestsAddr:    env.String("REQUESTS_ADDR", "localhost:50052"),
		chromePath:      env.String("CHROME_PATH", browser.DefaultExecPath),
		artifactsDir:    env.String("CHECKER_ARTIFACTS_DIR", ""),
		recycle:         env.Int("CHECKER_BROWSER_RECYCLE", 100, 1),
		browserStart:    env.Duration("CHECKER_BROWSER_START_TIMEOUT", browser.DefaultStartTimeout),
		artifactsMax:    int64(env.Int("CHECKER_ARTIFACTS_MAX_BYTES", portal.DefaultArtifactsMaxBytes, 64<<10)),
		artifactsTotal:  int64(env.Int("CHECKER_ARTIFACTS_TOTAL_BYTES", portal.DefaultArtifactsTotalBytes, 64<<10)),
		artifactsMaxAge: env.Duration("CHECKER_ARTIFACTS_MAX_AGE", portal.DefaultArtifactsMaxAge),
		drain:           env.Duration("CHECKER_DRAIN_TIMEOUT", time.Minute),
		session: session.Config{
			CheckerID:     env.String("CHECKER_ID", defaultID()),
			MaxConcurrent: env.Int("MAX_CONCURRENT_MISSIONS", session.DefaultMaxConcurrent, 1),
			Interval:      env.Duration("CHECKER_SESSION_INTERVAL", session.DefaultInterval),
			ClaimTTL:      env.Duration("CHECKER_CLAIM_TTL", session.DefaultClaimTTL),
			LeaseTTL:      env.Duration("CHECKER_LEASE_TTL", session.DefaultLeaseTTL),
		},
	}
	var errs []error
	client, err := auth.ClientConfigFromEnv(env.Lookup) // AUTH_TOKEN_FILE, TLS_CA_FILE, TLS_INSECURE
	if err != nil {
		errs = append(errs, err)
	}
	c.client = client
	for _, b := range []struct {
		name, s string
		v       *bool
	}{
		{"CHECKER_LOOP", env.String("CHECKER_LOOP", "true"), &c.loop},
		{"CHROME_NO_SANDBOX", env.String("CHROME_NO_SANDBOX", "false"), &c.noSandbox},
		{"CHECKER_ARTIFACTS_PAGES", env.String("CHECKER_ARTIFACTS_PAGES", "false"), &c.artifactsPages},
	} {
		v, err := strconv.ParseBool(b.s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", b.name, b.s))
			continue
		}
		*b.v = v
	}
	if err := browser.CheckSandbox(c.noSandbox); err != nil {
		errs = append(errs, err)
	}
	// Requests and AccountPool bound claims and leases (apirule); a check
	// needs seconds.
	for _, d := range []struct {
		name     string
		v        time.Duration
		min, max time.Duration
	}{
		{"CHECKER_CLAIM_TTL", c.session.ClaimTTL, 2 * time.Second, apirule.MaxClaimTTL},
		{"CHECKER_LEASE_TTL", c.session.LeaseTTL, 2 * time.Second, apirule.MaxLeaseTTL},
		{"CHECKER_SESSION_INTERVAL", c.session.Interval, time.Millisecond, 24 * time.Hour},
		{"CHECKER_ARTIFACTS_MAX_AGE", c.artifactsMaxAge, time.Minute, 90 * 24 * time.Hour},
		{"CHECKER_BROWSER_START_TIMEOUT", c.browserStart, time.Second, 30 * time.Minute},
	} {
		if d.v < d.min || d.v > d.max {
			errs = append(errs, fmt.Errorf("%s=%s: want at least %s and at most %s", d.name, d.v, d.min, d.max))
		}
	}
	if n := utf8.RuneCountInString(c.session.CheckerID); n > apirule.MaxCheckerIDLen {
		errs = append(errs, fmt.Errorf("CHECKER_ID is %d characters; at most %d", n, apirule.MaxCheckerIDLen))
	}
	if !portal.TotalHoldsACheck(c.artifactsTotal, c.artifactsMax) {
		errs = append(errs, fmt.Errorf("CHECKER_ARTIFACTS_TOTAL_BYTES=%d is below CHECKER_ARTIFACTS_MAX_BYTES=%d and the %d bytes of its folder's disk blocks: one check would not fit",
			c.artifactsTotal, c.artifactsMax, portal.FolderOverhead))
	}
	if c.session.MaxConcurrent > 50 {
		errs = append(errs, fmt.Errorf("MAX_CONCURRENT_MISSIONS=%d: at most 50 (every check is a browser tab)", c.session.MaxConcurrent))
	}
	prof, err := profile.FromEnv(env.Lookup)
	if err != nil {
		errs = append(errs, err)
	}
	c.profile = prof
	return c, errors.Join(append([]error{env.Err()}, errs...)...)
}

func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "checker"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

func serve(ctx context.Context) error {
	env := envconfig.New()
	cfg, err := loadConfig(env)
	if err != nil {
		return grpcserver.WithEdgeErrors(err, env, cfg.listenAddr)
	}
	logger, sec, err := grpcserver.LoadEdge(env, cfg.listenAddr)
	if err != nil {
		return err
	}
	apConn, err := auth.Dial(cfg.accountPoolAddr, cfg.client)
	if err != nil {
		return fmt.Errorf("ACCOUNTPOOL_ADDR=%s: %w", cfg.accountPoolAddr, err)
	}
	defer apConn.Close()
	rqConn, err := auth.Dial(cfg.requestsAddr, cfg.client)
	if err != nil {
		return fmt.Errorf("REQUESTS_ADDR=%s: %w", cfg.requestsAddr, err)
	}
	defer rqConn.Close()

	// One tab opened ahead per mission checked at once: a session's first
	// checks all start on a ready tab.
	mgr := browser.New(browser.Config{ExecPath: cfg.chromePath, NoSandbox: cfg.noSandbox, RecycleAfter: cfg.recycle, Spares: cfg.session.MaxConcurrent,
		StartTimeout: cfg.browserStart, Background: cfg.profile.BackgroundTabs, Logger: logger.With("component", "browser")})
	srv := grpcserver.New(grpcserver.Config{
		Name: "checker", ListenAddr: cfg.listenAddr, MetricsAddr: cfg.metricsAddr, Logger: logger,
		Security: sec, Policy: server.Policy,
	})
	ready := &readiness{}
	scfg := cfg.session
	scfg.Logger, scfg.Ready = logger, ready.err
	var checker *session.Checker
	m := metrics.New(srv.Registry, mgr.Status, func() int { return checker.InFlightCount() }) // checker is set below
	scfg.Metrics = m
	driver, err := portal.New(portal.Config{Profile: cfg.profile, Browser: mgr, ArtifactsDir: cfg.artifactsDir,
		ArtifactsMaxBytes: cfg.artifactsMax, ArtifactsTotalBytes: cfg.artifactsTotal, ArtifactsMaxAge: cfg.artifactsMaxAge,
		ArtifactsPages: cfg.artifactsPages, Logger: logger.With("component", "portal"), Pages: m})
	if err != nil {
		return err
	}
	checker = session.New(scfg, client.NewPool(apConn), client.NewRequests(rqConn), driver)
	server.New(checker, mgr.Status, func() []portal.ProfileStatus { return []portal.ProfileStatus{driver.Status()} }, logger).Register(srv.GRPC)
	logger.Info("checker settings", "checker_id", scfg.CheckerID, "max_concurrent_missions", scfg.MaxConcurrent,
		"claim_ttl", scfg.ClaimTTL.String(), "lease_ttl", scfg.LeaseTTL.String(), "session_interval", scfg.Interval.String(),
		"loop", cfg.loop, "accountpool", cfg.accountPoolAddr, "requests", cfg.requestsAddr,
		"portal", cfg.profile.Name, "portal_url", cfg.profile.BaseURL, "chrome", cfg.chromePath, "chrome_sandbox", !cfg.noSandbox)

	// The server comes up first, NOT_SERVING, and the browser starts
	// beside it (watchBrowser): the liveness probe (/healthz) answers
	// while Chromium starts, however long CHECKER_BROWSER_START_TIMEOUT
	// lets it take, and readiness (health, /readyz) and the sessions wait
	// for the browser. A SIGTERM during the start ends it (its context is
	// gctx) and the drain below runs as at any other time.
	ready.set(errBrowserStarting)
	srv.SetServing(false)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		watchBrowser(gctx, mgr, cfg.browserStart, srv, ready, logger)
		return nil
	})
	// Artifacts past CHECKER_ARTIFACTS_MAX_AGE go even while no check
	// runs (CHECKER_LOOP=false, nothing due).
	g.Go(func() error {
		driver.SweepArtifacts(gctx)
		return nil
	})
	if cfg.loop {
		g.Go(func() error {
			checker.Loop(gctx)
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("stopping: no new claims; finishing the checks in flight", "grace", cfg.drain.String())
		checker.Drain(cfg.drain)
		if err := mgr.Close(); err != nil {
			logger.Warn("closing the browser", "err", err)
		}
		logger.Info("checker stopped: every lease released and every claim reported")
		return nil
	})
	return g.Wait()
}

// readiness is whether the browser starts, for health and the sessions.
type readiness struct {
	mu  sync.Mutex
	why error
}

func (r *readiness) set(err error) {
	r.mu.Lock()
	r.why = err
	r.mu.Unlock()
}

func (r *readiness) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.why
}

// errBrowserStarting is the readiness until the first start of the
// browser ends.
var errBrowserStarting = errors.New("the browser is starting")

// watchBrowser starts the browser at once, then keeps it running and
// health in step with it: NOT_SERVING until it has started and while
// Chromium cannot start. It looks every few seconds, every second while
// the browser is down.
func watchBrowser(ctx context.Context, mgr *browser.Manager, startTimeout time.Duration, srv *grpcserver.Server, ready *readiness, logger *slog.Logger) {
	healthy := false
	for first := true; ; first = false {
		if !first {
			pause := 5 * time.Second
			if !healthy {
				pause = time.Second
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
		}
		err := startBrowser(ctx, mgr, startTimeout)
		if ctx.Err() != nil {
			return
		}
		ready.set(err)
		switch {
		case err != nil && (healthy || first):
			logger.Error("the browser cannot start; health is NOT_SERVING and no check runs until it does", "err", err)
		case err == nil && first:
			logger.Info("the browser started; serving")
		case err == nil && !healthy:
			logger.Info("the browser starts again; serving")
		default:
			continue
		}
		healthy = err == nil
		srv.SetServing(healthy)
	}
}

// startBrowser starts the browser unless it runs already. It waits twice
// the start's own timeout at most (a minute at least): a start that a check
// began may be under way.
func startBrowser(ctx context.Context, mgr *browser.Manager, startTimeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max(time.Minute, 2*startTimeout))
	defer cancel()
	return mgr.Start(ctx)
}
