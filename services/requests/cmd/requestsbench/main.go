// Command requestsbench measures claim + report cycles per second of the
// Requests service: N claimers calling ClaimDueMissions then
// ReportCheckResult over gRPC (a real server on 127.0.0.1, the platform
// interceptor chain included), against the same store SQL issued directly
// through pgx by N goroutines, in one run, on one scratch database.
//
// It reads DATABASE_URL (make bench-requests sets it), creates its own
// database there and drops it at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
	"github.com/slotwatch/slotwatch/services/requests/internal/server"
	"github.com/slotwatch/slotwatch/services/requests/internal/store"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

func main() { grpcserver.Main(run) }

type options struct {
	requests, history, missions, claimers, cycles, warmup, rounds int
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("requestsbench", flag.ContinueOnError)
	fs.IntVar(&o.requests, "requests", 10000, "pending requests")
	fs.IntVar(&o.history, "history", 50000, "requests no longer pending (expired, slot_found, cancelled) over the same missions")
	fs.IntVar(&o.missions, "missions", 200, "missions the requests spread over")
	fs.IntVar(&o.claimers, "claimers", 8, "concurrent claimers")
	fs.IntVar(&o.cycles, "cycles", 3000, "measured claim+report cycles per mode (split across claimers)")
	fs.IntVar(&o.warmup, "warmup", 300, "unmeasured cycles per mode before measuring")
	fs.IntVar(&o.rounds, "rounds", 6, "rounds the measured cycles are split into, the modes taking turns")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.rounds < 1 || o.rounds > o.cycles {
		return fmt.Errorf("-rounds %d: want 1 to -cycles (%d)", o.rounds, o.cycles)
	}
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		return errors.New("DATABASE_URL is not set: run `make bench-requests`, which starts a private Postgres")
	}

	benchURL, drop, err := scratchDatabase(ctx, dbURL)
	if err != nil {
		return err
	}
	defer drop()
	cfg, err := pgxpool.ParseConfig(benchURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = int32(2 * o.claimers)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Set.Up(ctx, pool); err != nil {
		return err
	}
	if err := seed(ctx, pool, o); err != nil {
		return err
	}

	ks, err := secrets.Generate()
	if err != nil {
		return err
	}
	keys, err := secrets.Parse(ks)
	if err != nil {
		return err
	}
	st := store.New(pool)
	a := app.New(st, keys, time.Now, app.Config{CheckInterval: 0, ClaimTTL: time.Minute})

	client, stop, err := startServer(ctx, a, st)
	if err != nil {
		return err
	}
	defer stop()

	direct := func(ctx context.Context, checker string) error {
		now := a.Now()
		claims, err := st.ClaimDueMissions(ctx, store.ClaimParams{CheckerID: checker, Max: 1, TTL: time.Minute, Now: now})
		if err != nil {
			return err
		}
		for _, c := range claims {
			res := domain.CheckResult{ClaimID: c.ID, Outcome: domain.OutcomeSlotsFound, Slots: benchSlots(now), AccountID: 1}
			now := a.Now()
			if _, _, err := st.ReportCheck(ctx, res, now, domain.DefaultWallRules, func(timezone string, reqs []domain.Request) ([]domain.Request, []domain.Request) {
				return domain.ApplyCheck(reqs, res, now, domain.Zone(timezone))
			}); err != nil {
				return err
			}
		}
		return nil
	}
	viaGRPC := func(ctx context.Context, checker string) error {
		resp, err := client.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: checker, MaxMissions: 1, ClaimTtl: durationpb.New(time.Minute)})
		if err != nil {
			return err
		}
		for _, c := range resp.GetClaims() {
			var slots []*requestsv1.Slot
			for _, s := range benchSlots(time.Now()) {
				slots = append(slots, &requestsv1.Slot{Centre: s.Centre, VisaCategory: s.VisaCategory, Date: s.Date.Format(domain.DateLayout), Time: s.Time})
			}
			if _, err := client.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
				ClaimId: c.GetClaimId(), Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, Slots: slots, AccountId: 1,
			}); err != nil {
				return err
			}
		}
		return nil
	}

	fmt.Fprintf(stdout, "requestsbench: %d pending requests and %d of history over %d missions, %d concurrent claimers, %d measured cycles per mode in %d alternating rounds (after %d warm-up), GOMAXPROCS=%d, %d CPUs\n",
		o.requests, o.history, o.missions, o.claimers, o.cycles, o.rounds, o.warmup, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintln(stdout, "cycle = ClaimDueMissions(max_missions=1) + ReportCheckResult(SLOTS_FOUND, 3 slots that match no request): both write paths, no drain")
	// The modes take turns in rounds (which goes first alternates), so that
	// load from other processes on a shared machine, which comes and goes
	// over minutes, falls on both alike instead of on whichever ran second.
	modes := []struct {
		name  string
		cycle func(context.Context, string) error
	}{{"direct pgx", direct}, {"gRPC", viaGRPC}}
	if err := reset(ctx, pool); err != nil {
		return err
	}
	for _, m := range modes {
		if _, err := measure(ctx, o.claimers, o.warmup, m.cycle); err != nil {
			return fmt.Errorf("%s warm-up: %w", m.name, err)
		}
	}
	results := map[string]result{}
	for round := range o.rounds {
		for i := range modes {
			m := modes[(i+round)%len(modes)]
			share := o.cycles / o.rounds
			if round < o.cycles%o.rounds {
				share++
			}
			r, err := measure(ctx, o.claimers, share, m.cycle)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			results[m.name] = results[m.name].add(r)
		}
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tcycles\tcycles/s\tp50\tp99\t")
	for _, name := range []string{"direct pgx", "gRPC"} {
		r := results[name]
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t\n", name, r.cycles, r.perSecond(), r.pct(0.50), r.pct(0.99))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ratio := results["gRPC"].perSecond() / results["direct pgx"].perSecond()
	verdict := "meets"
	if ratio < 0.7 {
		verdict = "BELOW"
	}
	fmt.Fprintf(stdout, "ratio gRPC/direct cycles/s: %.2f (%s the goal of >= 0.70)\n", ratio, verdict)
	return nil
}

// benchSlots are slots at the requests' centre but in a category none of
// them asked for: ReportCheckResult does all its matching work and every
// request stays PENDING, so the load is the same from first cycle to last.
func benchSlots(now time.Time) []domain.Slot {
	d := domain.Today(now, time.UTC).AddDate(0, 0, 40)
	return []domain.Slot{
		{Centre: "paris", VisaCategory: "business", Date: d, Time: "09:00"},
		{Centre: "paris", VisaCategory: "business", Date: d, Time: "09:30"},
		{Centre: "paris", VisaCategory: "student", Date: d.AddDate(0, 0, 1)},
	}
}

type result struct {
	cycles    int
	elapsed   time.Duration
	latencies []time.Duration
}

func (r result) perSecond() float64 { return float64(r.cycles) / r.elapsed.Seconds() }

// add sums two measurements of one mode.
func (r result) add(o result) result {
	lats := slices.Concat(r.latencies, o.latencies)
	slices.Sort(lats)
	return result{cycles: r.cycles + o.cycles, elapsed: r.elapsed + o.elapsed, latencies: lats}
}

func (r result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[int(p*float64(len(r.latencies)-1))].Round(10 * time.Microsecond)
}

// measure runs total cycles split across n goroutines.
func measure(ctx context.Context, n, total int, cycle func(context.Context, string) error) (result, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lats = make([]time.Duration, 0, total)
		errs []error
	)
	begin := time.Now()
	for i := range n {
		share := total / n
		if i < total%n {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			checker := fmt.Sprintf("bench-%d", i)
			local := make([]time.Duration, 0, share)
			for range share {
				t0 := time.Now()
				if err := cycle(ctx, checker); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	if len(errs) > 0 {
		return result{}, errs[0]
	}
	slices.Sort(lats)
	return result{cycles: len(lats), elapsed: elapsed, latencies: lats}, nil
}

func startServer(ctx context.Context, a *app.App, st *store.Store) (requestsv1.RequestsServiceClient, func(), error) {
	// Request logs at info are dropped, as a production LOG_LEVEL=warn
	// would; the interceptor chain still runs.
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gs := grpcserver.New(grpcserver.Config{Name: "requests-bench", Logger: logger, LargestRequestBytes: server.LargestRequestBytes})
	ctx, cancel := context.WithCancel(ctx)
	// The bench does not watch events: the feed is not run.
	feed := app.NewFeed(st, store.NewHub(st, logger), app.WatchConfig{}, nil, logger)
	server.New(a, feed, logger, gs.Stopping()).Register(gs.GRPC)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := gs.Serve(ctx, lis, nil); err != nil {
			logger.Error("serve", "error", err)
		}
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return requestsv1.NewRequestsServiceClient(conn), func() { conn.Close(); cancel(); <-done }, nil
}

// scratchDatabase creates a database for this run next to DATABASE_URL's
// and returns its URL and a function that drops it.
func scratchDatabase(ctx context.Context, serverURL string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "requestsbench_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(dctx, serverURL)
		if err != nil {
			fmt.Fprintf(os.Stderr, "requestsbench: drop %s: %v\n", name, err)
			return
		}
		defer c.Close(dctx)
		if _, err := c.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "requestsbench: drop %s: %v\n", name, err)
		}
	}
	return u.String(), drop, nil
}

// seed writes the requests straight into the tables (creating 10,000
// through the API would time the API's create path, not claims): the
// pending ones, and a history of requests that expired, found a slot or
// were cancelled, with windows in the past year, as a service that has run
// for a while holds. Every claim expires what is due first, so the history
// is what that statement must not scan.
func seed(ctx context.Context, pool *pgxpool.Pool, o options) error {
	now := time.Now().UTC()
	today := domain.Today(now, time.UTC)
	applicant := uuid.Must(uuid.NewV7())
	if _, err := pool.Exec(ctx, `INSERT INTO requests.applicants (id, full_name, email, created_at, updated_at)
		VALUES ($1, 'Bench Applicant', 'bench@example.com', $2, $2)`, applicant, now); err != nil {
		return fmt.Errorf("seed applicant: %w", err)
	}
	// Missions in three zones, so claims and expiry join each mission's
	// today as they do in production.
	if _, err := pool.Exec(ctx, `INSERT INTO requests.missions (code, timezone, created_at, updated_at)
		SELECT 'm' || i, (ARRAY['UTC', 'Asia/Tokyo', 'America/Los_Angeles'])[1 + i % 3], $2, $2
		FROM generate_series(0, $1 - 1) AS i`, o.missions, now); err != nil {
		return fmt.Errorf("seed missions: %w", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO requests.appointment_requests
		(id, applicant_id, mission_code, centre, visa_category, earliest_date, latest_date, status, created_at, updated_at)
		SELECT gen_random_uuid(), $1, 'm' || (i % $3), 'paris', 'tourism', $4::date + 30, $4::date + 60, 'pending',
		       $5::timestamptz + i * interval '1 microsecond', $5
		FROM generate_series(0, $2 - 1) AS i`, applicant, o.requests, o.missions, today, now); err != nil {
		return fmt.Errorf("seed requests: %w", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO requests.appointment_requests
		(id, applicant_id, mission_code, centre, visa_category, earliest_date, latest_date, status, created_at, updated_at)
		SELECT gen_random_uuid(), $1, 'm' || (i % $3), 'paris', 'tourism', $4::date - 365 + i % 355, $4::date - 355 + i % 355,
		       (ARRAY['expired', 'slot_found', 'cancelled'])[1 + i % 3],
		       $5::timestamptz - interval '400 days' + i * interval '1 second', $5
		FROM generate_series(0, $2 - 1) AS i`, applicant, o.history, o.missions, today, now); err != nil {
		return fmt.Errorf("seed history: %w", err)
	}
	_, err := pool.Exec(ctx, `ANALYZE`)
	return err
}

// reset puts every mission and request back to never checked, so both
// modes start from the same state.
func reset(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `
		TRUNCATE requests.checks, requests.claims;
		UPDATE requests.missions SET last_checked_at = NULL, claim_id = NULL, claim_expires_at = NULL;
		UPDATE requests.appointment_requests SET last_checked_at = NULL, check_count = 0 WHERE status = 'pending';`)
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}
