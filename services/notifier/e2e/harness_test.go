// Package e2e runs the real Requests and Notifier binaries, built once by
// TestMain, on a fresh Postgres database per test, with auth on, and a
// real HTTP receiver of webhooks in this process: what the Notifier
// promises (every delivery at least once to the receiver, once in the log)
// is checked from the receiver's side and the database's.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel/webhook"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/proctest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// binDir holds the requests and notifier binaries.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(proctest.RunWithBinaries(m, &binDir, "notifier-e2e-bin", raceEnabled,
		"github.com/slotwatch/slotwatch/services/requests/cmd/requests",
		"github.com/slotwatch/slotwatch/services/notifier/cmd/notifier"))
}

// passport is the applicant's passport number: no message, log or
// delivery record may hold it.
const passport = "X1234567"

// Secrets of the tests' webhooks (32+ characters).
const (
	hookSecret    = "whsec-contact-0123456789abcdefghijklmnop"
	rotatedSecret = "whsec-rotated-0123456789abcdefghijklmnop"
)

// system is Requests and the Notifier on one database, and a webhook
// receiver.
type system struct {
	t         *testing.T
	dbURL     string
	common    []string
	rqEnv     []string
	ntEnv     []string
	rqAddr    string
	rqProc    *proctest.Proc
	notifiers []*proctest.Proc
	rq        rqv1.RequestsServiceClient
	nt        notifierv1.NotifierServiceClient
	reader    notifierv1.NotifierServiceClient
	applicant string
	recv      *receiver
	// adminToken is the admin's token file.
	adminToken string
}

type options struct {
	// notifierEnv is added to every Notifier's environment.
	notifierEnv []string
	// notifiers is how many Notifier replicas start (default 1; 0 with
	// noNotifier).
	notifiers  int
	noNotifier bool
}

func newSystem(t *testing.T, o options) *system {
	t.Helper()
	s := &system{t: t, dbURL: pgtest.NewURL(t), recv: newReceiver(t)}
	tokens := authtest.TokensFile(t)
	admin := authtest.WriteFile(t, "admin.token", authtest.AdminToken+"\n")
	s.adminToken = admin
	reader := authtest.WriteFile(t, "reader.token", authtest.ReaderToken+"\n")
	s.common = []string{"DATABASE_URL=" + s.dbURL, "METRICS_ADDR=127.0.0.1:0", "AUTH_TOKENS_FILE=" + tokens, "LOG_LEVEL=info"}
	// A fixed port, so a restarted Requests is where the Notifier looks.
	s.rqAddr = grpcservertest.FreeAddr(t)
	s.rqEnv = append(append([]string{}, s.common...), "LISTEN_ADDR="+s.rqAddr, "ENCRYPTION_KEYSET_FILE="+grpcservertest.KeysetFile(t),
		"HTTP_ADDR=127.0.0.1:0", "REQUESTS_CHECK_INTERVAL=0s")
	s.startRequests()
	s.ntEnv = append(append(append([]string{}, s.common...), "LISTEN_ADDR=127.0.0.1:0", "ENCRYPTION_KEYSET_FILE="+grpcservertest.KeysetFile(t),
		"REQUESTS_ADDR="+s.rqAddr, "AUTH_TOKEN_FILE="+reader,
		"NOTIFIER_POLL_INTERVAL=100ms", "NOTIFIER_BACKOFF_BASE=100ms", "NOTIFIER_BACKOFF_MAX=1s",
		"NOTIFIER_LEASE=4s", "NOTIFIER_WEBHOOK_TIMEOUT=3s"), o.notifierEnv...)
	s.rq = rqv1.NewRequestsServiceClient(dial(t, s.rqAddr, admin))
	n := o.notifiers
	if n == 0 && !o.noNotifier {
		n = 1
	}
	for range n {
		s.startNotifier()
	}
	if len(s.notifiers) > 0 {
		s.nt = notifierv1.NewNotifierServiceClient(dial(t, s.notifiers[0].Addr, admin))
		s.reader = notifierv1.NewNotifierServiceClient(dial(t, s.notifiers[0].Addr, reader))
	}
	if _, err := s.rq.UpsertMission(testkit.Context(t), &rqv1.UpsertMissionRequest{MissionCode: "fra", Timezone: ptr("Europe/Paris")}); err != nil {
		t.Fatal(err)
	}
	a, err := s.rq.CreateApplicant(testkit.Context(t), &rqv1.CreateApplicantRequest{
		FullName: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000",
		PassportNumber: passport, Nationality: "gb", DateOfBirth: "1990-12-10",
	})
	if err != nil {
		t.Fatal(err)
	}
	s.applicant = a.GetApplicant().GetId()
	return s
}

func ptr[T any](v T) *T { return &v }

func start(t *testing.T, name string, env []string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, filepath.Join(binDir, name), proctest.Config{
		Env:          append([]string{"TLS_CERT_FILE=", "TLS_KEY_FILE=", "TLS_CA_FILE=", "RATE_LIMIT_RPS=0"}, env...),
		ServeTimeout: 90 * time.Second,
		StopTimeout:  time.Minute,
		FailIfKilled: true,
	})
}

