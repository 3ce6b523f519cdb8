package server_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

func slotP(centre, category, date string) *requestsv1.Slot {
	return &requestsv1.Slot{Centre: centre, VisaCategory: category, Date: date}
}

func claim(t *testing.T, c requestsv1.RequestsServiceClient, max int32, ttl time.Duration) []*requestsv1.MissionClaim {
	t.Helper()
	req := &requestsv1.ClaimDueMissionsRequest{CheckerId: "checker-1", MaxMissions: max}
	if ttl > 0 {
		req.ClaimTtl = durationpb.New(ttl)
	}
	resp, err := c.ClaimDueMissions(testkit.Context(t), req)
	if err != nil {
		t.Fatalf("ClaimDueMissions: %v", err)
	}
	return resp.GetClaims()
}

// claimOne claims and expects exactly the one mission.
func claimOne(t *testing.T, c requestsv1.RequestsServiceClient, mission string) *requestsv1.MissionClaim {
	t.Helper()
	claims := claim(t, c, 100, 0)
	if len(claims) != 1 || claims[0].GetMissionCode() != mission {
		t.Fatalf("claims = %v, want one for %s", claims, mission)
	}
	return claims[0]
}

func report(t *testing.T, c requestsv1.RequestsServiceClient, claimID string, outcome requestsv1.CheckOutcome, slots ...*requestsv1.Slot) *requestsv1.ReportCheckResultResponse {
	t.Helper()
	resp, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{
		ClaimId: claimID, Outcome: outcome, Slots: slots, AccountId: 7, Detail: "test",
	})
	if err != nil {
		t.Fatalf("ReportCheckResult: %v", err)
	}
	return resp
}

