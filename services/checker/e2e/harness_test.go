// Package e2e plays the whole system: the real AccountPool, Requests and
// Checker binaries, built once by TestMain, on a fresh Postgres database
// per test, with auth on; real Chromium; portalsim in this process, so a
// test can change the portal's accounts, slots and behaviours directly and
// read its login record.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/checker/profiles"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/proctest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// binDir holds the accountpool, requests and checker binaries.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(proctest.RunWithBinaries(m, &binDir, "checker-e2e-bin", raceEnabled,
		"github.com/slotwatch/slotwatch/services/accountpool/cmd/accountpool",
		"github.com/slotwatch/slotwatch/services/requests/cmd/requests",
		"github.com/slotwatch/slotwatch/services/checker/cmd/checker"))
}

// Step timeouts of the tests' portal profile: shorter than the shipped
// profile's, so that "slower than the step timeout" costs less, yet far
// above a page's time on a busy two-core machine running Chromium for
// several tests.
const (
	pageTimeout = 20 * time.Second
	slowerThanA = 30 * time.Second // a portal answer slower than pageTimeout
)

// system is AccountPool, Requests and portalsim, ready for checkers.
type system struct {
	t       *testing.T
	dir     string
	dbURL   string
	tokens  string // the services' AUTH_TOKENS_FILE
	admin   string // token files
	checker string
	reader  string
	ap      apv1.AccountPoolServiceClient
	rq      rqv1.RequestsServiceClient
	apAddr  string
	rqAddr  string
	sim     *sim.Sim
	simURL  string
	profile string // PORTAL_PROFILE_FILE
	// applicant owns every request.
	applicant string
	// hits records the slot pages the portal served.
	hits *portalHits
}

// portalHit is one slot page or slot API request, as the portal saw it.
type portalHit struct {
	mission, session string // session: the portal's session cookie
	start, end       time.Time
}

// portalHits records, in the portal, when each portal session used each
// mission's slot pages: the ground truth of "checking a mission".
type portalHits struct {
	mu   sync.Mutex
	hits []portalHit
}

func (p *portalHits) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) >= 3 && parts[0] == "api" {
			parts = parts[1:]
		}
		if len(parts) != 3 || parts[0] != "missions" || parts[2] != "slots" {
			next.ServeHTTP(w, r)
			return
		}
		h := portalHit{mission: parts[1], start: time.Now()}
		if c, err := r.Cookie("psim_session"); err == nil {
			h.session = c.Value
		}
		next.ServeHTTP(w, r)
		h.end = time.Now()
		p.mu.Lock()
		p.hits = append(p.hits, h)
		p.mu.Unlock()
	})
}

func (p *portalHits) all() []portalHit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.hits)
}

type options struct {
	// poolEnv is added to AccountPool's environment (POOL_COOLDOWN...).
	poolEnv []string
	// family is the portal portalsim looks like; the checker reads it with
	// the family's shipped profile (classic: portalsim's).
	family sim.Family
}

// families are portalsim's portal families, for tests run on each.
var families = []sim.Family{sim.Classic, sim.VFS, sim.TLS, sim.AIS}

// shippedProfile is the name of the shipped profile of a family.
func shippedProfile(f sim.Family) string {
	if f == sim.Classic {
		return "portalsim"
	}
	return string(f)
}

func newSystem(t *testing.T, o options) *system {
	t.Helper()
	dir := t.TempDir()
	s := &system{t: t, dir: dir, dbURL: pgtest.NewURL(t), tokens: authtest.TokensFile(t)}
	s.admin = authtest.WriteFile(t, "admin.token", authtest.AdminToken+"\n")
	s.checker = authtest.WriteFile(t, "checker.token", authtest.CheckerToken+"\n")
	s.reader = authtest.WriteFile(t, "reader.token", authtest.ReaderToken+"\n")

	common := []string{
		"DATABASE_URL=" + s.dbURL, "LISTEN_ADDR=127.0.0.1:0", "METRICS_ADDR=127.0.0.1:0",
		"AUTH_TOKENS_FILE=" + s.tokens, "LOG_LEVEL=info",
	}
	// One after the other: each migrates its own schema at start.
	ap := start(t, "accountpool", append(append(common, "ENCRYPTION_KEYSET_FILE="+grpcservertest.KeysetFile(t)), o.poolEnv...))
	rq := start(t, "requests", append(common, "ENCRYPTION_KEYSET_FILE="+grpcservertest.KeysetFile(t),
		"HTTP_ADDR=127.0.0.1:0", "REQUESTS_CHECK_INTERVAL=0s"))
	s.apAddr, s.rqAddr = ap.Addr, rq.Addr
	s.ap = apv1.NewAccountPoolServiceClient(dial(t, s.apAddr, s.admin))
	s.rq = rqv1.NewRequestsServiceClient(dial(t, s.rqAddr, s.admin))

	var err error
	if s.sim, err = sim.New(sim.Config{Family: o.family}); err != nil {
		t.Fatal(err)
	}
	s.hits = &portalHits{}
	srv := httptest.NewServer(s.hits.record(s.sim))
	t.Cleanup(srv.Close)
	s.simURL = srv.URL

	data, ok := profiles.Get(shippedProfile(o.family))
	if !ok {
		t.Fatalf("no shipped profile for family %s", o.family)
	}
	prof, err := profile.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if prof, err = prof.WithBaseURL(s.simURL); err != nil {
		t.Fatal(err)
	}
	prof.Timeouts = profile.Timeouts{
		Page: profile.Duration(pageTimeout), Slots: profile.Duration(pageTimeout),
		Logout: profile.Duration(3 * time.Second), Settle: profile.Duration(time.Second),
	}
	js, err := json.Marshal(prof)
	if err != nil {
		t.Fatal(err)
	}
	s.profile = authtest.WriteFile(t, "profile.json", string(js))

	a, err := s.rq.CreateApplicant(testkit.Context(t), &rqv1.CreateApplicantRequest{
		FullName: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000",
		PassportNumber: "X1234567", Nationality: "gb", DateOfBirth: "1990-12-10",
	})
	if err != nil {
		t.Fatal(err)
	}
	s.applicant = a.GetApplicant().GetId()
	return s
}

