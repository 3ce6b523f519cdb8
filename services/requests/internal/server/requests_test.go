package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func TestAppointmentRequests(t *testing.T) {
	t.Parallel()

	t.Run("CreateOpensPendingRequestWithCreatedEvent", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		r := createRequest(t, c, a.GetId(), reqArgs{})
		if r.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING || r.GetApplicantId() != a.GetId() ||
			r.GetEarliestDate() != "2030-07-01" || r.GetLatestDate() != "2030-07-10" || r.GetCheckCount() != 0 || r.GetLastCheckedAt() != nil {
			t.Fatalf("created = %v", r)
		}
		got, err := c.GetAppointmentRequest(testkit.Context(t), &requestsv1.GetAppointmentRequestRequest{Id: r.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetRequest(), r) {
			t.Fatalf("get = %v\nwant %v", got.GetRequest(), r)
		}
		if n := count(t, bundle.pool, `SELECT count(*) FROM requests.events WHERE type = 'created' AND request_id = $1`, r.GetId()); n != 1 {
			t.Fatalf("%d created events", n)
		}
	})

	t.Run("UnknownApplicantIsFailedPrecondition", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		_, err := c.CreateAppointmentRequest(testkit.Context(t), &requestsv1.CreateAppointmentRequestRequest{
			ApplicantId: "0190f5a4-0000-7000-8000-000000000000", MissionCode: "fra", Centre: "paris",
			VisaCategory: "tourism", EarliestDate: "2030-07-01", LatestDate: "2030-07-10",
		})
		testkit.WantCode(t, err, codes.FailedPrecondition)
		if n := count(t, bundle.pool, `SELECT (SELECT count(*) FROM requests.appointment_requests) + (SELECT count(*) FROM requests.events) + (SELECT count(*) FROM requests.missions)`); n != 0 {
			t.Fatalf("%d rows written by a failed create", n)
		}
	})

	t.Run("MissingRequestIsNotFound", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		id := "0190f5a4-0000-7000-8000-000000000000"
		_, err := c.GetAppointmentRequest(testkit.Context(t), &requestsv1.GetAppointmentRequestRequest{Id: id})
		testkit.WantCode(t, err, codes.NotFound)
		_, err = c.CancelAppointmentRequest(testkit.Context(t), &requestsv1.CancelAppointmentRequestRequest{Id: id})
		testkit.WantCode(t, err, codes.NotFound)
	})

	t.Run("ListFiltersByStatusMissionAndApplicant", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		ctx := testkit.Context(t)
		a, b := createApplicant(t, c), createApplicant(t, c)
		r1 := createRequest(t, c, a.GetId(), reqArgs{mission: "fra"})
		bundle.clock.Advance(1e6)
		r2 := createRequest(t, c, a.GetId(), reqArgs{mission: "bel"})
		bundle.clock.Advance(1e6)
		r3 := createRequest(t, c, b.GetId(), reqArgs{mission: "fra"})
		if _, err := c.CancelAppointmentRequest(ctx, &requestsv1.CancelAppointmentRequestRequest{Id: r3.GetId()}); err != nil {
			t.Fatal(err)
		}
		ids := func(req *requestsv1.ListAppointmentRequestsRequest) []string {
			t.Helper()
			resp, err := c.ListAppointmentRequests(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range resp.GetRequests() {
				out = append(out, r.GetId())
			}
			return out
		}
		for name, tc := range map[string]struct {
			req  *requestsv1.ListAppointmentRequestsRequest
			want []string
		}{
			"All":       {&requestsv1.ListAppointmentRequestsRequest{}, []string{r1.GetId(), r2.GetId(), r3.GetId()}},
			"Mission":   {&requestsv1.ListAppointmentRequestsRequest{MissionCode: "fra"}, []string{r1.GetId(), r3.GetId()}},
			"Applicant": {&requestsv1.ListAppointmentRequestsRequest{ApplicantId: a.GetId()}, []string{r1.GetId(), r2.GetId()}},
			"Status":    {&requestsv1.ListAppointmentRequestsRequest{Status: requestsv1.RequestStatus_REQUEST_STATUS_CANCELLED}, []string{r3.GetId()}},
			"Combined":  {&requestsv1.ListAppointmentRequestsRequest{MissionCode: "fra", Status: requestsv1.RequestStatus_REQUEST_STATUS_PENDING}, []string{r1.GetId()}},
		} {
			if got := ids(tc.req); len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) || got[len(got)-1] != tc.want[len(tc.want)-1] {
				t.Errorf("%s: got %v, want %v", name, got, tc.want)
			}
		}
		// Paging one at a time walks the same list.
		var paged []string
		token := ""
		for {
			resp, err := c.ListAppointmentRequests(ctx, &requestsv1.ListAppointmentRequestsRequest{PageSize: 1, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.GetRequests() {
				paged = append(paged, r.GetId())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if len(paged) != 3 || paged[0] != r1.GetId() || paged[2] != r3.GetId() {
			t.Fatalf("paged %v", paged)
		}
	})

	t.Run("CancelIsIdempotentAndOnlyForPending", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		ctx := testkit.Context(t)
		a := createApplicant(t, c)
		r := createRequest(t, c, a.GetId(), reqArgs{})
		for range 2 {
			resp, err := c.CancelAppointmentRequest(ctx, &requestsv1.CancelAppointmentRequestRequest{Id: r.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetRequest().GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_CANCELLED {
				t.Fatalf("status %s", resp.GetRequest().GetStatus())
			}
		}
		if n := count(t, bundle.pool, `SELECT count(*) FROM requests.events WHERE type = 'cancelled'`); n != 1 {
			t.Fatalf("%d cancelled events, want 1", n)
		}
		// A SLOT_FOUND request cannot be cancelled.
		found := createRequest(t, c, a.GetId(), reqArgs{mission: "bel"})
		claim := claimOne(t, c, "bel")
		report(t, c, claim.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("paris", "tourism", "2030-07-05"))
		_, err := c.CancelAppointmentRequest(ctx, &requestsv1.CancelAppointmentRequestRequest{Id: found.GetId()})
		testkit.WantCode(t, err, codes.FailedPrecondition)
	})
}

// TestBadInput covers every bad-input case of the issue: each is
// INVALID_ARGUMENT naming the field, and none writes anything.
func TestBadInput(t *testing.T) {
	t.Parallel()
	c, bundle := setup(t)
	a := createApplicant(t, c)
	good := func() *requestsv1.CreateAppointmentRequestRequest {
		return &requestsv1.CreateAppointmentRequestRequest{
			ApplicantId: a.GetId(), MissionCode: "fra", Centre: "paris", VisaCategory: "tourism",
			EarliestDate: "2030-07-01", LatestDate: "2030-07-10",
		}
	}
	goodApplicant := func() *requestsv1.CreateApplicantRequest {
		return &requestsv1.CreateApplicantRequest{FullName: "Ada", Email: "ada@example.com"}
	}
	claimID := "0190f5a4-0000-7000-8000-000000000000"
	slots := func(s ...*requestsv1.Slot) []*requestsv1.Slot { return s }

	tests := []struct {
		name   string
		call   func(context.Context) error
		fields []string
	}{
		{"RequestEarliestAfterLatest", func(ctx context.Context) error {
			r := good()
			r.EarliestDate = "2030-07-11"
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"earliest_date"}},
		{"RequestMalformedDates", func(ctx context.Context) error {
			r := good()
			r.EarliestDate, r.LatestDate = "01/07/2030", "2030-13-01"
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"earliest_date", "latest_date"}},
		{"RequestMissingDates", func(ctx context.Context) error {
			r := good()
			r.EarliestDate, r.LatestDate = "", ""
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"earliest_date", "latest_date"}},
		{"RequestWindowInThePast", func(ctx context.Context) error {
			r := good()
			r.EarliestDate, r.LatestDate = "2030-05-01", "2030-05-31"
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"latest_date"}},
		{"RequestMissionCodeUpperCase", func(ctx context.Context) error {
			r := good()
			r.MissionCode = "FRA"
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"mission_code"}},
		{"RequestMissionCodeTooLong", func(ctx context.Context) error {
			r := good()
			r.MissionCode = "abcdefghijklmnopq"
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"mission_code"}},
		{"RequestMissionCodeEmpty", func(ctx context.Context) error {
			r := good()
			r.MissionCode = ""
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"mission_code"}},
		{"RequestEmptyCentreAndCategory", func(ctx context.Context) error {
			r := good()
			r.Centre, r.VisaCategory = " ", ""
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"centre", "visa_category"}},
		{"RequestMalformedApplicantID", func(ctx context.Context) error {
			r := good()
			r.ApplicantId = "not-a-uuid"
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"applicant_id"}},
		{"ApplicantMalformedEmail", func(ctx context.Context) error {
			r := goodApplicant()
			r.Email = "ada@"
			_, err := c.CreateApplicant(ctx, r)
			return err
		}, []string{"email"}},
		{"ApplicantEmailWithDisplayName", func(ctx context.Context) error {
			r := goodApplicant()
			r.Email = "Ada <ada@example.com>"
			_, err := c.CreateApplicant(ctx, r)
			return err
		}, []string{"email"}},
		{"ApplicantEmptyNameAndEmail", func(ctx context.Context) error {
			_, err := c.CreateApplicant(ctx, &requestsv1.CreateApplicantRequest{})
			return err
		}, []string{"full_name", "email"}},
		{"ApplicantBadOptionalFields", func(ctx context.Context) error {
			r := goodApplicant()
			r.Phone, r.PassportNumber, r.Nationality, r.DateOfBirth = "call me", "12", "France", "1990-02-30"
			_, err := c.CreateApplicant(ctx, r)
			return err
		}, []string{"phone", "passport_number", "nationality", "date_of_birth"}},
		{"ApplicantBornBefore1900", func(ctx context.Context) error {
			r := goodApplicant()
			r.DateOfBirth = "1899-12-31"
			_, err := c.CreateApplicant(ctx, r)
			return err
		}, []string{"date_of_birth"}},
		{"RequestDatesFarFromToday", func(ctx context.Context) error {
			r := good()
			r.EarliestDate, r.LatestDate = "0203-07-01", "9999-12-31"
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"earliest_date", "latest_date"}},
		{"ReportSlotDatesFarFromToday", func(ctx context.Context) error {
			_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
				ClaimId: claimID, Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND,
				Slots: slots(slotP("paris", "tourism", "2019-12-31"), slotP("paris", "tourism", "2041-01-01")),
			})
			return err
		}, []string{"slots[0].date", "slots[1].date"}},
		{"ApplicantBornInTheFuture", func(ctx context.Context) error {
			r := goodApplicant()
			r.DateOfBirth = "2031-01-01"
			_, err := c.CreateApplicant(ctx, r)
			return err
		}, []string{"date_of_birth"}},
		{"UpdateApplicantEmptiesEmail", func(ctx context.Context) error {
			_, err := c.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: a.GetId(), Email: proto.String(""), FullName: proto.String(" ")})
			return err
		}, []string{"email", "full_name"}},
		{"GetApplicantMalformedID", func(ctx context.Context) error {
			_, err := c.GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: "42"})
			return err
		}, []string{"id"}},
		{"GetRequestEmptyID", func(ctx context.Context) error {
			_, err := c.GetAppointmentRequest(ctx, &requestsv1.GetAppointmentRequestRequest{})
			return err
		}, []string{"id"}},
		{"CancelMalformedID", func(ctx context.Context) error {
			_, err := c.CancelAppointmentRequest(ctx, &requestsv1.CancelAppointmentRequestRequest{Id: "x"})
			return err
		}, []string{"id"}},
		{"DeleteMalformedID", func(ctx context.Context) error {
			_, err := c.DeleteApplicant(ctx, &requestsv1.DeleteApplicantRequest{Id: "x"})
			return err
		}, []string{"id"}},
		{"ListApplicantsNegativePageSize", func(ctx context.Context) error {
			_, err := c.ListApplicants(ctx, &requestsv1.ListApplicantsRequest{PageSize: -1})
			return err
		}, []string{"page_size"}},
		{"ListApplicantsForgedPageToken", func(ctx context.Context) error {
			_, err := c.ListApplicants(ctx, &requestsv1.ListApplicantsRequest{PageToken: "bm90IGEgdG9rZW4"})
			return err
		}, []string{"page_token"}},
		{"ListApplicantsMalformedIDs", func(ctx context.Context) error {
			_, err := c.ListApplicants(ctx, &requestsv1.ListApplicantsRequest{Ids: []string{"00000000-0000-0000-0000-000000000001", "x"}})
			return err
		}, []string{"ids[1]"}},
		{"ListRequestsBadFilters", func(ctx context.Context) error {
			_, err := c.ListAppointmentRequests(ctx, &requestsv1.ListAppointmentRequestsRequest{
				Status: 99, MissionCode: "F", ApplicantId: "nope", PageSize: -5, PageToken: "!!",
			})
			return err
		}, []string{"status", "mission_code", "applicant_id", "page_size", "page_token"}},
		// The nil UUID names no applicant; as a filter it used to mean
		// none, listing every applicant's requests.
		{"ListRequestsNilApplicant", func(ctx context.Context) error {
			_, err := c.ListAppointmentRequests(ctx, &requestsv1.ListAppointmentRequestsRequest{ApplicantId: "00000000-0000-0000-0000-000000000000"})
			return err
		}, []string{"applicant_id"}},
		{"ClaimMaxMissionsZero", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c1"})
			return err
		}, []string{"max_missions"}},
		{"ClaimMaxMissionsAbove100", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c1", MaxMissions: 101})
			return err
		}, []string{"max_missions"}},
		{"ClaimNegativeTTL", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c1", MaxMissions: 1, ClaimTtl: durationpb.New(-1e9)})
			return err
		}, []string{"claim_ttl"}},
		{"ClaimMalformedTTL", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c1", MaxMissions: 1, ClaimTtl: &durationpb.Duration{Seconds: 1, Nanos: -5}})
			return err
		}, []string{"claim_ttl"}},
		{"ClaimTTLOfANanosecond", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c1", MaxMissions: 1, ClaimTtl: durationpb.New(1)})
			return err
		}, []string{"claim_ttl"}},
		{"ClaimTTLBelowASecond", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c1", MaxMissions: 1, ClaimTtl: durationpb.New(999 * time.Millisecond)})
			return err
		}, []string{"claim_ttl"}},
		{"ClaimTTLAboveAnHour", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c1", MaxMissions: 1, ClaimTtl: durationpb.New(2 * 3600e9)})
			return err
		}, []string{"claim_ttl"}},
		{"ClaimWithoutCheckerID", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{MaxMissions: 1})
			return err
		}, []string{"checker_id"}},
		{"ReportWithoutClaimOrOutcome", func(ctx context.Context) error {
			_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{})
			return err
		}, []string{"claim_id", "outcome"}},
		{"ReportBadSlots", func(ctx context.Context) error {
			_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
				ClaimId: claimID, Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, AccountId: -1,
				Slots: slots(
					&requestsv1.Slot{Centre: "paris", VisaCategory: "tourism", Date: "2030-07-05", Time: "9am"},
					&requestsv1.Slot{Date: "tomorrow"},
				),
			})
			return err
		}, []string{"slots[0].time", "slots[1].centre", "slots[1].visa_category", "slots[1].date", "account_id"}},
		{"ReportSlotsFoundWithoutSlots", func(ctx context.Context) error {
			_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{ClaimId: claimID, Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND})
			return err
		}, []string{"slots"}},
		{"ReportNoSlotWithSlots", func(ctx context.Context) error {
			_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
				ClaimId: claimID, Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT,
				Slots: slots(slotP("paris", "tourism", "2030-07-05")),
			})
			return err
		}, []string{"slots"}},
		{"ReportUnknownOutcome", func(ctx context.Context) error {
			_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{ClaimId: claimID, Outcome: 42})
			return err
		}, []string{"outcome"}},
		// Text Postgres cannot store is the caller's mistake, not an
		// internal error; so is text over the limits.
		{"RequestNULInCentreAndCategory", func(ctx context.Context) error {
			r := good()
			r.Centre, r.VisaCategory = "par\x00is", "\x00"
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"centre", "visa_category"}},
		{"ApplicantNULInNameAndEmail", func(ctx context.Context) error {
			r := goodApplicant()
			r.FullName, r.Email = "Ada\x00", "ada\x00@example.com"
			_, err := c.CreateApplicant(ctx, r)
			return err
		}, []string{"full_name", "email"}},
		{"ApplicantNameTooLong", func(ctx context.Context) error {
			r := goodApplicant()
			r.FullName = strings.Repeat("n", 201)
			_, err := c.CreateApplicant(ctx, r)
			return err
		}, []string{"full_name"}},
		{"UpdateApplicantNULInName", func(ctx context.Context) error {
			_, err := c.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: a.GetId(), FullName: proto.String("Ada\x00Byron")})
			return err
		}, []string{"full_name"}},
		{"UpdateApplicantNameTooLong", func(ctx context.Context) error {
			_, err := c.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: a.GetId(), FullName: proto.String(strings.Repeat("n", 201))})
			return err
		}, []string{"full_name"}},
		{"ClaimNULInCheckerID", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c\x001", MaxMissions: 1})
			return err
		}, []string{"checker_id"}},
		{"ClaimCheckerIDTooLong", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: strings.Repeat("c", 129), MaxMissions: 1})
			return err
		}, []string{"checker_id"}},
		{"ReportNULInDetailAndSlot", func(ctx context.Context) error {
			_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
				ClaimId: claimID, Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, Detail: "login\x00failed",
				Slots: slots(slotP("par\x00is", "tourism", "2030-07-05")),
			})
			return err
		}, []string{"detail", "slots[0].centre"}},
		{"ReportDetailAndSlotFieldsTooLong", func(ctx context.Context) error {
			_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
				ClaimId: claimID, Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, Detail: strings.Repeat("d", 4001),
				Slots: slots(slotP(strings.Repeat("p", 101), strings.Repeat("t", 101), "2030-07-05")),
			})
			return err
		}, []string{"detail", "slots[0].centre", "slots[0].visa_category"}},
		// Names are one line: a line break or another control character
		// would break the notification or the log line that shows them.
		{"RequestLineBreakAndTabInCentreAndCategory", func(ctx context.Context) error {
			r := good()
			r.Centre, r.VisaCategory = "Paris\nBcc: x@example.com", "tou\trism"
			_, err := c.CreateAppointmentRequest(ctx, r)
			return err
		}, []string{"centre", "visa_category"}},
		{"ApplicantLineBreakInName", func(ctx context.Context) error {
			r := goodApplicant()
			r.FullName = "Ada\r\nLovelace"
			_, err := c.CreateApplicant(ctx, r)
			return err
		}, []string{"full_name"}},
		{"UpdateApplicantEscapeInName", func(ctx context.Context) error {
			_, err := c.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: a.GetId(), FullName: proto.String("Ada\x1b[2J")})
			return err
		}, []string{"full_name"}},
		{"ClaimLineBreakInCheckerID", func(ctx context.Context) error {
			_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c\n1", MaxMissions: 1})
			return err
		}, []string{"checker_id"}},
		{"ReportMoreThan10000Slots", func(ctx context.Context) error {
			many := make([]*requestsv1.Slot, 10001)
			for i := range many {
				many[i] = slotP("paris", "tourism", "2030-07-05")
			}
			_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
				ClaimId: claimID, Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, Slots: many,
			})
			return err
		}, []string{"slots"}},
		{"WatchNegativeCursor", func(ctx context.Context) error {
			s, err := c.WatchEvents(ctx, &requestsv1.WatchEventsRequest{AfterCursor: -1})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, []string{"after_cursor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantViolation(t, tt.call(testkit.Context(t)), tt.fields...)
		})
	}
	t.Cleanup(func() {
		n := count(t, bundle.pool, `SELECT (SELECT count(*) FROM requests.appointment_requests)
			+ (SELECT count(*) FROM requests.claims) + (SELECT count(*) FROM requests.checks)
			+ (SELECT count(*) FROM requests.events) + (SELECT count(*) FROM requests.applicants)`)
		if n != 1 {
			t.Errorf("bad input wrote rows: %d rows besides none expected (1 applicant)", n)
		}
		var email string
		if err := bundle.pool.QueryRow(context.Background(), `SELECT email FROM requests.applicants`).Scan(&email); err != nil || email != "ada@example.com" {
			t.Errorf("applicant changed by a rejected update: %q %v", email, err)
		}
	})
}
