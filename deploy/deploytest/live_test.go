package deploytest

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/proctest"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// binDir holds the accountpool, requests, checker and notifier binaries, built once
// by TestMain: the metric names are read from the services as they ship.
var binDir string

func TestMain(m *testing.M) {
	const race = false // the metrics are what is tested here, not the services' races
	os.Exit(proctest.RunWithBinaries(m, &binDir, "deploytest-bin", race,
		"github.com/slotwatch/slotwatch/services/accountpool/cmd/accountpool",
		"github.com/slotwatch/slotwatch/services/requests/cmd/requests",
		"github.com/slotwatch/slotwatch/services/checker/cmd/checker",
		"github.com/slotwatch/slotwatch/services/notifier/cmd/notifier"))
}

// exported is what the services' /metrics pages hold: every series name a
// query can select (a histogram's _bucket, _sum and _count, a summary's
// _sum and _count besides its quantiles), each with the labels its
// samples carry.
type exported map[string]map[string]bool

// scrapeLabels are the labels Prometheus adds to every series it scrapes
// (from the target and the ServiceMonitor), which no /metrics page shows.
var scrapeLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// scrapeSeries are the series Prometheus writes itself for each target.
var scrapeSeries = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

func (e exported) add(mf *dto.MetricFamily) {
	names := []string{mf.GetName()}
	extra := map[string]bool{}
	switch mf.GetType() {
	case dto.MetricType_HISTOGRAM:
		names = []string{mf.GetName() + "_bucket", mf.GetName() + "_sum", mf.GetName() + "_count"}
		extra["le"] = true
	case dto.MetricType_SUMMARY:
		names = append(names, mf.GetName()+"_sum", mf.GetName()+"_count")
		extra["quantile"] = true
	}
	for _, n := range names {
		if e[n] == nil {
			e[n] = map[string]bool{}
		}
		for l := range extra {
			e[n][l] = true
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				e[n][l.GetName()] = true
			}
		}
	}
}