func getRequest(t *testing.T, c requestsv1.RequestsServiceClient, id string) *requestsv1.AppointmentRequest {
	t.Helper()
	resp, err := c.GetAppointmentRequest(testkit.Context(t), &requestsv1.GetAppointmentRequestRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetRequest()
}

func TestClaimDueMissions(t *testing.T) {
	t.Parallel()

	t.Run("ClaimsEachDueMissionOnceWithItsPendingRequests", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		f1 := createRequest(t, c, a.GetId(), reqArgs{mission: "fra"})
		f2 := createRequest(t, c, a.GetId(), reqArgs{mission: "fra"})
		createRequest(t, c, a.GetId(), reqArgs{mission: "bel"})
		cancelled := createRequest(t, c, a.GetId(), reqArgs{mission: "deu"})
		if _, err := c.CancelAppointmentRequest(testkit.Context(t), &requestsv1.CancelAppointmentRequestRequest{Id: cancelled.GetId()}); err != nil {
			t.Fatal(err)
		}
		claims := claim(t, c, 100, time.Minute)
		if len(claims) != 2 {
			t.Fatalf("claims = %v, want fra and bel", claims)
		}
		byMission := map[string]*requestsv1.MissionClaim{}
		for _, cl := range claims {
			byMission[cl.GetMissionCode()] = cl
		}
		fra := byMission["fra"]
		if fra == nil || len(fra.GetRequests()) != 2 || fra.GetRequests()[0].GetId() != f1.GetId() || fra.GetRequests()[1].GetId() != f2.GetId() {
			t.Fatalf("fra claim = %v", fra)
		}
		if !fra.GetExpiresAt().AsTime().Equal(bundle.clock.Now().Add(time.Minute)) {
			t.Fatalf("expires_at = %v", fra.GetExpiresAt().AsTime())
		}
		if again := claim(t, c, 100, 0); len(again) != 0 {
			t.Fatalf("claimed held missions again: %v", again)
		}
	})

	t.Run("ExpiresAtAnsweredEqualsTheStoredOne", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		createRequest(t, c, a.GetId(), reqArgs{})
		bundle.clock.Set(start.Add(123456789 * time.Nanosecond))
		cl := claim(t, c, 1, time.Second+1500*time.Nanosecond)[0]
		var stored, missionStored time.Time
		if err := bundle.pool.QueryRow(testkit.Context(t), `SELECT c.expires_at, m.claim_expires_at FROM requests.claims c
			JOIN requests.missions m ON m.code = c.mission_code WHERE c.id = $1`, cl.GetClaimId()).Scan(&stored, &missionStored); err != nil {
			t.Fatal(err)
		}
		got := cl.GetExpiresAt().AsTime()
		if !got.Equal(stored) || !got.Equal(missionStored) {
			t.Fatalf("expires_at answered %v, stored %v and %v", got, stored, missionStored)
		}
		if want := start.Add(123456*time.Microsecond + time.Second + time.Microsecond); !got.Equal(want) {
			t.Fatalf("expires_at = %v, want %v", got, want)
		}
	})

	t.Run("ClaimCarriesAtMostMaxRequestsPerClaimAndTheRestComeNext", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		// Written directly: creating a thousand through the API is slow.
		if _, err := bundle.pool.Exec(testkit.Context(t), `INSERT INTO requests.missions (code) VALUES ('fra')`); err != nil {
			t.Fatal(err)
		}
		if _, err := bundle.pool.Exec(testkit.Context(t), `INSERT INTO requests.appointment_requests
			(id, mission_code, centre, visa_category, earliest_date, latest_date, status, created_at, updated_at)
			SELECT gen_random_uuid(), 'fra', 'paris', 'tourism', '2030-07-01', '2030-07-10', 'pending',
			       $1::timestamptz + i * interval '1 microsecond', $1
			FROM generate_series(1, $2) AS i`, start, apirule.MaxRequestsPerClaim+1); err != nil {
			t.Fatal(err)
		}
		first := claimOne(t, c, "fra")
		if n := len(first.GetRequests()); n != apirule.MaxRequestsPerClaim {
			t.Fatalf("first claim carries %d requests, want %d", n, apirule.MaxRequestsPerClaim)
		}
		seen := map[string]bool{}
		for _, r := range first.GetRequests() {
			seen[r.GetId()] = true
		}
		bundle.clock.Advance(time.Second)
		report(t, c, first.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		second := claimOne(t, c, "fra")
		var left []string
		for _, r := range second.GetRequests() {
			if !seen[r.GetId()] {
				left = append(left, r.GetId())
			}
		}
		if len(second.GetRequests()) != apirule.MaxRequestsPerClaim || len(left) != 1 {
			t.Fatalf("second claim: %d requests, %d not in the first; want the one left out first", len(second.GetRequests()), len(left))
		}
	})

	t.Run("MaxMissionsBoundsTheClaim", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		a := createApplicant(t, c)
		for _, m := range []string{"aa", "bb", "cc"} {
			createRequest(t, c, a.GetId(), reqArgs{mission: m})
		}
		if got := claim(t, c, 2, 0); len(got) != 2 {
			t.Fatalf("%d claims, want 2", len(got))
		}
		if got := claim(t, c, 2, 0); len(got) != 1 {
			t.Fatalf("%d claims, want the 1 left", len(got))
		}
	})

	t.Run("MissionIsDueAgainAfterCheckInterval", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t, app.Config{CheckInterval: 2 * time.Minute})
		a := createApplicant(t, c)
		r := createRequest(t, c, a.GetId(), reqArgs{})
		cl := claimOne(t, c, "fra")
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		got := getRequest(t, c, r.GetId())
		if got.GetCheckCount() != 1 || !got.GetLastCheckedAt().AsTime().Equal(bundle.clock.Now()) {
			t.Fatalf("after check: %v", got)
		}
		bundle.clock.Advance(2*time.Minute - time.Microsecond)
		if got := claim(t, c, 10, 0); len(got) != 0 {
			t.Fatalf("claimed before the interval passed: %v", got)
		}
		bundle.clock.Advance(time.Microsecond)
		claimOne(t, c, "fra")
	})

	t.Run("LapsedClaimIsTakenOverAfterTheGrace", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		r := createRequest(t, c, a.GetId(), reqArgs{})
		first := claim(t, c, 1, time.Minute)[0]
		bundle.clock.Advance(time.Minute - time.Microsecond)
		if got := claim(t, c, 1, 0); len(got) != 0 {
			t.Fatalf("mission claimed while its claim was live: %v", got)
		}
		// Lapsed at expires_at, but taken over only domain.ClaimGrace later.
		bundle.clock.Advance(domain.ClaimGrace)
		if got := claim(t, c, 1, 0); len(got) != 0 {
			t.Fatalf("mission taken over within the grace: %v", got)
		}
		bundle.clock.Advance(time.Microsecond)
		second := claimOne(t, c, "fra")
		if second.GetClaimId() == first.GetClaimId() {
			t.Fatal("same claim id twice")
		}

		// The lapsed claim's report is refused and writes nothing.
		_, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{
			ClaimId: first.GetClaimId(), Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND,
			Slots: []*requestsv1.Slot{slotP("paris", "tourism", "2030-07-05")},
		})
		testkit.WantCode(t, err, codes.FailedPrecondition)
		if got := getRequest(t, c, r.GetId()); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING || got.GetCheckCount() != 0 {
			t.Fatalf("lapsed report changed the request: %v", got)
		}
		if n := count(t, bundle.pool, `SELECT count(*) FROM requests.checks`); n != 0 {
			t.Fatalf("%d checks recorded", n)
		}
		if n := count(t, bundle.pool, `SELECT count(*) FROM requests.claims WHERE reported_at IS NOT NULL`); n != 0 {
			t.Fatalf("%d claims marked reported", n)
		}
		// The live claim reports normally.
		report(t, c, second.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
	})

	t.Run("ReportAtOrAfterExpiresAtIsRefusedEvenWhenNobodyReclaimed", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		r := createRequest(t, c, a.GetId(), reqArgs{})
		for _, late := range []time.Duration{0, time.Microsecond, time.Hour} {
			cl := claimOne(t, c, "fra")
			bundle.clock.Set(cl.GetExpiresAt().AsTime().Add(late))
			_, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{
				ClaimId: cl.GetClaimId(), Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND,
				Slots: []*requestsv1.Slot{slotP("paris", "tourism", "2030-07-05")},
			})
			testkit.WantCode(t, err, codes.FailedPrecondition)
			if got := getRequest(t, c, r.GetId()); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING || got.GetCheckCount() != 0 {
				t.Fatalf("report %s after expiry changed the request: %v", late, got)
			}
			if n := count(t, bundle.pool, `SELECT (SELECT count(*) FROM requests.checks)
				+ (SELECT count(*) FROM requests.claims WHERE reported_at IS NOT NULL)
				+ (SELECT count(*) FROM requests.events WHERE type <> 'created')
				+ (SELECT count(*) FROM requests.missions WHERE last_checked_at IS NOT NULL)`); n != 0 {
				t.Fatalf("report %s after expiry wrote %d rows", late, n)
			}
			bundle.clock.Advance(time.Hour) // well past the lapsed claim: claim anew
		}
	})

	// Two replicas on one database whose clocks differ by a second.
	skewed := func(t *testing.T, cfg app.Config) (behind, ahead requestsv1.RequestsServiceClient, c *testkit.Clock) {
		t.Helper()
		servers, c := replicas(t, serverOpts{cfg: cfg}, 0, time.Second)
		return servers[0].client, servers[1].client, c
	}

	t.Run("ReplicaWhoseClockIsAheadDoesNotTakeOverALiveClaim", func(t *testing.T) {
		t.Parallel()
		behind, ahead, c := skewed(t, app.Config{})
		a := createApplicant(t, behind)
		createRequest(t, behind, a.GetId(), reqArgs{})
		cl := claim(t, behind, 1, time.Minute)[0]
		// Half a second before expires_at by the granting replica's clock,
		// past it by the other's.
		c.Set(cl.GetExpiresAt().AsTime().Add(-500 * time.Millisecond))
		if got := claim(t, ahead, 1, 0); len(got) != 0 {
			t.Fatalf("a replica 1s ahead took over a live claim: %v", got)
		}
		report(t, behind, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
	})

	t.Run("AlwaysDueOnAReplicaWhoseClockIsBehind", func(t *testing.T) {
		t.Parallel()
		behind, ahead, _ := skewed(t, app.Config{CheckInterval: 0})
		a := createApplicant(t, behind)
		createRequest(t, behind, a.GetId(), reqArgs{})
		cl := claimOne(t, ahead, "fra")
		report(t, ahead, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		// last_checked_at is a second ahead of this replica's now.
		claimOne(t, behind, "fra")
	})

	t.Run("ReportOfUnknownOrReportedClaimIsFailedPrecondition", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		createRequest(t, c, a.GetId(), reqArgs{})
		cl := claimOne(t, c, "fra")
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		for _, id := range []string{cl.GetClaimId(), "0190f5a4-0000-7000-8000-000000000000"} {
			_, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{ClaimId: id, Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_FAILED})
			testkit.WantCode(t, err, codes.FailedPrecondition)
		}
		if n := count(t, bundle.pool, `SELECT count(*) FROM requests.checks`); n != 1 {
			t.Fatalf("%d checks, want 1", n)
		}
	})

	t.Run("ReportRecordsTheCheck", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		createRequest(t, c, a.GetId(), reqArgs{})
		cl := claimOne(t, c, "fra")
		resp := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("lyon", "tourism", "2030-07-05"))
		var (
			mission, checker, outcome, detail string
			account                           int64
			checkedAt                         time.Time
		)
		err := bundle.pool.QueryRow(testkit.Context(t), `SELECT mission_code, checker_id, outcome, detail, account_id, checked_at
			FROM requests.checks WHERE id = $1`, resp.GetCheckId()).Scan(&mission, &checker, &outcome, &detail, &account, &checkedAt)
		if err != nil {
			t.Fatal(err)
		}
		if mission != "fra" || checker != "checker-1" || outcome != "slots_found" || detail != "test" || account != 7 || !checkedAt.Equal(bundle.clock.Now()) {
			t.Fatalf("check row = %s %s %s %s %d %v", mission, checker, outcome, detail, account, checkedAt)
		}
	})

	t.Run("RequestCancelledBetweenClaimAndReportStaysCancelled", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		r := createRequest(t, c, a.GetId(), reqArgs{})
		other := createRequest(t, c, a.GetId(), reqArgs{})
		cl := claimOne(t, c, "fra")
		if _, err := c.CancelAppointmentRequest(testkit.Context(t), &requestsv1.CancelAppointmentRequestRequest{Id: r.GetId()}); err != nil {
			t.Fatal(err)
		}
		cancelled := getRequest(t, c, r.GetId())
		bundle.clock.Advance(time.Second)
		resp := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("paris", "tourism", "2030-07-05"))
		if len(resp.GetMatched()) != 1 || resp.GetMatched()[0].GetId() != other.GetId() {
			t.Fatalf("matched %v, want only the request still pending", resp.GetMatched())
		}
		got := getRequest(t, c, r.GetId())
		if got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_CANCELLED || got.GetCheckCount() != 0 ||
			len(got.GetMatchedSlots()) != 0 || !got.GetUpdatedAt().AsTime().Equal(cancelled.GetUpdatedAt().AsTime()) {
			t.Fatalf("cancelled request changed by the report: %v", got)
		}
		if n := count(t, bundle.pool, `SELECT count(*) FROM requests.events WHERE request_id = $1 AND type = 'slot_found'`, r.GetId()); n != 0 {
			t.Fatalf("%d slot_found events for the cancelled request", n)
		}
	})

	t.Run("RequestWhoseWindowEndedBeforeTheReportIsNotMatched", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		r := createRequest(t, c, a.GetId(), reqArgs{earliest: "2030-06-01", latest: "2030-06-01"})
		bundle.clock.Set(time.Date(2030, 6, 1, 23, 59, 0, 0, time.UTC))
		cl := claimOne(t, c, "fra")
		bundle.clock.Set(time.Date(2030, 6, 2, 0, 0, 30, 0, time.UTC))
		resp := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("paris", "tourism", "2030-06-01"))
		if len(resp.GetMatched()) != 0 {
			t.Fatalf("matched %v after its window ended", resp.GetMatched())
		}
		if got := getRequest(t, c, r.GetId()); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING || got.GetCheckCount() != 0 {
			t.Fatalf("request = %v, want untouched until expiry", got)
		}
		if n, err := bundle.server.app.ExpireDue(testkit.Context(t)); err != nil || n != 1 {
			t.Fatalf("ExpireDue = %d, %v", n, err)
		}
	})

	t.Run("RequestsCreatedAfterTheClaimAreNotTouchedByItsReport", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		a := createApplicant(t, c)
		createRequest(t, c, a.GetId(), reqArgs{})
		cl := claimOne(t, c, "fra")
		late := createRequest(t, c, a.GetId(), reqArgs{})
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("paris", "tourism", "2030-07-05"))
		if got := getRequest(t, c, late.GetId()); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING || got.GetCheckCount() != 0 {
			t.Fatalf("late request = %v", got)
		}
	})
}