func dial(t *testing.T, addr, tokenFile string) *grpc.ClientConn {
	t.Helper()
	return authtest.Dial(t, addr, auth.ClientConfig{TokenFile: tokenFile})
}

// account is a pool account that portalsim knows too.
type account struct {
	id              int64
	email, password string
}

// addAccounts creates n accounts in the pool and in portalsim, in order,
// so their ids ascend with n.
func (s *system) addAccounts(n int) []account {
	s.t.Helper()
	var out []account
	for i := 1; i <= n; i++ {
		a := account{email: fmt.Sprintf("acc%d@example.com", i), password: fmt.Sprintf("portal-pw-%d-%s", i, strings.Repeat("x", 6))}
		resp, err := s.ap.CreateAccount(testkit.Context(s.t), &apv1.CreateAccountRequest{Email: a.email, Password: a.password, Phone: fmt.Sprintf("+4420794600%02d", i)})
		if err != nil {
			s.t.Fatal(err)
		}
		a.id = resp.GetAccount().GetId()
		if err := s.sim.PutAccount(sim.Account{Email: a.email, Password: a.password}); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// The date window of every request, and a date inside it.
var (
	today     = time.Now().UTC()
	earliest  = today.AddDate(0, 1, 0).Format(time.DateOnly)
	latest    = today.AddDate(0, 2, 0).Format(time.DateOnly)
	slotDate  = today.AddDate(0, 1, 10).Format(time.DateOnly)
	centre    = "London"
	visaCateg = "tourism"
)

// addMission opens the mission in portalsim (centre London, category
// tourism, no slot) and creates one pending request for it.
func (s *system) addMission(code string) *rqv1.AppointmentRequest {
	s.t.Helper()
	if err := s.sim.PutMission(sim.Mission{Code: code, Name: code, Centres: []string{centre}, VisaCategories: []string{visaCateg}}); err != nil {
		s.t.Fatal(err)
	}
	r, err := s.rq.CreateAppointmentRequest(testkit.Context(s.t), &rqv1.CreateAppointmentRequestRequest{
		ApplicantId: s.applicant, MissionCode: code, Centre: centre, VisaCategory: visaCateg,
		EarliestDate: earliest, LatestDate: latest,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return r.GetRequest()
}

// putSlotThroughAdminAPI adds a free slot the way an operator (or the
// demo) does: portalsim's JSON admin API.
func (s *system) putSlotThroughAdminAPI(mission, date string) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"mission": mission, "centre": centre, "visa_category": visaCateg,
		"slots": []sim.Slot{{Centre: centre, VisaCategory: visaCateg, Date: date, Time: "09:30"}}})
	req, err := http.NewRequest(http.MethodPut, s.simURL+"/admin/slots", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("PUT /admin/slots: %s", resp.Status)
	}
}

// checkerEnv is a checker's environment on this system; extra settings
// come last and win.
func (s *system) checkerEnv(id string, extra ...string) []string {
	return append([]string{
		"LISTEN_ADDR=127.0.0.1:0", "METRICS_ADDR=" + grpcservertest.FreeAddr(s.t),
		"ACCOUNTPOOL_ADDR=" + s.apAddr, "REQUESTS_ADDR=" + s.rqAddr,
		"AUTH_TOKEN_FILE=" + s.checker, "AUTH_TOKENS_FILE=" + s.tokens, "LOG_LEVEL=info",
		"PORTAL_PROFILE_FILE=" + s.profile, "PORTAL_BASE_URL=" + s.simURL,
		"CHECKER_ARTIFACTS_DIR=" + filepath.Join(s.dir, "artifacts-"+id), "CHECKER_ID=" + id,
		// The opt-in a checker run as root needs (Chromium cannot be
		// sandboxed as root); as any other user it runs sandboxed.
		"CHROME_NO_SANDBOX=" + strconv.FormatBool(os.Geteuid() == 0),
		// Chromium took more than the default 30 s to start at load 25-44
		// on two cores: the tests' checkers wait longer under load.
		"CHECKER_BROWSER_START_TIMEOUT=" + testkit.Scale(browser.DefaultStartTimeout).String(),
	}, extra...)
}

// checkerProc is a running checker binary.
type checkerProc struct {
	*proctest.Proc
	id          string
	metricsAddr string
	client      checkerv1.CheckerServiceClient
	reader      checkerv1.CheckerServiceClient
}

// startChecker starts a checker and waits until it is ready: it serves
// before its browser has started, NOT_SERVING until then.
func (s *system) startChecker(id string, extra ...string) *checkerProc {
	s.t.Helper()
	c := s.launchChecker(id, extra...)
	wait := 2 * testkit.Scale(browser.DefaultStartTimeout)
	eventually(s.t, wait, "checker "+id+" ready (/readyz)", func() bool {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + c.metricsAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

// launchChecker starts a checker without waiting for its browser.
func (s *system) launchChecker(id string, extra ...string) *checkerProc {
	s.t.Helper()
	env := s.checkerEnv(id, extra...)
	c := &checkerProc{Proc: start(s.t, "checker", env), id: id}
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "METRICS_ADDR="); ok {
			c.metricsAddr = v
		}
	}
	c.client = checkerv1.NewCheckerServiceClient(dial(s.t, c.Addr, s.admin))
	c.reader = checkerv1.NewCheckerServiceClient(dial(s.t, c.Addr, s.reader))
	return c
}

// runSession runs one session on the checker and fails the test unless
// it succeeds.
func (c *checkerProc) runSession(t *testing.T) *checkerv1.SessionSummary {
	t.Helper()
	return c.runSessionMax(t, 0)
}

func (c *checkerProc) runSessionMax(t *testing.T, max int32) *checkerv1.SessionSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resp, err := c.client.RunSession(ctx, &checkerv1.RunSessionRequest{MaxMissions: max})
	if err != nil {
		t.Fatalf("RunSession: %v", err)
	}
	return resp.GetSession()
}

// start runs a service binary for the test (proctest.Start), without
// TLS or rate limiting unless env sets them. The timeouts allow for
// Chromium and several services on a busy two-core machine; a service
// that needs SIGKILL to stop fails the test, since clean stops are tested.
func start(t *testing.T, name string, env []string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, filepath.Join(binDir, name), proctest.Config{
		Env:          append([]string{"TLS_CERT_FILE=", "TLS_KEY_FILE=", "TLS_CA_FILE=", "RATE_LIMIT_RPS=0"}, env...),
		ServeTimeout: 90 * time.Second,
		StopTimeout:  time.Minute,
		FailIfKilled: true,
	})
}