// liveMetrics runs AccountPool, Requests and a Checker (auth off: they
// listen on loopback only) on a fresh database, against portalsim, makes
// them do one real check with Chromium, and returns what their /metrics
// pages then hold.
//
// The check is what makes the answer whole: the services pre-initialise
// the series of a label they know every value of (an Acquire's result, a
// request's status), but the pool's releases and the Checker's checks are
// labelled by mission, and a family with no series yet is absent from the
// exposition altogether (no HELP or TYPE line either). A metric that only
// exists once a check has run is found here all the same.
func liveMetrics(t *testing.T) exported {
	t.Helper()
	dbURL := pgtest.NewURL(t)
	common := []string{
		"DATABASE_URL=" + dbURL, "LISTEN_ADDR=127.0.0.1:0", "LOG_LEVEL=info",
		"AUTH_TOKENS_FILE=", "TLS_CERT_FILE=", "TLS_KEY_FILE=", "TLS_CA_FILE=", "RATE_LIMIT_RPS=0",
	}
	var scrape []string
	start := func(name string, env ...string) *proctest.Proc {
		metrics := grpcservertest.FreeAddr(t)
		scrape = append(scrape, metrics)
		return proctest.Start(t, filepath.Join(binDir, name), proctest.Config{
			Env:          slices.Concat(common, []string{"METRICS_ADDR=" + metrics}, env),
			ServeTimeout: 90 * time.Second,
			StopTimeout:  time.Minute,
		})
	}
	// One after the other: each migrates its own schema at start.
	ap := start("accountpool", "ENCRYPTION_KEYSET_FILE="+grpcservertest.KeysetFile(t))
	rq := start("requests", "ENCRYPTION_KEYSET_FILE="+grpcservertest.KeysetFile(t),
		"HTTP_ADDR=127.0.0.1:0", "REQUESTS_CHECK_INTERVAL=0s")
	start("notifier", "ENCRYPTION_KEYSET_FILE="+grpcservertest.KeysetFile(t), "REQUESTS_ADDR="+rq.Addr, "AUTH_TOKEN_FILE=")

	const (
		mission, centre, category = "fra", "London", "tourism"
		email, password           = "acc1@example.com", "portal-pw-1-xxxxxx"
	)
	portal, err := sim.New(sim.Config{
		Accounts: []sim.Account{{Email: email, Password: password}},
		Missions: []sim.Mission{{Code: mission, Name: "France", Centres: []string{centre}, VisaCategories: []string{category}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	portalSrv := httptest.NewServer(portal)
	t.Cleanup(portalSrv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool := apv1.NewAccountPoolServiceClient(dialLoopback(t, ap.Addr))
	requests := rqv1.NewRequestsServiceClient(dialLoopback(t, rq.Addr))
	if _, err := pool.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: email, Password: password, Phone: "+442079460001"}); err != nil {
		t.Fatal(err)
	}
	a, err := requests.CreateApplicant(ctx, &rqv1.CreateApplicantRequest{
		FullName: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000",
		PassportNumber: "X1234567", Nationality: "gb", DateOfBirth: "1990-12-10",
	})
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC()
	if _, err := requests.CreateAppointmentRequest(ctx, &rqv1.CreateAppointmentRequestRequest{
		ApplicantId: a.GetApplicant().GetId(), MissionCode: mission, Centre: centre, VisaCategory: category,
		EarliestDate: today.AddDate(0, 1, 0).Format(time.DateOnly), LatestDate: today.AddDate(0, 2, 0).Format(time.DateOnly),
	}); err != nil {
		t.Fatal(err)
	}

	// A portal with a cap, so slotwatch_requests_portal_paused has its
	// series (one per portal in requests.portals); 60 a minute leaves the
	// one check alone.
	perMinute, portalName := int32(60), "sim"
	if _, err := requests.SetPortal(ctx, &rqv1.SetPortalRequest{Name: portalName, MaxChecksPerMinute: &perMinute}); err != nil {
		t.Fatal(err)
	}
	if _, err := requests.UpsertMission(ctx, &rqv1.UpsertMissionRequest{MissionCode: mission, Portal: &portalName}); err != nil {
		t.Fatal(err)
	}

	ck := start("checker",
		"ACCOUNTPOOL_ADDR="+ap.Addr, "REQUESTS_ADDR="+rq.Addr, "AUTH_TOKEN_FILE=",
		"PORTAL_BASE_URL="+portalSrv.URL, "CHECKER_LOOP=false", "CHECKER_ID=deploytest",
		"CHECKER_ARTIFACTS_DIR="+t.TempDir(),
		// Chromium cannot be sandboxed as root; as any other user it is.
		"CHROME_NO_SANDBOX="+strconv.FormatBool(os.Geteuid() == 0))
	ckConn := dialLoopback(t, ck.Addr)
	// The Checker serves before its browser has started, NOT_SERVING
	// until then.
	for health := healthpb.NewHealthClient(ckConn); ; time.Sleep(200 * time.Millisecond) {
		h, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the Checker is not SERVING: %v, %v", h, err)
		}
	}
	checker := checkerv1.NewCheckerServiceClient(ckConn)
	resp, err := checker.RunSession(ctx, &checkerv1.RunSessionRequest{})
	if err != nil {
		t.Fatalf("RunSession: %v", err)
	}
	if r := resp.GetSession().GetResults(); len(r) != 1 || r[0].GetOutcome() != "no_slot" {
		t.Fatalf("the session's results are %v, want one no_slot: a check of the portal", r)
	}

	e := exported{}
	for _, addr := range scrape {
		for _, mf := range scrapeMetrics(t, addr) {
			e.add(mf)
		}
	}
	return e
}

func dialLoopback(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	opts, err := auth.DialOptions(addr, auth.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// scrapeMetrics reads and parses the text exposition at addr's /metrics.
func scrapeMetrics(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", addr, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s/metrics: %v", addr, err)
	}
	return mfs
}

// TestPromQLNamesOnlyExportedMetrics: every metric an alert, a dashboard
// panel or the runbook's PromQL selects is one the running services export (or Prometheus writes
// for each scrape), with the labels its matchers name; an alert on a
// misspelt metric would never fire, and a panel would stay empty.
func TestPromQLNamesOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	exprs := slices.Concat(ruleExprs(t), dashboardExprs(t, readDashboard(t)), docsExprs(t))
	live := liveMetrics(t)
	for _, name := range scrapeSeries {
		live[name] = map[string]bool{}
	}
	for _, e := range exprs {
		for _, s := range parsePromQL(t, e) {
			labels, ok := live[s.metric]
			if !ok {
				t.Errorf("%s: %s is not a metric the services export (read from their /metrics after a check)", e.where, s.metric)
				continue
			}
			for _, l := range s.labels {
				if !labels[l] && !slices.Contains(scrapeLabels, l) {
					t.Errorf("%s: %s has no label %s (it has %v)", e.where, s.metric, l, slices.Sorted(maps.Keys(labels)))
				}
			}
		}
	}
}
