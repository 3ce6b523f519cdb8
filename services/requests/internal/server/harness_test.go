package server_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/test/bufconn"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
	"github.com/slotwatch/slotwatch/services/requests/internal/metrics"
	"github.com/slotwatch/slotwatch/services/requests/internal/server"
	"github.com/slotwatch/slotwatch/services/requests/internal/store"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// start is 2030-06-01 10:00 UTC: tests speak of dates relative to it.
var start = time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)

var (
	keysOnce sync.Once
	keys     *secrets.Keyset
)

func testKeys(t testing.TB) *secrets.Keyset {
	t.Helper()
	keysOnce.Do(func() {
		b, err := secrets.Generate()
		if err != nil {
			panic(err)
		}
		if keys, err = secrets.Parse(b); err != nil {
			panic(err)
		}
	})
	return keys
}

type serverOpts struct {
	now    func() time.Time
	cfg    app.Config
	watch  app.WatchConfig
	logger *slog.Logger
}

// testServer is one server process: the real grpcserver with the platform
// interceptor chain (auth on), served over bufconn.
type testServer struct {
	// client and conn call as admin.
	client requestsv1.RequestsServiceClient
	conn   *grpc.ClientConn
	app    *app.App
	// pool is the server's database pool.
	pool *pgxpool.Pool
	// registry is the server's metrics registry, domain metrics included.
	registry *prometheus.Registry
	// dial connects with tok as the bearer token (none when empty).
	dial func(t *testing.T, tok string) *grpc.ClientConn
	// lis is the server's listener, for a client that needs dial options
	// of its own.
	lis *bufconn.Listener
	// stop ends the server (as SIGTERM would) and waits for it.
	stop func()
}

// The tokens every test server accepts (the client setup returns is admin).
const (
	adminToken   = authtest.AdminToken
	checkerToken = authtest.CheckerToken
	readerToken  = authtest.ReaderToken
)

func startServer(t testing.TB, pool *pgxpool.Pool, o serverOpts) *testServer {
	t.Helper()
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := store.New(pool)
	gs := grpcserver.New(grpcserver.Config{Name: "requests-test", Logger: o.logger, ShutdownTimeout: 5 * time.Second,
		Security: grpcserver.Security{Tokens: authtest.Tokens(t)}, Policy: server.Policy, LargestRequestBytes: server.LargestRequestBytes})
	m := metrics.New(gs.Registry, st.CountByStatus, o.logger)
	a := app.New(st, testKeys(t), o.now, o.cfg, app.WithMetrics(m))
	gs.Registry.MustRegister(metrics.PortalsPaused(a.PausedPortals, o.logger))
	hub := store.NewHub(st, o.logger)
	feed := app.NewFeed(st, hub, o.watch, m, o.logger)
	ctx, cancel := context.WithCancel(context.Background())
	server.New(a, feed, o.logger, gs.Stopping()).Register(gs.GRPC)

	lis := bufconn.Listen(1 << 20)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = hub.Run(ctx) }()
	go func() { defer wg.Done(); _ = feed.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := gs.Serve(ctx, lis, nil); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	dial := func(t *testing.T, tok string) *grpc.ClientConn { return authtest.DialBufconn(t, lis, tok) }
	conn := authtest.DialBufconn(t, lis, adminToken)
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait(); conn.Close() }) }
	t.Cleanup(stop)
	return &testServer{client: requestsv1.NewRequestsServiceClient(conn), conn: conn, app: a, pool: pool, registry: gs.Registry, dial: dial, lis: lis, stop: stop}
}

// replicas starts one server per offset on one fresh database, as
// replicas of one deployment: each with a pool of its own, all reading the
// one clock the test moves, server i offsets[i] ahead of it (replicas(t,
// o, 0, 2*time.Second): the second replica's clock runs 2 seconds ahead of
// the first's). o.now is not used.
func replicas(t testing.TB, o serverOpts, offsets ...time.Duration) ([]*testServer, *testkit.Clock) {
	t.Helper()
	url := pgtest.NewURL(t, migrations.Set)
	clock := testkit.NewClock(start)
	servers := make([]*testServer, len(offsets))
	for i, off := range offsets {
		pool, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		o.now = func() time.Time { return clock.Now().Add(off) }
		servers[i] = startServer(t, pool, o)
	}
	return servers, clock
}

type testBundle struct {
	pool   *pgxpool.Pool
	clock  *testkit.Clock
	server *testServer
}

// setup starts one server on a fresh database with the clock at start.
// cfg.CheckInterval is 0 (always due) unless cfg says otherwise.
func setup(t testing.TB, cfg ...app.Config) (requestsv1.RequestsServiceClient, *testBundle) {
	t.Helper()
	var o serverOpts
	if len(cfg) > 0 {
		o.cfg = cfg[0]
	}
	return setupWith(t, o)
}

// setupWith is setup with server options (o.now is the bundle's clock).
func setupWith(t testing.TB, o serverOpts) (requestsv1.RequestsServiceClient, *testBundle) {
	t.Helper()
	pool := pgtest.NewPool(t, migrations.Set)
	c := testkit.NewClock(start)
	o.now = c.Now
	srv := startServer(t, pool, o)
	return srv.client, &testBundle{pool: pool, clock: c, server: srv}
}

func createApplicant(t testing.TB, c requestsv1.RequestsServiceClient) *requestsv1.Applicant {
	t.Helper()
	resp, err := c.CreateApplicant(testkit.Context(t), &requestsv1.CreateApplicantRequest{
		FullName: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000",
		PassportNumber: "X1234567", Nationality: "gb", DateOfBirth: "1990-12-10",
	})
	if err != nil {
		t.Fatalf("CreateApplicant: %v", err)
	}
	return resp.GetApplicant()
}

type reqArgs struct {
	mission, centre, category, earliest, latest string
}

func createRequest(t testing.TB, c requestsv1.RequestsServiceClient, applicantID string, a reqArgs) *requestsv1.AppointmentRequest {
	t.Helper()
	if a.mission == "" {
		a.mission = "fra"
	}
	if a.centre == "" {
		a.centre = "paris"
	}
	if a.category == "" {
		a.category = "tourism"
	}
	if a.earliest == "" {
		a.earliest = "2030-07-01"
	}
	if a.latest == "" {
		a.latest = "2030-07-10"
	}
	resp, err := c.CreateAppointmentRequest(testkit.Context(t), &requestsv1.CreateAppointmentRequestRequest{
		ApplicantId: applicantID, MissionCode: a.mission, Centre: a.centre, VisaCategory: a.category,
		EarliestDate: a.earliest, LatestDate: a.latest,
	})
	if err != nil {
		t.Fatalf("CreateAppointmentRequest: %v", err)
	}
	return resp.GetRequest()
}

// wantViolation asserts InvalidArgument naming exactly these fields.
func wantViolation(t *testing.T, err error, fields ...string) {
	t.Helper()
	testkit.WantCode(t, err, codes.InvalidArgument)
	got := apierr.FieldViolations(err)
	for _, f := range fields {
		if _, ok := got[f]; !ok {
			t.Fatalf("violations %v lack %q", got, f)
		}
	}
	if len(got) != len(fields) {
		t.Fatalf("violations %v, want exactly %v", got, fields)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