// TestSlotMatching reports slots against one request with the window
// 2030-07-01..2030-07-10 at centre paris, category tourism.
func TestSlotMatching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		slots   []*requestsv1.Slot
		matched []string // dates of the slots kept; none means still PENDING
	}{
		{"EarliestDateMatches", []*requestsv1.Slot{slotP("paris", "tourism", "2030-07-01")}, []string{"2030-07-01"}},
		{"LatestDateMatches", []*requestsv1.Slot{slotP("paris", "tourism", "2030-07-10")}, []string{"2030-07-10"}},
		{"DayBeforeWindowDoesNotMatch", []*requestsv1.Slot{slotP("paris", "tourism", "2030-06-30")}, nil},
		{"DayAfterWindowDoesNotMatch", []*requestsv1.Slot{slotP("paris", "tourism", "2030-07-11")}, nil},
		{"OtherCentreDoesNotMatch", []*requestsv1.Slot{slotP("lyon", "tourism", "2030-07-05")}, nil},
		{"OtherCategoryDoesNotMatch", []*requestsv1.Slot{slotP("paris", "business", "2030-07-05")}, nil},
		{"SeveralSlotsKeepOnlyTheMatchingOnes", []*requestsv1.Slot{
			slotP("paris", "tourism", "2030-06-30"),
			{Centre: "paris", VisaCategory: "tourism", Date: "2030-07-02", Time: "09:30"},
			slotP("lyon", "tourism", "2030-07-03"),
			slotP("Paris", "Tourism", "2030-07-09"),
			slotP("paris", "business", "2030-07-04"),
		}, []string{"2030-07-02", "2030-07-09"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, bundle := setup(t)
			a := createApplicant(t, c)
			r := createRequest(t, c, a.GetId(), reqArgs{})
			cl := claimOne(t, c, "fra")
			resp := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, tt.slots...)
			got := getRequest(t, c, r.GetId())
			if got.GetCheckCount() != 1 {
				t.Fatalf("check_count = %d", got.GetCheckCount())
			}
			if len(tt.matched) == 0 {
				if got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING || len(got.GetMatchedSlots()) != 0 || len(resp.GetMatched()) != 0 {
					t.Fatalf("request = %v, matched %v; want PENDING", got, resp.GetMatched())
				}
				if n := count(t, bundle.pool, `SELECT count(*) FROM requests.events WHERE type = 'slot_found'`); n != 0 {
					t.Fatalf("%d slot_found events", n)
				}
				return
			}
			if got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_SLOT_FOUND || len(resp.GetMatched()) != 1 {
				t.Fatalf("request = %v; want SLOT_FOUND", got)
			}
			var dates []string
			for _, s := range got.GetMatchedSlots() {
				dates = append(dates, s.GetDate())
			}
			if fmt.Sprint(dates) != fmt.Sprint(tt.matched) {
				t.Fatalf("matched slots %v, want %v", dates, tt.matched)
			}
			if n := count(t, bundle.pool, `SELECT count(*) FROM requests.events WHERE type = 'slot_found' AND request_id = $1`, r.GetId()); n != 1 {
				t.Fatalf("%d slot_found events", n)
			}
		})
	}

	t.Run("AlreadySlotFoundRequestIsUnchanged", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		july := createRequest(t, c, a.GetId(), reqArgs{})
		august := createRequest(t, c, a.GetId(), reqArgs{earliest: "2030-08-01", latest: "2030-08-10"})
		cl := claimOne(t, c, "fra")
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("paris", "tourism", "2030-07-05"))
		before := getRequest(t, c, july.GetId())
		if before.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_SLOT_FOUND {
			t.Fatalf("july = %v", before)
		}
		bundle.clock.Advance(time.Minute)
		cl = claimOne(t, c, "fra")
		if len(cl.GetRequests()) != 1 || cl.GetRequests()[0].GetId() != august.GetId() {
			t.Fatalf("second claim covers %v, want only the pending august request", cl.GetRequests())
		}
		resp := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND,
			slotP("paris", "tourism", "2030-07-06"), slotP("paris", "tourism", "2030-08-05"))
		if len(resp.GetMatched()) != 1 || resp.GetMatched()[0].GetId() != august.GetId() {
			t.Fatalf("matched %v", resp.GetMatched())
		}
		after := getRequest(t, c, july.GetId())
		if after.GetCheckCount() != before.GetCheckCount() || len(after.GetMatchedSlots()) != 1 ||
			after.GetMatchedSlots()[0].GetDate() != "2030-07-05" || !after.GetUpdatedAt().AsTime().Equal(before.GetUpdatedAt().AsTime()) {
			t.Fatalf("SLOT_FOUND request changed:\nbefore %v\nafter  %v", before, after)
		}
	})
}