func (s *system) startRequests() {
	s.t.Helper()
	s.rqProc = start(s.t, "requests", s.rqEnv)
}

func (s *system) startNotifier() *proctest.Proc {
	s.t.Helper()
	p := start(s.t, "notifier", s.ntEnv)
	s.notifiers = append(s.notifiers, p)
	return p
}

func dial(t *testing.T, addr, tokenFile string) *grpc.ClientConn {
	t.Helper()
	return authtest.Dial(t, addr, auth.ClientConfig{TokenFile: tokenFile})
}

// webhookContact adds a webhook contact of the applicant at the receiver.
func (s *system) webhookContact(lang string) *notifierv1.Contact {
	s.t.Helper()
	resp, err := s.nt.CreateContact(testkit.Context(s.t), &notifierv1.CreateContactRequest{
		ApplicantId: s.applicant, Kind: notifierv1.ContactKind_CONTACT_KIND_WEBHOOK, Address: s.recv.url + "/contact",
		Language: lang, WebhookSecret: hookSecret,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.GetContact()
}

// createRequests opens n requests for the applicant on mission fra.
func (s *system) createRequests(n int) []string {
	s.t.Helper()
	var ids []string
	for range n {
		r, err := s.rq.CreateAppointmentRequest(testkit.Context(s.t), &rqv1.CreateAppointmentRequestRequest{
			ApplicantId: s.applicant, MissionCode: "fra", Centre: "paris", VisaCategory: "tourism",
			EarliestDate: "2027-03-01", LatestDate: "2027-03-31",
		}, grpc.WaitForReady(true)) // Requests may be restarting
		if err != nil {
			s.t.Fatal(err)
		}
		ids = append(ids, r.GetRequest().GetId())
	}
	return ids
}

// findSlot claims mission fra and reports a slot every pending request's
// window holds: each becomes SLOT_FOUND, one event each. It returns how
// many matched.
func (s *system) findSlot() int {
	s.t.Helper()
	ctx := testkit.Context(s.t)
	cl, err := s.rq.ClaimDueMissions(ctx, &rqv1.ClaimDueMissionsRequest{CheckerId: "e2e", MaxMissions: 1}, grpc.WaitForReady(true))
	if err != nil {
		s.t.Fatal(err)
	}
	if len(cl.GetClaims()) != 1 {
		s.t.Fatalf("claims: %v", cl.GetClaims())
	}
	r, err := s.rq.ReportCheckResult(ctx, &rqv1.ReportCheckResultRequest{
		ClaimId: cl.GetClaims()[0].GetClaimId(), Outcome: rqv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, AccountId: 1,
		Slots: []*rqv1.Slot{{Centre: "paris", VisaCategory: "tourism", Date: "2027-03-03", Time: "09:30"}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return len(r.GetMatched())
}

// eventually polls cond until it holds or a minute passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// count reads one number from the test database.
func (s *system) count(sql string, args ...any) int {
	s.t.Helper()
	var n int
	s.query(func(ctx context.Context, conn *pgx.Conn) error { return conn.QueryRow(ctx, sql, args...).Scan(&n) }, sql)
	return n
}

// exec runs statements on the test database.
func (s *system) exec(sql string) {
	s.t.Helper()
	s.query(func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql)
		return err
	}, sql)
}

func (s *system) query(f func(context.Context, *pgx.Conn) error, sql string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := f(ctx, conn); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// hit is one POST the receiver got.
type hit struct {
	path      string
	key       string
	signature string
	body      []byte
	at        time.Time
}

// receiver is a webhook receiver: answer decides each answer (200 when
// nil), given the request and how many times its idempotency key came
// before.
type receiver struct {
	url string

	mu     sync.Mutex
	hits   []hit
	seen   map[string]int
	answer func(w http.ResponseWriter, h hit, before int)
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{seen: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		h := hit{path: req.URL.Path, key: req.Header.Get(webhook.IdempotencyHeader), signature: req.Header.Get(webhook.SignatureHeader), body: b, at: time.Now()}
		r.mu.Lock()
		before := r.seen[h.key]
		r.seen[h.key]++
		r.hits = append(r.hits, h)
		answer := r.answer
		r.mu.Unlock()
		if answer == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		answer(w, h, before)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *receiver) setAnswer(f func(w http.ResponseWriter, h hit, before int)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

func (r *receiver) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

// keys is how many distinct idempotency keys arrived.
func (r *receiver) keys() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

func deliveries(t *testing.T, c notifierv1.NotifierServiceClient, st notifierv1.DeliveryState) []*notifierv1.Delivery {
	t.Helper()
	var out []*notifierv1.Delivery
	tok := ""
	for {
		r, err := c.ListDeliveries(testkit.Context(t), &notifierv1.ListDeliveriesRequest{State: st, PageSize: 1000, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.GetDeliveries()...)
		if tok = r.GetNextPageToken(); tok == "" {
			return out
		}
	}
}

var _ = fmt.Sprintf
