package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/server"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

func TestPolicyCoversEveryRPC(t *testing.T) {
	t.Parallel()
	if err := server.Policy.Covers(&requestsv1.RequestsService_ServiceDesc); err != nil {
		t.Fatal(err)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	admin, b := setup(t)
	ap := createApplicant(t, admin)
	createRequest(t, admin, ap.GetId(), reqArgs{})
	checker := requestsv1.NewRequestsServiceClient(b.server.dial(t, checkerToken))
	reader := requestsv1.NewRequestsServiceClient(b.server.dial(t, readerToken))

	cl := claimOne(t, checker, "fra")
	report(t, checker, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
	_, err := checker.ListAppointmentRequests(testkit.Context(t), &requestsv1.ListAppointmentRequestsRequest{})
	testkit.WantCode(t, err, codes.PermissionDenied)
	_, err = checker.CreateApplicant(testkit.Context(t), &requestsv1.CreateApplicantRequest{FullName: "X"})
	testkit.WantCode(t, err, codes.PermissionDenied)

	// A reader lists applicants, without passport numbers, but may not
	// read one with its passport number.
	list, err := reader.ListApplicants(testkit.Context(t), &requestsv1.ListApplicantsRequest{})
	if err != nil || len(list.GetApplicants()) != 1 || list.GetApplicants()[0].GetPassportNumber() != "" {
		t.Fatalf("reader ListApplicants: %v, %v", list, err)
	}
	_, err = reader.GetApplicant(testkit.Context(t), &requestsv1.GetApplicantRequest{Id: ap.GetId()})
	testkit.WantCode(t, err, codes.PermissionDenied)
	_, err = checker.GetApplicant(testkit.Context(t), &requestsv1.GetApplicantRequest{Id: ap.GetId()})
	testkit.WantCode(t, err, codes.PermissionDenied)
	ctx, cancel := context.WithCancel(testkit.Context(t))
	s, err := reader.WatchEvents(ctx, &requestsv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatalf("reader watching: %v", err)
	}
	cancel()
	_, err = reader.ClaimDueMissions(testkit.Context(t), &requestsv1.ClaimDueMissionsRequest{CheckerId: "c", MaxMissions: 1})
	testkit.WantCode(t, err, codes.PermissionDenied)
	_, err = reader.CancelAppointmentRequest(testkit.Context(t), &requestsv1.CancelAppointmentRequestRequest{Id: ap.GetId()})
	testkit.WantCode(t, err, codes.PermissionDenied)

	anon := requestsv1.NewRequestsServiceClient(b.server.dial(t, ""))
	_, err = anon.ListApplicants(testkit.Context(t), &requestsv1.ListApplicantsRequest{})
	testkit.WantCode(t, err, codes.Unauthenticated)
	s2, err := anon.WatchEvents(testkit.Context(t), &requestsv1.WatchEventsRequest{})
	if err == nil {
		_, err = s2.Recv()
	}
	testkit.WantCode(t, err, codes.Unauthenticated)
}

// TestGatewayPassesTheCallersToken: the JSON gateway forwards the HTTP
// Authorization header, so its callers are authorized as themselves.
func TestGatewayPassesTheCallersToken(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	hs := serveGateway(t, b.server.dial(t, ""))
	do := func(method, path, body, tok string) int {
		req, err := http.NewRequestWithContext(testkit.Context(t), method, hs.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, path, body, tok string
		want                    int
	}{
		{"GET", "/v1/applicants", "", "", http.StatusUnauthorized},
		{"GET", "/v1/applicants", "", "no-such-token-0123456789abcdef", http.StatusUnauthorized},
		{"GET", "/v1/applicants", "", readerToken, http.StatusOK},
		{"POST", "/v1/applicants", `{"full_name":"Grace Hopper"}`, readerToken, http.StatusForbidden},
		{"POST", "/v1/applicants", `{"full_name":"Grace Hopper","email":"grace@example.com","nationality":"us"}`, adminToken, http.StatusOK},
	} {
		if got := do(c.method, c.path, c.body, c.tok); got != c.want {
			t.Fatalf("%s %s with %q: %d, want %d", c.method, c.path, c.tok, got, c.want)
		}
	}
}

// TestNoSecretInLogs drives every RPC with passport numbers, a password
// and bearer tokens in it (and a token nobody knows), over the real chain at
// debug level, and greps everything logged and everything /metrics shows.
func TestNoSecretInLogs(t *testing.T) {
	t.Parallel()
	logs := &testkit.SyncBuffer{}
	logger, err := grpcserver.NewLogger(logs, "debug")
	if err != nil {
		t.Fatal(err)
	}
	c := testkit.NewClock(start)
	srv := startServer(t, pgtest.NewPool(t, migrations.Set), serverOpts{now: c.Now, logger: logger})
	admin := srv.client
	checker := requestsv1.NewRequestsServiceClient(srv.dial(t, checkerToken))
	reader := requestsv1.NewRequestsServiceClient(srv.dial(t, readerToken))
	const (
		passport1 = "ZX9081726"
		passport2 = "QW5512398"
		badPass   = "PP-7781*29"
		password  = "Pa55word-portal-4471"
		unknownTk = "unknown-token-never-valid-0123456789"
	)
	secrets := []string{passport1, passport2, badPass, password, adminToken, checkerToken, readerToken, unknownTk}
	ctx := testkit.Context(t)
	ignore := func(_ any, _ error) {}

	created, err := admin.CreateApplicant(ctx, &requestsv1.CreateApplicantRequest{FullName: "Ada Lovelace", Email: "ada@example.com",
		PassportNumber: passport1, Nationality: "gb", DateOfBirth: "1990-12-10"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetApplicant().GetId()
	ignore(admin.CreateApplicant(ctx, &requestsv1.CreateApplicantRequest{FullName: "Bad", PassportNumber: badPass}))
	ignore(admin.GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: id}))
	ignore(reader.GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: id}))
	ignore(reader.ListApplicants(ctx, &requestsv1.ListApplicantsRequest{}))
	ignore(admin.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: id, PassportNumber: proto.String(passport2)}))
	ignore(admin.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: id, PassportNumber: proto.String(badPass)}))
	r, err := admin.CreateAppointmentRequest(ctx, &requestsv1.CreateAppointmentRequestRequest{ApplicantId: id, MissionCode: "fra",
		Centre: "paris", VisaCategory: "tourism", EarliestDate: "2030-07-01", LatestDate: "2030-07-10"})
	if err != nil {
		t.Fatal(err)
	}
	ignore(reader.GetAppointmentRequest(ctx, &requestsv1.GetAppointmentRequestRequest{Id: r.GetRequest().GetId()}))
	ignore(reader.ListAppointmentRequests(ctx, &requestsv1.ListAppointmentRequestsRequest{}))
	claims, err := checker.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "checker-1", MaxMissions: 5})
	if err != nil || len(claims.GetClaims()) != 1 {
		t.Fatalf("claim: %v %v", claims, err)
	}
	ignore(checker.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{ClaimId: claims.GetClaims()[0].GetClaimId(),
		Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_FAILED, AccountId: 3, Detail: "login failed with password " + password}))
	wctx, cancel := context.WithCancel(ctx)
	w, err := reader.WatchEvents(wctx, &requestsv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	ignore(admin.CancelAppointmentRequest(ctx, &requestsv1.CancelAppointmentRequestRequest{Id: r.GetRequest().GetId()}))
	ignore(admin.DeleteApplicant(ctx, &requestsv1.DeleteApplicantRequest{Id: id}))
	// Refused calls: wrong role, unknown token.
	ignore(reader.CreateApplicant(ctx, &requestsv1.CreateApplicantRequest{FullName: "Eve", PassportNumber: passport2}))
	ignore(requestsv1.NewRequestsServiceClient(srv.dial(t, unknownTk)).GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: id}))
	srv.stop() // the stream's finish line is written

	out := logs.String()
	grpcservertest.WantRequestLogs(t, out, "CreateApplicant", "GetApplicant", "ListApplicants", "UpdateApplicant", "DeleteApplicant",
		"CreateAppointmentRequest", "GetAppointmentRequest", "ListAppointmentRequests", "CancelAppointmentRequest",
		"ClaimDueMissions", "ReportCheckResult", "WatchEvents")
	grpcservertest.WantCallerRoles(t, out, "reader", "unauthenticated")
	grpcservertest.WantNoSecrets(t, out, srv.registry, secrets...)
}

