package cli

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

type jsonApplicant struct {
	ID             string `json:"id"`
	FullName       string `json:"full_name"`
	Email          string `json:"email"`
	PassportNumber string `json:"passport_number"`
}

type jsonRequest struct {
	ID          string `json:"id"`
	ApplicantID string `json:"applicant_id"`
	MissionCode string `json:"mission_code"`
	Status      string `json:"status"`
}

type jsonEvent struct {
	Cursor  string      `json:"cursor"`
	Type    string      `json:"type"`
	Request jsonRequest `json:"request"`
}

func TestApplicantsAndRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	day := func(d int) string { return time.Now().AddDate(0, 0, d).Format("2006-01-02") }

	// The passport number comes from stdin, never from argv.
	r := b.slotctl(t, "ab123456\n", "-o", "json", "applicants", "add", "--name", "Ada Lovelace", "--email", "ada@example.com",
		"--phone", "+44123456789", "--read-passport", "--nationality", "gb", "--born", "1990-12-10").must(t)
	ada := decodeJSON[jsonApplicant](t, r.stdout)
	if ada.ID == "" || ada.FullName != "Ada Lovelace" {
		t.Fatalf("created %+v", ada)
	}
	if strings.Contains(strings.ToUpper(r.stdout+r.stderr), "AB123456") {
		t.Errorf("add printed the passport number:\n%s%s", r.stdout, r.stderr)
	}
	// --passport is refused, saying why and what to use, without echoing
	// the number and without creating anyone.
	refused := b.slotctl(t, "", "applicants", "add", "--name", "Bob", "--email", "bob@example.com", "--passport", "zz987654")
	refused.fails(t, 2, "--passport is refused", "shell's history", "--read-passport")
	if strings.Contains(strings.ToUpper(refused.stdout+refused.stderr), "ZZ987654") {
		t.Errorf("the refusal echoed the passport number: %s", refused.stderr)
	}
	b.slotctl(t, "", "applicants", "add", "--name", "Bob", "--email", "bob@example.com", "--read-passport").fails(t, 2, "no passport number")
	if r := b.slotctl(t, "", "applicants", "list").must(t); strings.Contains(r.stdout, "bob@example.com") {
		t.Errorf("a refused add created the applicant:\n%s", r.stdout)
	}
	b.slotctl(t, "", "applicants", "add", "--name", "", "--email", "nope").fails(t, 1, "InvalidArgument", "full_name:", "email:")

	r = b.slotctl(t, "", "applicants", "list").must(t)
	if !strings.Contains(r.stdout, "ada@example.com") || strings.Contains(r.stdout, "AB123456") {
		t.Errorf("list shows the applicant without the passport number:\n%s", r.stdout)
	}
	r = b.slotctl(t, "", "-o", "json", "applicants", "get", ada.ID).must(t)
	if got := decodeJSON[jsonApplicant](t, r.stdout); got.PassportNumber != "AB123456" {
		t.Errorf("get: %+v", got)
	}

	create := func(mission string) jsonRequest {
		t.Helper()
		r := b.slotctl(t, "", "-o", "json", "requests", "create", "--applicant", ada.ID, "--mission", mission,
			"--centre", "london", "--category", "tourism", "--from", day(10), "--to", day(40)).must(t)
		return decodeJSON[jsonRequest](t, r.stdout)
	}
	fra, bel := create("fra"), create("bel")
	if fra.Status != "REQUEST_STATUS_PENDING" || fra.ApplicantID != ada.ID {
		t.Errorf("created %+v", fra)
	}
	b.slotctl(t, "", "requests", "create", "--applicant", ada.ID, "--mission", "FR!", "--centre", "x", "--category", "y",
		"--from", day(5), "--to", day(1)).fails(t, 1, "mission_code:", "earliest_date:")

	r = b.slotctl(t, "", "-o", "json", "requests", "cancel", bel.ID).must(t)
	if got := decodeJSON[jsonRequest](t, r.stdout); got.Status != "REQUEST_STATUS_CANCELLED" {
		t.Errorf("cancelled: %+v", got)
	}
	r = b.slotctl(t, "", "-o", "json", "requests", "list", "--status", "pending").must(t)
	if got := decodeJSON[[]jsonRequest](t, r.stdout); len(got) != 1 || got[0].ID != fra.ID {
		t.Errorf("pending: %+v", got)
	}
	r = b.slotctl(t, "", "requests", "list", "--mission", "bel").must(t)
	if !strings.Contains(r.stdout, bel.ID) || !strings.Contains(r.stdout, "cancelled") || strings.Contains(r.stdout, fra.ID) {
		t.Errorf("bel requests:\n%s", r.stdout)
	}
	r = b.slotctl(t, "", "requests", "get", fra.ID).must(t)
	if !strings.Contains(r.stdout, "pending") || !strings.Contains(r.stdout, day(10)+".."+day(40)) {
		t.Errorf("get:\n%s", r.stdout)
	}
	b.slotctl(t, "", "requests", "list", "--status", "lost").fails(t, 2, "pending", "slot_found")

	t.Run("EventsFollowTailsAndResumes", func(t *testing.T) {
		var out testkit.SyncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- Run(ctx, []string{"--requests", b.rqAddr, "--token-file", b.adminToken, "-o", "json", "events", "follow"},
				IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }})
		}()
		// Past events first (two created, one cancelled), then a live one.
		waitFor(t, &out, 3)
		live := create("nld")
		events := waitFor(t, &out, 4)
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("follow ended with %d, want 0 on interrupt:\n%s", code, out.String())
		}
		if events[2].Type != "EVENT_TYPE_CANCELLED" || events[3].Type != "EVENT_TYPE_CREATED" || events[3].Request.ID != live.ID {
			t.Errorf("events: %+v", events)
		}
		// Resuming after the third event gives only the fourth.
		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		var out2 testkit.SyncBuffer
		go func() {
			done <- Run(ctx2, []string{"--requests", b.rqAddr, "--token-file", b.adminToken, "-o", "json", "events", "follow", "--after", events[2].Cursor},
				IO{Stdin: strings.NewReader(""), Stdout: &out2, Stderr: &out2, Getenv: func(string) string { return "" }})
		}()
		resumed := waitFor(t, &out2, 1)
		time.Sleep(200 * time.Millisecond)
		cancel2()
		<-done
		if resumed[0].Request.ID != live.ID || strings.Count(strings.TrimSpace(out2.String()), "\n") != 0 {
			t.Errorf("resumed after %s:\n%s", events[2].Cursor, out2.String())
		}
	})

	t.Run("EventsFollowResumesAcrossARestart", func(t *testing.T) {
		var out, errOut testkit.SyncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan int, 1)
		go func() {
			done <- Run(ctx, []string{"--requests", b.rqAddr, "--token-file", b.adminToken, "-o", "json", "events", "follow"},
				IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
		}()
		before := len(waitFor(t, &out, 4))
		b.restartRequests(t)
		after := create("esp")
		events := waitFor(t, &out, before+1)
		cancel()
		<-done
		if last := events[len(events)-1]; last.Request.ID != after.ID || len(events) != before+1 {
			t.Errorf("after the restart: %d events (want %d), last %+v", len(events), before+1, last)
		}
		if !strings.Contains(errOut.String(), "resuming after cursor") {
			t.Errorf("stderr does not say the stream resumed:\n%s", errOut.String())
		}
	})

	t.Run("DeleteCancelsPendingRequests", func(t *testing.T) {
		pending := decodeJSON[[]jsonRequest](t, b.slotctl(t, "", "-o", "json", "requests", "list", "--status", "pending", "--applicant", ada.ID).must(t).stdout)
		r := b.slotctl(t, "", "applicants", "delete", ada.ID).must(t)
		if !strings.Contains(r.stdout, fmt.Sprintf("cancelled %d pending requests", len(pending))) || len(pending) == 0 {
			t.Errorf("delete:\n%s", r.stdout)
		}
		b.slotctl(t, "", "applicants", "get", ada.ID).fails(t, 1, "NotFound")
	})
}