func TestExpiry(t *testing.T) {
	t.Parallel()

	t.Run("PassedWindowExpiresAndIsNotClaimed", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		endsTomorrow := createRequest(t, c, a.GetId(), reqArgs{mission: "fra", earliest: "2030-06-01", latest: "2030-06-02"})
		later := createRequest(t, c, a.GetId(), reqArgs{mission: "fra", earliest: "2030-06-01", latest: "2030-06-30"})
		onlyEndsTomorrow := createRequest(t, c, a.GetId(), reqArgs{mission: "bel", earliest: "2030-06-01", latest: "2030-06-02"})

		// Still pending on its last day. (The 1s claims lapse, and are
		// taken over after the grace, by midnight.)
		bundle.clock.Set(time.Date(2030, 6, 2, 23, 59, 57, 0, time.UTC))
		if got := claim(t, c, 10, time.Second); len(got) != 2 {
			t.Fatalf("on the last day: %d claims, want 2", len(got))
		}
		if n := count(t, bundle.pool, `SELECT count(*) FROM requests.appointment_requests WHERE status = 'expired'`); n != 0 {
			t.Fatalf("%d expired on their last day", n)
		}

		bundle.clock.Set(time.Date(2030, 6, 3, 0, 0, 0, 0, time.UTC))
		claims := claim(t, c, 10, 0)
		if len(claims) != 1 || claims[0].GetMissionCode() != "fra" || len(claims[0].GetRequests()) != 1 || claims[0].GetRequests()[0].GetId() != later.GetId() {
			t.Fatalf("claims after expiry = %v", claims)
		}
		for _, id := range []string{endsTomorrow.GetId(), onlyEndsTomorrow.GetId()} {
			if got := getRequest(t, c, id); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_EXPIRED {
				t.Fatalf("request %s = %s, want EXPIRED", id, got.GetStatus())
			}
			if n := count(t, bundle.pool, `SELECT count(*) FROM requests.events WHERE type = 'expired' AND request_id = $1`, id); n != 1 {
				t.Fatalf("%d expired events for %s", n, id)
			}
		}
	})

	t.Run("SweepExpiresWithoutAClaim", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		a := createApplicant(t, c)
		r := createRequest(t, c, a.GetId(), reqArgs{earliest: "2030-06-01", latest: "2030-06-01"})
		bundle.clock.Advance(24 * time.Hour)
		n, err := bundle.server.app.ExpireDue(testkit.Context(t))
		if err != nil || n != 1 {
			t.Fatalf("ExpireDue = %d, %v", n, err)
		}
		if got := getRequest(t, c, r.GetId()); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_EXPIRED {
			t.Fatalf("status %s", got.GetStatus())
		}
	})
}