func TestDomainMetricsMove(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	srv := b.server
	want := func(v float64, name string, labels ...string) {
		t.Helper()
		grpcservertest.WantMetric(t, srv.registry, v, name, labels...)
	}
	ap := createApplicant(t, c)
	r1 := createRequest(t, c, ap.GetId(), reqArgs{mission: "fra"})
	createRequest(t, c, ap.GetId(), reqArgs{mission: "deu"})
	r3 := createRequest(t, c, ap.GetId(), reqArgs{mission: "ita"})
	if _, err := c.CancelAppointmentRequest(testkit.Context(t), &requestsv1.CancelAppointmentRequestRequest{Id: r3.GetId()}); err != nil {
		t.Fatal(err)
	}
	want(2, "slotwatch_requests", "status", "pending")
	want(1, "slotwatch_requests", "status", "cancelled")
	want(0, "slotwatch_requests", "status", "slot_found")

	ctx, cancel := context.WithCancel(testkit.Context(t))
	s, err := c.WatchEvents(ctx, &requestsv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, s, 4) // 3 created, 1 cancelled
	want(1, "slotwatch_requests_watchers")
	want(4, "slotwatch_requests_events_streamed_total")

	claims := claim(t, c, 10, time.Minute)
	want(2, "slotwatch_requests_claims_total")
	for _, cl := range claims {
		if cl.GetMissionCode() == "fra" {
			report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("paris", "tourism", "2030-07-05"))
		}
	}
	want(1, "slotwatch_requests_checks_total", "outcome", "slots_found")
	want(1, "slotwatch_requests", "status", "slot_found")
	receive(t, s, 1) // slot_found
	want(5, "slotwatch_requests_events_streamed_total")

	// deu's claim is never reported: it lapses, and the next claim notices.
	b.clock.Advance(2 * time.Minute)
	want(0, "slotwatch_requests_claims_lapsed_total")
	again := claim(t, c, 10, time.Minute)
	if len(again) != 1 || again[0].GetMissionCode() != "deu" {
		t.Fatalf("reclaim: %v", again)
	}
	want(1, "slotwatch_requests_claims_lapsed_total")
	want(3, "slotwatch_requests_claims_total")
	report(t, c, again[0].GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
	want(1, "slotwatch_requests_checks_total", "outcome", "no_slot")
	// A reported claim is not lapsed when the mission is claimed next.
	b.clock.Advance(2 * time.Minute)
	claim(t, c, 10, time.Minute)
	want(1, "slotwatch_requests_claims_lapsed_total")
	_ = r1

	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for grpcservertest.Metric(t, srv.registry, "slotwatch_requests_watchers") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watcher gauge did not go back to 0")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