// query reads the test database (both services' schemas), for what no RPC
// shows: Requests' claims and checks. It uses a connection of its own,
// closed before it returns: tests poll these every 100 ms for minutes.
func query[T any](s *system, sql string, scan func(pgx.CollectableRow) (T, error)) []T {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

type claimRow struct {
	id, mission, checker string
	claimed, expires     time.Time
	reported             *time.Time
}

func (s *system) claims() []claimRow {
	s.t.Helper()
	return query(s, `SELECT id::text, mission_code, checker_id, claimed_at, expires_at, reported_at
		FROM requests.claims ORDER BY claimed_at, id`, func(r pgx.CollectableRow) (claimRow, error) {
		var c claimRow
		return c, r.Scan(&c.id, &c.mission, &c.checker, &c.claimed, &c.expires, &c.reported)
	})
}

type checkRow struct {
	claim, mission, checker, outcome, detail string
	account                                  int64
	slots                                    int // how many the portal showed
	at                                       time.Time
}

func (s *system) checks() []checkRow {
	s.t.Helper()
	return query(s, `SELECT claim_id::text, mission_code, checker_id, account_id, outcome,
		coalesce(slot_count, jsonb_array_length(slots)), detail, checked_at FROM requests.checks ORDER BY id`, func(r pgx.CollectableRow) (checkRow, error) {
		var c checkRow
		return c, r.Scan(&c.claim, &c.mission, &c.checker, &c.account, &c.outcome, &c.slots, &c.detail, &c.at)
	})
}

// usage is the whole usage log, oldest first.
func (s *system) usage() []*apv1.UsageRecord {
	s.t.Helper()
	var out []*apv1.UsageRecord
	token := ""
	for {
		resp, err := s.ap.ListUsage(testkit.Context(s.t), &apv1.ListUsageRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, resp.GetRecords()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	slices.Reverse(out)
	return out
}

func (s *system) account(id int64) *apv1.Account {
	s.t.Helper()
	resp, err := s.ap.GetAccount(testkit.Context(s.t), &apv1.GetAccountRequest{Id: id})
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.GetAccount()
}

// eventually polls cond until it holds, failing after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