// TestClaimExclusivity runs two servers on one database, each with several
// claimers doing claim + report cycles, and then reads the claim rows: for
// every mission, each claim starts no earlier than the previous one ended
// (reported, or lapsed at expires_at).
//
// The servers share a clock running ten times faster than real time, so
// that 5s claims lapse and are taken over within the test. The check interval is not 0: with 0 a mission is claimable the
// moment its report commits, and the next claim's claimed_at, read from the
// clock before its transaction ran, may then precede that report's
// reported_at by the transaction's own latency (the database still orders
// them; the timestamps cannot show it). With an interval, and with the
// grace for lapsed claims, the rule itself compares the times, so the rows
// prove exclusivity.
func TestClaimExclusivity(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t, migrations.Set)
	openPool := func() *pgxpool.Pool {
		p, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	poolA, poolB := openPool(), openPool()
	began := time.Now()
	fast := func() time.Time { return start.Add(10 * time.Since(began)) }
	cfg := app.Config{CheckInterval: time.Second}
	servers := []*testServer{
		startServer(t, poolA, serverOpts{now: fast, cfg: cfg}),
		startServer(t, poolB, serverOpts{now: fast, cfg: cfg}),
	}
	c := servers[0].client
	a := createApplicant(t, c)
	const missions = 6
	for i := range missions {
		for range 2 {
			createRequest(t, c, a.GetId(), reqArgs{mission: fmt.Sprintf("m%d", i)})
		}
	}

	const claimersPerServer = 4
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		claimed  int
		reported int
		refused  int
	)
	// The clock runs 10× fast: a claim of 5 s lasts 0.5 s of real time,
	// long enough for a report to arrive on a loaded machine (at 1 s, 0.1 s
	// real, a loaded run saw every report refused), short enough for the
	// abandoned claims to lapse and be taken over within the 3 s.
	deadline := time.Now().Add(3 * time.Second)
	for si, srv := range servers {
		for ci := range claimersPerServer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				checker := fmt.Sprintf("s%d-c%d", si, ci)
				for n := 0; time.Now().Before(deadline); {
					resp, err := srv.client.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{
						CheckerId: checker, MaxMissions: 2, ClaimTtl: durationpb.New(5 * time.Second),
					})
					if err != nil {
						mu.Lock()
						failures = append(failures, "claim: "+err.Error())
						mu.Unlock()
						return
					}
					if len(resp.GetClaims()) == 0 {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					mu.Lock()
					claimed += len(resp.GetClaims())
					mu.Unlock()
					for _, cl := range resp.GetClaims() {
						if n++; (n+ci)%5 == 0 {
							continue // abandon it: it lapses
						}
						_, err := srv.client.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
							ClaimId: cl.GetClaimId(), Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT,
						})
						mu.Lock()
						switch {
						case err == nil:
							reported++
						case isCode(err, codes.FailedPrecondition):
							// A report after the claim lapsed is refused;
							// that is the rule, not a failure.
							refused++
						default:
							failures = append(failures, "report: "+err.Error())
						}
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("failures: %v", failures)
	}
	if reported == 0 {
		t.Fatalf("no report succeeded (%d claims, %d reports refused)", claimed, refused)
	}
	lapsed := count(t, poolA, `SELECT count(*) FROM requests.claims c WHERE c.reported_at IS NULL
		AND EXISTS (SELECT 1 FROM requests.claims n WHERE n.mission_code = c.mission_code AND n.claimed_at > c.claimed_at)`)
	if lapsed == 0 {
		t.Fatalf("no lapsed claim was taken over (%d claims, %d reported)", claimed, reported)
	}

	type held struct {
		id                string
		from, until       time.Time
		reported, checked bool
	}
	rows, err := poolA.Query(context.Background(), `SELECT c.id::text, c.mission_code, c.claimed_at,
		coalesce(c.reported_at, c.expires_at), c.reported_at IS NOT NULL, k.id IS NOT NULL
		FROM requests.claims c LEFT JOIN requests.checks k ON k.claim_id = c.id`)
	if err != nil {
		t.Fatal(err)
	}
	byMission := map[string][]held{}
	total, withReport := 0, 0
	for rows.Next() {
		var (
			h       held
			mission string
		)
		if err := rows.Scan(&h.id, &mission, &h.from, &h.until, &h.reported, &h.checked); err != nil {
			t.Fatal(err)
		}
		if h.reported != h.checked {
			t.Errorf("claim %s: reported %v but check row %v", h.id, h.reported, h.checked)
		}
		if h.reported {
			withReport++
		}
		byMission[mission] = append(byMission[mission], h)
		total++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if total != claimed || withReport != reported {
		t.Fatalf("%d claim rows (%d reported), %d claims handed out (%d reports succeeded)", total, withReport, claimed, reported)
	}
	for mission, hs := range byMission {
		sort.Slice(hs, func(i, j int) bool { return hs[i].from.Before(hs[j].from) })
		for i := 1; i < len(hs); i++ {
			if hs[i].from.Before(hs[i-1].until) {
				t.Errorf("mission %s held twice: claim %s [%v, %v) overlaps claim %s from %v",
					mission, hs[i-1].id, hs[i-1].from, hs[i-1].until, hs[i].id, hs[i].from)
			}
		}
	}
	t.Logf("%d claims over %d missions: %d reported, %d reports refused, %d lapsed and taken over", total, len(byMission), reported, refused, lapsed)
}

