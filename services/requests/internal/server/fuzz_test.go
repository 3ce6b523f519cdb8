package server_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// fuzzServer is one server for a whole fuzz run with an applicant, a
// pending request, a portal and a claim of the request's mission; corpus
// entries name them @applicant, @request and @claim.
func fuzzServer(f *testing.F) (requestsv1.RequestsServiceClient, grpcservertest.RPCFuzz) {
	f.Helper()
	c, b := setup(f)
	ctx := testkit.Context(f)
	if _, err := c.SetPortal(ctx, &requestsv1.SetPortalRequest{Name: "vfs", MaxChecksPerMinute: new(int32(60)), Timezone: new("Europe/Paris")}); err != nil {
		f.Fatal(err)
	}
	if _, err := c.UpsertMission(ctx, &requestsv1.UpsertMissionRequest{MissionCode: "fra", Portal: new("vfs")}); err != nil {
		f.Fatal(err)
	}
	a := createApplicant(f, c)
	r := createRequest(f, c, a.GetId(), reqArgs{})
	claims, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "checker-fuzz", MaxMissions: 1})
	if err != nil || len(claims.GetClaims()) != 1 {
		f.Fatalf("claim: %v %v", claims, err)
	}
	return c, grpcservertest.RPCFuzz{
		Conn:    b.server.conn,
		Service: requestsv1.File_slotwatch_requests_v1_requests_proto.Services().Get(0),
		DB:      b.pool,
		Schema:  "requests",
		Names:   map[string]string{"@applicant": a.GetId(), "@request": r.GetId(), "@claim": claims.GetClaims()[0].GetClaimId()},
		Timeout: 2 * time.Second,
	}
}

// FuzzRequests: no request to any RPC, however malformed, is answered
// INTERNAL or panics the server, and a refused one writes nothing.
func FuzzRequests(f *testing.F) {
	_, fz := fuzzServer(f)
	slot := &requestsv1.Slot{Centre: "paris", VisaCategory: "tourism", Date: "2030-07-02", Time: "09:30"}
	fz.Seed(f,
		&requestsv1.CreateApplicantRequest{FullName: "Grace Hopper", Email: "grace@example.com", Phone: "+1 202 555 0100",
			PassportNumber: "P7654321", Nationality: "us", DateOfBirth: "1906-12-09"},
		&requestsv1.GetApplicantRequest{Id: "@applicant"},
		&requestsv1.ListApplicantsRequest{PageSize: 1, Ids: []string{"@applicant", "nope"}},
		&requestsv1.UpdateApplicantRequest{Id: "@applicant", Email: new("ada@example.org"), DateOfBirth: new("1815-12-10")},
		&requestsv1.DeleteApplicantRequest{Id: "@applicant"},
		&requestsv1.CreateAppointmentRequestRequest{ApplicantId: "@applicant", MissionCode: "fra", Centre: "paris",
			VisaCategory: "tourism", EarliestDate: "2030-08-01", LatestDate: "2030-07-01"},
		&requestsv1.GetAppointmentRequestRequest{Id: "@request"},
		&requestsv1.ListAppointmentRequestsRequest{Status: requestsv1.RequestStatus_REQUEST_STATUS_PENDING, MissionCode: "fra", ApplicantId: "@applicant", PageSize: 1},
		&requestsv1.CancelAppointmentRequestRequest{Id: "@request"},
		&requestsv1.ClaimDueMissionsRequest{CheckerId: "c2", MaxMissions: 5, ClaimTtl: durationpb.New(time.Minute)},
		&requestsv1.ReportCheckResultRequest{ClaimId: "@claim", Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND,
			Slots: []*requestsv1.Slot{slot}, AccountId: 1, Detail: "found"},
		&requestsv1.ReportCheckResultRequest{ClaimId: "@claim", Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_RATE_LIMITED,
			RetryAfter: durationpb.New(time.Hour)},
		&requestsv1.WatchEventsRequest{AfterCursor: 0},
		&requestsv1.UpsertMissionRequest{MissionCode: "deu", Portal: new("vfs"), Timezone: new("Europe/Berlin")},
		&requestsv1.GetMissionRequest{MissionCode: "fra"},
		&requestsv1.ListMissionsRequest{PageSize: 1},
		&requestsv1.SetPortalRequest{Name: "tls", MaxChecksPerMinute: new(int32(10)), Timezone: new("Africa/Casablanca"),
			QuietStart: new("22:00"), QuietEnd: new("06:00"), QuietMaxChecksPerMinute: new(int32(1)), MinMissionInterval: durationpb.New(time.Minute)},
		&requestsv1.GetPortalRequest{Name: "vfs"},
		&requestsv1.ListPortalsRequest{PageSize: 1},
		&requestsv1.GetPortalStatusRequest{Name: "vfs"},
		&requestsv1.ResumePortalRequest{Name: "vfs"},
	)
	f.Fuzz(fz.Check)
}

// FuzzPageTokens: a page token that was not made by a previous call,
// whatever its position holds, is refused as INVALID_ARGUMENT or read as a
// position; never INTERNAL. The input is the token's JSON.
func FuzzPageTokens(f *testing.F) {
	c, _ := fuzzServer(f)
	lists := []func(ctx context.Context, tok string) error{
		func(ctx context.Context, tok string) error {
			_, err := c.ListApplicants(ctx, &requestsv1.ListApplicantsRequest{PageSize: 1, PageToken: tok})
			return err
		},
		func(ctx context.Context, tok string) error {
			_, err := c.ListAppointmentRequests(ctx, &requestsv1.ListAppointmentRequestsRequest{PageSize: 1, PageToken: tok})
			return err
		},
		func(ctx context.Context, tok string) error {
			_, err := c.ListMissions(ctx, &requestsv1.ListMissionsRequest{PageSize: 1, PageToken: tok})
			return err
		},
		func(ctx context.Context, tok string) error {
			_, err := c.ListPortals(ctx, &requestsv1.ListPortalsRequest{PageSize: 1, PageToken: tok})
			return err
		},
	}
	for i := range lists {
		for _, s := range []string{`{"t":"2030-06-01T10:00:00Z","id":"00000000-0000-0000-0000-000000000000"}`,
			`{"t":"9999-12-31T23:59:59.999999999+14:00","id":"ffffffff-ffff-ffff-ffff-ffffffffffff"}`,
			`{"c":"fra"}`, `{"c":"\u0000"}`, `{"n":"vfs\ud800"}`, `{"id":""}`, `null`, `{}`} {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, list uint8, pos []byte) {
		tok := base64.RawURLEncoding.EncodeToString(pos)
		grpcservertest.WantNotInternal(t, lists[int(list)%len(lists)](testkit.Context(t), tok))
	})
}
