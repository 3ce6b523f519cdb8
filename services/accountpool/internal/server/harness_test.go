package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/test/bufconn"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/app"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/metrics"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/server"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/accountpool/migrations"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/faultproxy"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

type testBundle struct {
	db     *pgxpool.Pool
	dbURL  string
	pool   *app.Pool
	store  *store.Store
	clock  *testkit.Clock // nil when the servers run on the real clock
	keys   *secrets.Keyset
	keyset []byte
	logs   *testkit.SyncBuffer
	// registry is the server's metrics registry, domain metrics included.
	registry *prometheus.Registry
	// dial returns a client that sends tok (none when empty).
	dial func(t *testing.T, tok string) apv1.AccountPoolServiceClient
	// conn is the admin client's connection (health, reflection).
	conn *grpc.ClientConn
}

// The tokens every test server accepts (the client setup returns is admin).
const (
	adminToken   = authtest.AdminToken
	checkerToken = authtest.CheckerToken
	readerToken  = authtest.ReaderToken
)

type options struct {
	cfg       domain.Config
	realClock bool
	keyset    []byte
	listen    bool // run the LISTEN/NOTIFY wake-ups
	// listenVia, when set, is the fault proxy the listener's connection
	// goes through, with a short idle check.
	listenVia *faultproxy.Proxy
	// dbVia, when set, is the fault proxy every pool connection goes
	// through.
	dbVia     *faultproxy.Proxy
	rateLimit float64
	rateBurst int
	unbatched bool // the store without WithBatching (the service's default has it)
	// tracer, when set, traces the server's pool's statements.
	tracer pgx.QueryTracer
}

type option func(*options)

func withConfig(f func(*domain.Config)) option { return func(o *options) { f(&o.cfg) } }
func withRealClock() option                    { return func(o *options) { o.realClock = true } }
func withListener() option                     { return func(o *options) { o.listen = true } }
func withoutBatching() option                  { return func(o *options) { o.unbatched = true } }

// withDatabaseVia makes the server's pool connect through a fault proxy.
func withDatabaseVia(p *faultproxy.Proxy) option { return func(o *options) { o.dbVia = p } }

// withListenerVia runs the listener through a fault proxy to the database,
// pinging after 200ms without a notification.
func withListenerVia(p *faultproxy.Proxy) option {
	return func(o *options) { o.listen, o.listenVia = true, p }
}
func withKeyset(k []byte) option { return func(o *options) { o.keyset = k } }

// withTracer traces the server's pool's statements (tests that act
// between a statement's start and its answer).
func withTracer(tr pgx.QueryTracer) option { return func(o *options) { o.tracer = tr } }
func withRateLimit(rps float64, burst int) option {
	return func(o *options) { o.rateLimit, o.rateBurst = rps, burst }
}

// setup starts one AccountPool server on a fresh database and returns a
// client of it.
func setup(t testing.TB, opts ...option) (apv1.AccountPoolServiceClient, *testBundle) {
	t.Helper()
	dbURL := pgtest.NewURL(t, migrations.Set)
	return setupOn(t, dbURL, opts...)
}

// setupOn starts another AccountPool server on an existing database, as a
// second replica would.
func setupOn(t testing.TB, dbURL string, opts ...option) (apv1.AccountPoolServiceClient, *testBundle) {
	t.Helper()
	o := options{cfg: domain.DefaultConfig()}
	for _, f := range opts {
		f(&o)
	}
	if o.keyset == nil {
		var err error
		if o.keyset, err = secrets.Generate(); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := secrets.Parse(o.keyset)
	if err != nil {
		t.Fatal(err)
	}
	dbConfig, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if o.dbVia != nil {
		dbConfig.ConnConfig.DialFunc = o.dbVia.DialContext
	}
	if o.tracer != nil {
		dbConfig.ConnConfig.Tracer = o.tracer
	}
	db, err := pgxpool.NewWithConfig(context.Background(), dbConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	b := &testBundle{db: db, dbURL: dbURL, keys: keys, keyset: o.keyset, logs: &testkit.SyncBuffer{}}
	// The production logger (JSON, redacting) at debug level, and the
	// production chain with auth on.
	logger, err := grpcserver.NewLogger(b.logs, "debug")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{Name: "accountpool-test", Logger: logger,
		Security: grpcserver.Security{Tokens: authtest.Tokens(t), RateLimit: o.rateLimit, RateBurst: o.rateBurst},
		Policy:   server.Policy})
	b.registry = srv.Registry
	m := metrics.New(srv.Registry, func(ctx context.Context) (domain.PoolStatus, error) { return b.pool.PoolStatus(ctx) }, logger)
	appOpts := []app.Option{app.WithLogger(logger), app.WithMetrics(m)}
	if !o.realClock {
		b.clock = testkit.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
		appOpts = append(appOpts, app.WithClock(b.clock.Now))
	}
	listenConfig := db.Config().ConnConfig.Copy()
	if o.listenVia != nil {
		listenConfig.DialFunc = o.listenVia.DialContext
		appOpts = append(appOpts, app.WithListenIdleCheck(200*time.Millisecond))
	}
	var storeOpts []store.Option
	if !o.unbatched {
		storeOpts = append(storeOpts, store.WithBatching())
	}
	b.store = store.New(db, storeOpts...)
	b.pool = app.New(b.store, keys, o.cfg, appOpts...)
	server.New(b.pool, logger).Register(srv.GRPC)
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ctx, lis, nil) }()
	if o.listen {
		go func() { _ = b.pool.Listen(ctx, listenConfig) }()
	}
	t.Cleanup(func() {
		b.pool.Stop()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})

	b.dial = func(t *testing.T, tok string) apv1.AccountPoolServiceClient {
		return apv1.NewAccountPoolServiceClient(authtest.DialBufconn(t, lis, tok))
	}
	b.conn = authtest.DialBufconn(t, lis, adminToken)
	return apv1.NewAccountPoolServiceClient(b.conn), b
}

// addAccounts creates n accounts acc1..accN and returns their ids in order.
func addAccounts(t testing.TB, c apv1.AccountPoolServiceClient, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range n {
		resp, err := c.CreateAccount(testkit.Context(t), &apv1.CreateAccountRequest{
			Email: accEmail(i + 1), Password: accPassword(i + 1), Phone: "+33123456" + strconv.Itoa(10+i),
		})
		if err != nil {
			t.Fatalf("create account %d: %v", i+1, err)
		}
		ids[i] = resp.GetAccount().GetId()
	}
	return ids
}

func accEmail(i int) string    { return "acc" + strconv.Itoa(i) + "@example.com" }
func accPassword(i int) string { return "s3cret-password-" + strconv.Itoa(i) }

func acquire(t testing.TB, c apv1.AccountPoolServiceClient, mission string) *apv1.Lease {
	t.Helper()
	resp, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: mission, Holder: "checker-test"})
	if err != nil {
		t.Fatalf("acquire %s: %v", mission, err)
	}
	return resp.GetLease()
}

func release(t *testing.T, c apv1.AccountPoolServiceClient, l *apv1.Lease, o apv1.Outcome) *apv1.Account {
	t.Helper()
	resp, err := c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), Outcome: o})
	if err != nil {
		t.Fatalf("release %s: %v", l.GetLeaseId(), err)
	}
	return resp.GetAccount()
}

func wantViolation(t *testing.T, err error, field string) {
	t.Helper()
	testkit.WantCode(t, err, codes.InvalidArgument)
	if _, ok := apierr.FieldViolations(err)[field]; !ok {
		t.Fatalf("want a field violation for %q, got %v", field, apierr.FieldViolations(err))
	}
}