func isCode(err error, code codes.Code) bool { return status.Code(err) == code }

// TestARetriedReportGetsTheRecordedAnswer: the Checker sends a report
// again when it got no answer in time (the call may have taken effect). A
// report of a claim already reported with the same outcome gets the answer
// the first one got, and records nothing twice; it used to be refused as a
// claim no longer held, so the Checker logged a failed report and counted
// no match for a check that had found one.
func TestARetriedReportGetsTheRecordedAnswer(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	a := createApplicant(t, c)
	in := createRequest(t, c, a.GetId(), reqArgs{})
	createRequest(t, c, a.GetId(), reqArgs{centre: "lyon"})
	cl := claimOne(t, c, "fra")
	slot := slotP("paris", "tourism", "2030-07-03")
	first := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slot)
	if first.GetMatchedCount() != 1 || first.GetMatched()[0].GetId() != in.GetId() {
		t.Fatalf("first answer = %v", first)
	}

	again, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{
		ClaimId: cl.GetClaimId(), Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND,
		Slots: []*requestsv1.Slot{slot}, AccountId: 7, Detail: "test",
	})
	if err != nil {
		t.Fatalf("retried report: %v", err)
	}
	if !proto.Equal(again, first) {
		t.Fatalf("retried report answered %v, want the first answer %v", again, first)
	}
	if n := count(t, b.pool, `SELECT count(*) FROM requests.checks`); n != 1 {
		t.Fatalf("%d checks recorded, want 1", n)
	}
	if n := count(t, b.pool, `SELECT count(*) FROM requests.events WHERE type = 'slot_found'`); n != 1 {
		t.Fatalf("%d slot_found events, want 1", n)
	}
	if got := getRequest(t, c, in.GetId()); got.GetCheckCount() != 1 {
		t.Fatalf("check_count %d, want 1", got.GetCheckCount())
	}

	// Another outcome for the same claim is not a retry: still refused.
	_, err = c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{
		ClaimId: cl.GetClaimId(), Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT,
	})
	testkit.WantCode(t, err, codes.FailedPrecondition)
}