// waitFor waits until out holds n JSON event lines and returns them.
func waitFor(t *testing.T, out *testkit.SyncBuffer, n int) []jsonEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var events []jsonEvent
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if strings.HasPrefix(line, "{") {
				events = append(events, decodeJSON[jsonEvent](t, line))
			}
		}
		if len(events) >= n {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d events, got:\n%s", n, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRequestsListShowsApplicantNames: the table names each request's
// applicant, looked up once for the page rather than once per row (counted
// by Requests' own metrics).
func TestRequestsListShowsApplicantNames(t *testing.T) {
	t.Parallel()
	b := setup(t)
	metricsAddr := grpcservertest.FreeAddr(t)
	b.rqEnv = append(b.rqEnv, "METRICS_ADDR="+metricsAddr)
	b.restartRequests(t)
	ctx := context.Background()
	day := func(d int) string { return time.Now().AddDate(0, 0, d).Format("2006-01-02") }

	var ids []string
	for _, name := range []string{"Ada Lovelace", "Grace Hopper"} {
		ap, err := b.rq.CreateApplicant(ctx, &rqv1.CreateApplicantRequest{
			FullName: name, Email: strings.ToLower(strings.Fields(name)[0]) + "@example.com", Nationality: "GB",
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ap.GetApplicant().GetId())
	}
	for _, c := range []struct{ applicant, mission string }{{ids[0], "fra"}, {ids[0], "bel"}, {ids[1], "fra"}} {
		_, err := b.rq.CreateAppointmentRequest(ctx, &rqv1.CreateAppointmentRequestRequest{
			ApplicantId: c.applicant, MissionCode: c.mission, Centre: "london", VisaCategory: "tourism",
			EarliestDate: day(10), LatestDate: day(40),
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	r := b.slotctl(t, "", "requests", "list").must(t)
	if strings.Count(r.stdout, "Ada Lovelace") != 2 || strings.Count(r.stdout, "Grace Hopper") != 1 {
		t.Errorf("requests list does not name the applicants:\n%s", r.stdout)
	}
	for _, id := range ids {
		if strings.Contains(r.stdout, id) {
			t.Errorf("requests list shows applicant id %s:\n%s", id, r.stdout)
		}
	}
	grpcservertest.WantMetrics(t, metricsAddr, `grpc_server_handled_total{grpc_code="OK",grpc_method="ListApplicants",`+
		`grpc_service="slotwatch.requests.v1.RequestsService",grpc_type="unary"} 1`+"\n")

	// JSON stays the API's own shape, for scripts.
	r = b.slotctl(t, "", "-o", "json", "requests", "list").must(t)
	if got := decodeJSON[[]jsonRequest](t, r.stdout); len(got) != 3 || got[0].ApplicantID != ids[0] {
		t.Errorf("json list: %+v", got)
	}
}

// TestRequestsBookAndResume: `requests resume` watches a SLOT_FOUND request
// again without announcing the slot it missed, `requests book` ends it,
// and each refuses a request in the wrong state with the reason.
func TestRequestsBookAndResume(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Every check below claims the mission again at once.
	b.rqEnv = append(b.rqEnv, "REQUESTS_CHECK_INTERVAL=0s")
	b.restartRequests(t)
	ctx := testkit.Context(t)
	day := func(d int) string { return time.Now().UTC().AddDate(0, 0, d).Format("2006-01-02") }
	ap, err := b.rq.CreateApplicant(ctx, &rqv1.CreateApplicantRequest{FullName: "Ada Lovelace", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := b.rq.CreateAppointmentRequest(ctx, &rqv1.CreateAppointmentRequestRequest{
		ApplicantId: ap.GetApplicant().GetId(), MissionCode: "fra", Centre: "paris", VisaCategory: "tourism",
		EarliestDate: day(10), LatestDate: day(40),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := req.GetRequest().GetId()
	check := func(date string) int {
		t.Helper()
		claims, err := b.rq.ClaimDueMissions(ctx, &rqv1.ClaimDueMissionsRequest{CheckerId: "c1", MaxMissions: 1})
		if err != nil || len(claims.GetClaims()) != 1 {
			t.Fatalf("claim: %v, %v", claims, err)
		}
		resp, err := b.rq.ReportCheckResult(ctx, &rqv1.ReportCheckResultRequest{
			ClaimId: claims.GetClaims()[0].GetClaimId(), Outcome: rqv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, AccountId: 1,
			Slots: []*rqv1.Slot{{Centre: "paris", VisaCategory: "tourism", Date: date, Time: "09:00"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetMatched())
	}

	b.slotctl(t, "", "requests", "book", id).fails(t, 1, "SLOT_FOUND", "PENDING", "FailedPrecondition")
	if check(day(12)) != 1 {
		t.Fatal("the first slot did not match")
	}
	r := b.slotctl(t, "", "-o", "json", "requests", "resume", id).must(t)
	if got := decodeJSON[jsonRequest](t, r.stdout); got.Status != "REQUEST_STATUS_PENDING" {
		t.Fatalf("resumed: %+v", got)
	}
	if check(day(12)) != 0 {
		t.Fatal("the missed slot was announced again")
	}
	if check(day(13)) != 1 {
		t.Fatal("a new slot did not match")
	}
	r = b.slotctl(t, "", "requests", "book", id).must(t)
	if !strings.Contains(r.stdout, "booked") || !strings.Contains(r.stdout, "Ada Lovelace") {
		t.Errorf("book printed:\n%s", r.stdout)
	}
	b.slotctl(t, "", "requests", "book", id).must(t) // a retry is fine
	b.slotctl(t, "", "requests", "resume", id).fails(t, 1, "ResumeWatching needs a SLOT_FOUND request; this one is BOOKED")
	b.slotctl(t, "", "requests", "resume", "nope").fails(t, 1, "id: must be a UUID")
}

// failingNames is a Requests that cancels any request and cannot list
// applicants: the name lookup after a change fails.
type failingNames struct {
	rqv1.UnimplementedRequestsServiceServer
}

func (failingNames) CancelAppointmentRequest(_ context.Context, req *rqv1.CancelAppointmentRequestRequest) (*rqv1.CancelAppointmentRequestResponse, error) {
	return &rqv1.CancelAppointmentRequestResponse{Request: &rqv1.AppointmentRequest{
		Id: req.GetId(), ApplicantId: "applicant-7", MissionCode: "fra", Status: rqv1.RequestStatus_REQUEST_STATUS_CANCELLED,
	}}, nil
}

func (failingNames) ListApplicants(context.Context, *rqv1.ListApplicantsRequest) (*rqv1.ListApplicantsResponse, error) {
	return nil, status.Error(codes.Unavailable, "applicants are away")
}

// TestRequestsCancelSucceedsWithoutTheApplicantsName: the cancel went
// through, so slotctl says so (naming the applicant by id) even when the
// lookup of the name fails.
func TestRequestsCancelSucceedsWithoutTheApplicantsName(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rqv1.RegisterRequestsServiceServer(srv, failingNames{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	r := runSlotctl(context.Background(), strings.NewReader(""), nil, "--requests", lis.Addr().String(), "requests", "cancel", "req-1").must(t)
	if !strings.Contains(r.stdout, "req-1") || !strings.Contains(r.stdout, "applicant-7") || !strings.Contains(r.stdout, "cancelled") {
		t.Errorf("cancel printed:\n%s", r.stdout)
	}
}

// manySlots is a Requests whose one request matched 45 slots, of which it
// kept the earliest 20 (as Requests does).
type manySlots struct {
	rqv1.UnimplementedRequestsServiceServer
}

func (manySlots) ListAppointmentRequests(context.Context, *rqv1.ListAppointmentRequestsRequest) (*rqv1.ListAppointmentRequestsResponse, error) {
	r := &rqv1.AppointmentRequest{Id: "req-1", ApplicantId: "applicant-7", MissionCode: "fra", Centre: "paris",
		Status: rqv1.RequestStatus_REQUEST_STATUS_SLOT_FOUND, MatchedSlotCount: 45}
	for day := 1; day <= 20; day++ {
		r.MatchedSlots = append(r.MatchedSlots, &rqv1.Slot{Centre: "paris", Date: fmt.Sprintf("2030-07-%02d", day), Time: "09:30"})
	}
	return &rqv1.ListAppointmentRequestsResponse{Requests: []*rqv1.AppointmentRequest{r}}, nil
}

func (manySlots) ListApplicants(context.Context, *rqv1.ListApplicantsRequest) (*rqv1.ListApplicantsResponse, error) {
	return &rqv1.ListApplicantsResponse{}, nil
}

// TestRequestsListCountsTheSlotsNotKept: the table lists the slots
// Requests kept and says how many more matched.
func TestRequestsListCountsTheSlotsNotKept(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rqv1.RegisterRequestsServiceServer(srv, manySlots{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	r := runSlotctl(context.Background(), strings.NewReader(""), nil, "--requests", lis.Addr().String(), "requests", "list").must(t)
	if !strings.Contains(r.stdout, "2030-07-20 09:30, and 25 more") {
		t.Errorf("list printed:\n%s\nwant the 20 slots kept, then \"and 25 more\"", r.stdout)
	}
}
