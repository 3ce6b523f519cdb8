package server_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func upsertMission(t *testing.T, c requestsv1.RequestsServiceClient, req *requestsv1.UpsertMissionRequest) *requestsv1.Mission {
	t.Helper()
	resp, err := c.UpsertMission(testkit.Context(t), req)
	if err != nil {
		t.Fatalf("UpsertMission: %v", err)
	}
	return resp.GetMission()
}

func getMission(t *testing.T, c requestsv1.RequestsServiceClient, code string) *requestsv1.Mission {
	t.Helper()
	resp, err := c.GetMission(testkit.Context(t), &requestsv1.GetMissionRequest{MissionCode: code})
	if err != nil {
		t.Fatalf("GetMission %s: %v", code, err)
	}
	return resp.GetMission()
}

func TestMissions(t *testing.T) {
	t.Parallel()

	t.Run("UpsertCreatesThenChangesOnlyTheFieldsSet", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		m := upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: "fra", Portal: proto.String("vfs"), Timezone: proto.String("Europe/Paris")})
		if m.GetMissionCode() != "fra" || m.GetPortal() != "vfs" || m.GetTimezone() != "Europe/Paris" ||
			!m.GetCreatedAt().AsTime().Equal(start) || !m.GetUpdatedAt().AsTime().Equal(start) {
			t.Fatalf("created %v", m)
		}
		b.clock.Advance(time.Hour)
		m = upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: "fra", Timezone: proto.String("Asia/Tokyo")})
		if m.GetPortal() != "vfs" || m.GetTimezone() != "Asia/Tokyo" ||
			!m.GetCreatedAt().AsTime().Equal(start) || !m.GetUpdatedAt().AsTime().Equal(start.Add(time.Hour)) {
			t.Fatalf("after changing the zone: %v", m)
		}
		if got := getMission(t, c, "fra"); !proto.Equal(got, m) {
			t.Fatalf("GetMission = %v, want %v", got, m)
		}
		m = upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: "fra", Portal: proto.String("")})
		if m.GetPortal() != "" || m.GetTimezone() != "Asia/Tokyo" {
			t.Fatalf("after clearing the portal: %v", m)
		}
	})

	t.Run("AMissionNamedOnlyByARequestIsUTCWithNoPortal", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{mission: "bel"})
		m := getMission(t, c, "bel")
		if m.GetTimezone() != "UTC" || m.GetPortal() != "" || !m.GetCreatedAt().AsTime().Equal(start) {
			t.Fatalf("GetMission = %v", m)
		}
		if cl := claimOne(t, c, "bel"); cl.GetTimezone() != "UTC" {
			t.Fatalf("claim timezone = %q, want UTC", cl.GetTimezone())
		}
	})

	t.Run("GetUnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		_, err := c.GetMission(testkit.Context(t), &requestsv1.GetMissionRequest{MissionCode: "zzz"})
		testkit.WantCode(t, err, codes.NotFound)
	})

	t.Run("BadInputIsAFieldViolationAndWritesNothing", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		for _, tt := range []struct {
			req    *requestsv1.UpsertMissionRequest
			fields []string
		}{
			{&requestsv1.UpsertMissionRequest{MissionCode: "fra", Timezone: proto.String("Europe/Atlantis")}, []string{"timezone"}},
			{&requestsv1.UpsertMissionRequest{MissionCode: "fra", Timezone: proto.String("")}, []string{"timezone"}},
			{&requestsv1.UpsertMissionRequest{MissionCode: "fra", Timezone: proto.String("Local")}, []string{"timezone"}},
			{&requestsv1.UpsertMissionRequest{MissionCode: "fra", Portal: proto.String("VFS Global")}, []string{"portal"}},
			{&requestsv1.UpsertMissionRequest{MissionCode: "FRA!", Timezone: proto.String("\x00")}, []string{"mission_code", "timezone"}},
		} {
			_, err := c.UpsertMission(testkit.Context(t), tt.req)
			wantViolation(t, err, tt.fields...)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM requests.missions`); n != 0 {
			t.Fatalf("%d missions written", n)
		}
		_, err := c.GetMission(testkit.Context(t), &requestsv1.GetMissionRequest{MissionCode: ""})
		wantViolation(t, err, "mission_code")
		_, err = c.ListMissions(testkit.Context(t), &requestsv1.ListMissionsRequest{PageSize: -1, PageToken: "forged"})
		wantViolation(t, err, "page_size", "page_token")
	})

	t.Run("ListPagesByCode", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		for _, code := range []string{"usa", "fra", "bel"} {
			upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: code})
		}
		var got []string
		token := ""
		for {
			resp, err := c.ListMissions(testkit.Context(t), &requestsv1.ListMissionsRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range resp.GetMissions() {
				got = append(got, m.GetMissionCode())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if len(got) != 3 || got[0] != "bel" || got[1] != "fra" || got[2] != "usa" {
			t.Fatalf("listed %v", got)
		}
	})

	t.Run("UpsertLeavesALiveClaimAlone", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{})
		cl := claimOne(t, c, "fra")
		upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: "fra", Timezone: proto.String("Europe/Paris")})
		if again := claim(t, c, 100, 0); len(again) != 0 {
			t.Fatalf("the upsert freed the claimed mission: %v", again)
		}
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
	})

	t.Run("ReadersReadAdminsWrite", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: "fra"})
		reader := requestsv1.NewRequestsServiceClient(b.server.dial(t, readerToken))
		checker := requestsv1.NewRequestsServiceClient(b.server.dial(t, checkerToken))
		getMission(t, reader, "fra")
		if _, err := reader.ListMissions(testkit.Context(t), &requestsv1.ListMissionsRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err := reader.UpsertMission(testkit.Context(t), &requestsv1.UpsertMissionRequest{MissionCode: "fra"})
		testkit.WantCode(t, err, codes.PermissionDenied)
		_, err = checker.UpsertMission(testkit.Context(t), &requestsv1.UpsertMissionRequest{MissionCode: "fra"})
		testkit.WantCode(t, err, codes.PermissionDenied)
	})
}

// TestTodayIsTheMissionsDay is issue 12's timezone rule: every "today" of
// Requests (a new window in the past, expiry, which requests a claim
// carries, which windows a reported slot fits) is the day it is in the
// mission's zone, not in UTC.
func TestTodayIsTheMissionsDay(t *testing.T) {
	t.Parallel()
	// 23:30 UTC on 2026-12-20 is already 12-21 in Tokyo; 02:00 UTC on
	// 12-21 is still 12-20 in Los Angeles.
	tokyoTomorrow := time.Date(2026, 12, 20, 23, 30, 0, 0, time.UTC)
	laYesterday := time.Date(2026, 12, 21, 2, 0, 0, 0, time.UTC)

	zones := func(t *testing.T, c requestsv1.RequestsServiceClient) {
		t.Helper()
		upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: "jpn", Timezone: proto.String("Asia/Tokyo")})
		upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: "usa", Timezone: proto.String("America/Los_Angeles")})
		// fra has no settings: UTC.
	}
	window := func(mission string) reqArgs {
		return reqArgs{mission: mission, earliest: "2026-12-18", latest: "2026-12-20"}
	}
	create := func(c requestsv1.RequestsServiceClient, applicant, mission string) error {
		a := window(mission)
		_, err := c.CreateAppointmentRequest(testkit.Context(t), &requestsv1.CreateAppointmentRequestRequest{
			ApplicantId: applicant, MissionCode: mission, Centre: "paris", VisaCategory: "tourism",
			EarliestDate: a.earliest, LatestDate: a.latest,
		})
		return err
	}

	t.Run("ANewWindowEndingOnTheMissionsYesterdayIsRefused", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		zones(t, c)
		ap := createApplicant(t, c).GetId()
		b.clock.Set(tokyoTomorrow)
		err := create(c, ap, "jpn")
		wantViolation(t, err, "latest_date")
		if want := "today is 2026-12-21"; !strings.Contains(apierr.FieldViolations(err)["latest_date"], want) {
			t.Fatalf("violation does not say %q: %v", want, err)
		}
		if err := create(c, ap, "fra"); err != nil {
			t.Fatalf("fra (UTC, still 12-20): %v", err)
		}
		b.clock.Set(laYesterday)
		if err := create(c, ap, "usa"); err != nil {
			t.Fatalf("usa (Los Angeles, still 12-20): %v", err)
		}
		wantViolation(t, create(c, ap, "fra"), "latest_date")
	})

	t.Run("ExpiryClaimAndMatchFollowTheMissionsDay", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		zones(t, c)
		ap := createApplicant(t, c).GetId()
		b.clock.Set(time.Date(2026, 12, 19, 12, 0, 0, 0, time.UTC))
		ids := map[string]string{}
		for _, m := range []string{"jpn", "usa", "fra"} {
			ids[m] = createRequest(t, c, ap, window(m)).GetId()
		}
		status := func(m string) requestsv1.RequestStatus { return getRequest(t, c, ids[m]).GetStatus() }

		// Tokyo's 12-20 is over; UTC's and Los Angeles' are not.
		b.clock.Set(tokyoTomorrow)
		if n, err := b.server.app.ExpireDue(testkit.Context(t)); err != nil || n != 1 {
			t.Fatalf("ExpireDue at 23:30 UTC = %d, %v; want jpn's request only", n, err)
		}
		if status("jpn") != requestsv1.RequestStatus_REQUEST_STATUS_EXPIRED || status("fra") != requestsv1.RequestStatus_REQUEST_STATUS_PENDING {
			t.Fatalf("jpn %v, fra %v", status("jpn"), status("fra"))
		}

		// UTC is on 12-21 now, Los Angeles still on 12-20: the claim
		// (which expires first) leaves only usa's request, carries its
		// zone, and a slot on 12-20 matches the window ending that day.
		b.clock.Set(laYesterday)
		cl := claimOne(t, c, "usa")
		if cl.GetTimezone() != "America/Los_Angeles" || len(cl.GetRequests()) != 1 || cl.GetRequests()[0].GetId() != ids["usa"] {
			t.Fatalf("claim = %v", cl)
		}
		if status("fra") != requestsv1.RequestStatus_REQUEST_STATUS_EXPIRED || status("usa") != requestsv1.RequestStatus_REQUEST_STATUS_PENDING {
			t.Fatalf("fra %v, usa %v", status("fra"), status("usa"))
		}
		resp := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("paris", "tourism", "2026-12-20"))
		if len(resp.GetMatched()) != 1 || resp.GetMatched()[0].GetId() != ids["usa"] {
			t.Fatalf("matched %v", resp.GetMatched())
		}
	})
}
