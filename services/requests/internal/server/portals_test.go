package server_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
)

const (
	wallCaptcha     = requestsv1.CheckOutcome_CHECK_OUTCOME_CAPTCHA
	wallBlocked     = requestsv1.CheckOutcome_CHECK_OUTCOME_BLOCKED
	wallRateLimited = requestsv1.CheckOutcome_CHECK_OUTCOME_RATE_LIMITED
)

func setPortal(t *testing.T, c requestsv1.RequestsServiceClient, req *requestsv1.SetPortalRequest) *requestsv1.Portal {
	t.Helper()
	resp, err := c.SetPortal(testkit.Context(t), req)
	if err != nil {
		t.Fatalf("SetPortal: %v", err)
	}
	return resp.GetPortal()
}

func portalStatus(t *testing.T, c requestsv1.RequestsServiceClient, name string) *requestsv1.PortalStatus {
	t.Helper()
	resp, err := c.GetPortalStatus(testkit.Context(t), &requestsv1.GetPortalStatusRequest{Name: name})
	if err != nil {
		t.Fatalf("GetPortalStatus %s: %v", name, err)
	}
	return resp.GetStatus()
}

// portalMissions creates one pending request in each of n missions
// p0..p(n-1) on portal.
func portalMissions(t *testing.T, c requestsv1.RequestsServiceClient, portal string, n int) {
	t.Helper()
	a := createApplicant(t, c)
	for i := range n {
		code := fmt.Sprintf("%s%d", portal, i)
		createRequest(t, c, a.GetId(), reqArgs{mission: code})
		upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: code, Portal: proto.String(portal)})
	}
}

// claimAll claims until nothing more comes, reporting NO_SLOT at once so
// each mission is free again, and returns how many claims it got (it gives
// up after 100: nothing capped them).
func claimAll(t *testing.T, c requestsv1.RequestsServiceClient) int {
	t.Helper()
	n := 0
	for n < 100 {
		claims := claim(t, c, 100, 0)
		if len(claims) == 0 {
			return n
		}
		for _, cl := range claims {
			report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		}
		n += len(claims)
	}
	return n
}

// reportWall claims one mission of the portal's and reports the wall.
func reportWall(t *testing.T, c requestsv1.RequestsServiceClient, o requestsv1.CheckOutcome, retryAfter time.Duration) {
	t.Helper()
	claims := claim(t, c, 1, 0)
	if len(claims) != 1 {
		t.Fatalf("nothing to claim for a wall report")
	}
	req := &requestsv1.ReportCheckResultRequest{ClaimId: claims[0].GetClaimId(), Outcome: o, AccountId: 7}
	if retryAfter > 0 {
		req.RetryAfter = durationpb.New(retryAfter)
	}
	if _, err := c.ReportCheckResult(testkit.Context(t), req); err != nil {
		t.Fatalf("ReportCheckResult %v: %v", o, err)
	}
}

func wantPausedUntil(t *testing.T, c requestsv1.RequestsServiceClient, name string, until time.Time) {
	t.Helper()
	st := portalStatus(t, c, name)
	if !st.GetPaused() || !st.GetPausedUntil().AsTime().Equal(until) {
		t.Fatalf("status = %v, want paused until %v", st, until)
	}
}

func TestPortalSettings(t *testing.T) {
	t.Parallel()

	t.Run("SetCreatesThenChangesOnlyTheFieldsSet", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		p := setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs", MaxChecksPerMinute: proto.Int32(6)})
		if p.GetMaxChecksPerMinute() != 6 || p.GetTimezone() != "UTC" || p.GetQuietStart() != "" ||
			p.GetMinMissionInterval().AsDuration() != 0 || !p.GetCreatedAt().AsTime().Equal(start) {
			t.Fatalf("created %v", p)
		}
		b.clock.Advance(time.Minute)
		p = setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs", Timezone: proto.String("Europe/Paris"),
			QuietStart: proto.String("22:00"), QuietEnd: proto.String("06:30"), QuietMaxChecksPerMinute: proto.Int32(2),
			MinMissionInterval: durationpb.New(5 * time.Minute)})
		if p.GetMaxChecksPerMinute() != 6 || p.GetTimezone() != "Europe/Paris" || p.GetQuietStart() != "22:00" ||
			p.GetQuietEnd() != "06:30" || p.GetQuietMaxChecksPerMinute() != 2 || p.GetMinMissionInterval().AsDuration() != 5*time.Minute ||
			!p.GetUpdatedAt().AsTime().Equal(start.Add(time.Minute)) {
			t.Fatalf("changed %v", p)
		}
		got, err := c.GetPortal(testkit.Context(t), &requestsv1.GetPortalRequest{Name: "vfs"})
		if err != nil || !proto.Equal(got.GetPortal(), p) {
			t.Fatalf("GetPortal = %v, %v; want %v", got, err, p)
		}
		p = setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs", QuietStart: proto.String(""), QuietEnd: proto.String("")})
		if p.GetQuietStart() != "" || p.GetQuietEnd() != "" {
			t.Fatalf("quiet hours not removed: %v", p)
		}
	})

	t.Run("ListPagesByName", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		for _, n := range []string{"tls", "bls", "vfs"} {
			setPortal(t, c, &requestsv1.SetPortalRequest{Name: n, MaxChecksPerMinute: proto.Int32(1)})
		}
		var names []string
		token := ""
		for {
			resp, err := c.ListPortals(testkit.Context(t), &requestsv1.ListPortalsRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range resp.GetPortals() {
				names = append(names, p.GetName())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if fmt.Sprint(names) != "[bls tls vfs]" {
			t.Fatalf("listed %v", names)
		}
	})

	t.Run("UnknownPortalIsNotFound", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		ctx := testkit.Context(t)
		_, err := c.GetPortal(ctx, &requestsv1.GetPortalRequest{Name: "vfs"})
		testkit.WantCode(t, err, codes.NotFound)
		_, err = c.GetPortalStatus(ctx, &requestsv1.GetPortalStatusRequest{Name: "vfs"})
		testkit.WantCode(t, err, codes.NotFound)
		_, err = c.ResumePortal(ctx, &requestsv1.ResumePortalRequest{Name: "vfs"})
		testkit.WantCode(t, err, codes.NotFound)
	})

	t.Run("BadInputIsAFieldViolationAndWritesNothing", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		ctx := testkit.Context(t)
		setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs", MaxChecksPerMinute: proto.Int32(4)})
		for _, tc := range []struct {
			req    *requestsv1.SetPortalRequest
			fields []string
		}{
			{&requestsv1.SetPortalRequest{Name: ""}, []string{"name"}},
			{&requestsv1.SetPortalRequest{Name: "VFS!"}, []string{"name"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", MaxChecksPerMinute: proto.Int32(-1)}, []string{"max_checks_per_minute"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", MaxChecksPerMinute: proto.Int32(10001)}, []string{"max_checks_per_minute"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", Timezone: proto.String("Mars/Olympus")}, []string{"timezone"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", Timezone: proto.String("")}, []string{"timezone"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", QuietStart: proto.String("22:00")}, []string{"quiet_start"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", QuietStart: proto.String("24:00"), QuietEnd: proto.String("6:00")}, []string{"quiet_start", "quiet_end"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", QuietStart: proto.String("22:00"), QuietEnd: proto.String("22:00")}, []string{"quiet_end"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", QuietMaxChecksPerMinute: proto.Int32(-2)}, []string{"quiet_max_checks_per_minute"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", MinMissionInterval: durationpb.New(-time.Second)}, []string{"min_mission_interval"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", MinMissionInterval: durationpb.New(25 * time.Hour)}, []string{"min_mission_interval"}},
			{&requestsv1.SetPortalRequest{Name: "vfs", MinMissionInterval: &durationpb.Duration{Seconds: 1, Nanos: -1}}, []string{"min_mission_interval"}},
			// Checked against the stored cap (4), not only the request.
			{&requestsv1.SetPortalRequest{Name: "vfs", QuietStart: proto.String("22:00"), QuietEnd: proto.String("06:00"),
				QuietMaxChecksPerMinute: proto.Int32(5)}, []string{"quiet_max_checks_per_minute"}},
		} {
			_, err := c.SetPortal(ctx, tc.req)
			wantViolation(t, err, tc.fields...)
		}
		if p, err := c.GetPortal(ctx, &requestsv1.GetPortalRequest{Name: "vfs"}); err != nil ||
			p.GetPortal().GetMaxChecksPerMinute() != 4 || p.GetPortal().GetQuietStart() != "" || !p.GetPortal().GetUpdatedAt().AsTime().Equal(start) {
			t.Fatalf("a refused SetPortal wrote: %v, %v", p, err)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM requests.portals`); n != 1 {
			t.Fatalf("%d portal rows, want 1", n)
		}
		_, err := c.GetPortal(ctx, &requestsv1.GetPortalRequest{Name: "a b"})
		wantViolation(t, err, "name")
		_, err = c.GetPortalStatus(ctx, &requestsv1.GetPortalStatusRequest{})
		wantViolation(t, err, "name")
		_, err = c.ResumePortal(ctx, &requestsv1.ResumePortalRequest{Name: "x\x00"})
		wantViolation(t, err, "name")
		_, err = c.ListPortals(ctx, &requestsv1.ListPortalsRequest{PageToken: "garbage"})
		wantViolation(t, err, "page_token")
		_, err = c.ListPortals(ctx, &requestsv1.ListPortalsRequest{PageSize: -1})
		wantViolation(t, err, "page_size")
	})

	t.Run("RetryAfterIsOnlyForWallsAndBounded", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{})
		cl := claimOne(t, c, "fra")
		for _, tc := range []struct {
			outcome requestsv1.CheckOutcome
			d       *durationpb.Duration
		}{
			{requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT, durationpb.New(time.Minute)},
			{requestsv1.CheckOutcome_CHECK_OUTCOME_FAILED, durationpb.New(time.Minute)},
			{wallRateLimited, durationpb.New(time.Millisecond)},
			{wallRateLimited, durationpb.New(25 * time.Hour)},
			{wallRateLimited, durationpb.New(-time.Minute)},
		} {
			_, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{
				ClaimId: cl.GetClaimId(), Outcome: tc.outcome, RetryAfter: tc.d})
			wantViolation(t, err, "retry_after")
		}
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT) // the claim was untouched
	})

	t.Run("ReadersReadAndOnlyAdminsChange", func(t *testing.T) {
		t.Parallel()
		admin, b := setup(t)
		setPortal(t, admin, &requestsv1.SetPortalRequest{Name: "vfs", MaxChecksPerMinute: proto.Int32(1)})
		reader := requestsv1.NewRequestsServiceClient(b.server.dial(t, readerToken))
		checker := requestsv1.NewRequestsServiceClient(b.server.dial(t, checkerToken))
		ctx := testkit.Context(t)
		if _, err := reader.GetPortal(ctx, &requestsv1.GetPortalRequest{Name: "vfs"}); err != nil {
			t.Fatalf("reader GetPortal: %v", err)
		}
		if _, err := reader.ListPortals(ctx, &requestsv1.ListPortalsRequest{}); err != nil {
			t.Fatalf("reader ListPortals: %v", err)
		}
		if _, err := reader.GetPortalStatus(ctx, &requestsv1.GetPortalStatusRequest{Name: "vfs"}); err != nil {
			t.Fatalf("reader GetPortalStatus: %v", err)
		}
		_, err := reader.SetPortal(ctx, &requestsv1.SetPortalRequest{Name: "vfs", MaxChecksPerMinute: proto.Int32(9)})
		testkit.WantCode(t, err, codes.PermissionDenied)
		_, err = reader.ResumePortal(ctx, &requestsv1.ResumePortalRequest{Name: "vfs"})
		testkit.WantCode(t, err, codes.PermissionDenied)
		_, err = checker.ResumePortal(ctx, &requestsv1.ResumePortalRequest{Name: "vfs"})
		testkit.WantCode(t, err, codes.PermissionDenied)
		_, err = checker.GetPortalStatus(ctx, &requestsv1.GetPortalStatusRequest{Name: "vfs"})
		testkit.WantCode(t, err, codes.PermissionDenied)
	})
}

func TestPortalCap(t *testing.T) {
	t.Parallel()

	// Two servers over one database share a clock that the test moves in
	// steps; at each step many claimers on both claim (and report at once,
	// so missions are free again) as fast as they can. Whatever the
	// interleaving, no 60 seconds hold more than the cap's claims of the
	// portal, and the cap is reached.
	t.Run("TwoServersTogetherNeverExceedTheCap", func(t *testing.T) {
		t.Parallel()
		servers, clock := replicas(t, serverOpts{}, 0, 0)
		pool := servers[1].pool
		c := servers[0].client
		const limit = 4
		setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs", MaxChecksPerMinute: proto.Int32(limit)})
		portalMissions(t, c, "vfs", 12)
		createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{mission: "free"}) // no portal: no cap

		var (
			mu       sync.Mutex
			failures []string
			freeN    int
		)
		const steps = 12 // 12 × 25s = 5 minutes of clock
		for range steps {
			var wg sync.WaitGroup
			for _, srv := range servers {
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx := context.Background()
						for range 5 {
							resp, err := srv.client.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "c", MaxMissions: 3})
							if err != nil {
								mu.Lock()
								failures = append(failures, err.Error())
								mu.Unlock()
								return
							}
							for _, cl := range resp.GetClaims() {
								if cl.GetMissionCode() == "free" {
									mu.Lock()
									freeN++
									mu.Unlock()
								}
								if _, err := srv.client.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
									ClaimId: cl.GetClaimId(), Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT}); err != nil {
									mu.Lock()
									failures = append(failures, err.Error())
									mu.Unlock()
								}
							}
						}
					}()
				}
			}
			wg.Wait()
			clock.Advance(25 * time.Second)
		}
		if len(failures) > 0 {
			t.Fatalf("failures: %v", failures[:min(len(failures), 5)])
		}
		var times []time.Time
		rows, err := pool.Query(context.Background(),
			`SELECT claimed_at FROM requests.claims WHERE portal = 'vfs' ORDER BY claimed_at`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var at time.Time
			if err := rows.Scan(&at); err != nil {
				t.Fatal(err)
			}
			times = append(times, at)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
		for i := range times {
			in := 0
			for j := i; j < len(times) && times[j].Sub(times[i]) < time.Minute; j++ {
				in++
			}
			if in > limit {
				t.Fatalf("%d claims of vfs in the minute from %v, cap %d", in, times[i], limit)
			}
		}
		// Five minutes of clock in 25s steps: the cap allows a claim burst
		// at 0s, 75s, 150s, 225s (each 60s+ after the last): 4 bursts.
		if len(times) != 4*limit {
			t.Fatalf("%d claims of vfs, want %d (the cap reached in each free minute)", len(times), 4*limit)
		}
		if freeN < steps {
			t.Fatalf("the mission without a portal was claimed %d times in %d steps: the cap held it back", freeN, steps)
		}
		st := portalStatus(t, c, "vfs")
		if st.GetMaxChecksPerMinute() != limit || st.GetPaused() {
			t.Fatalf("status = %v", st)
		}
	})

	t.Run("QuietHoursUseTheirRate", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		// start is 10:00 UTC, 12:00 in Paris: not quiet.
		setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs", MaxChecksPerMinute: proto.Int32(5), Timezone: proto.String("Europe/Paris"),
			QuietStart: proto.String("22:00"), QuietEnd: proto.String("06:00"), QuietMaxChecksPerMinute: proto.Int32(1)})
		portalMissions(t, c, "vfs", 8)
		if n := claimAll(t, c); n != 5 {
			t.Fatalf("claimed %d by day, want the cap 5", n)
		}
		b.clock.Set(time.Date(2030, 6, 1, 20, 30, 0, 0, time.UTC)) // 22:30 in Paris
		if n := claimAll(t, c); n != 1 {
			t.Fatalf("claimed %d in the quiet hours, want their cap 1", n)
		}
		if st := portalStatus(t, c, "vfs"); st.GetMaxChecksPerMinute() != 1 || st.GetChecksLastMinute() != 1 {
			t.Fatalf("quiet status = %v", st)
		}
		b.clock.Set(time.Date(2030, 6, 2, 3, 59, 0, 0, time.UTC)) // 05:59 in Paris, past midnight
		if n := claimAll(t, c); n != 1 {
			t.Fatalf("claimed %d at 05:59, want 1", n)
		}
		b.clock.Set(time.Date(2030, 6, 2, 4, 0, 0, 0, time.UTC)) // 06:00: day again
		if n := claimAll(t, c); n != 5 {
			t.Fatalf("claimed %d at 06:00, want 5", n)
		}
	})

	// Quiet hours apply on a portal with no cap otherwise: their 0 stops
	// checks then (they were ignored).
	t.Run("QuietHoursApplyWithoutAnOverallCap", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs", Timezone: proto.String("Europe/Paris"),
			QuietStart: proto.String("22:00"), QuietEnd: proto.String("06:00"), QuietMaxChecksPerMinute: proto.Int32(0)})
		portalMissions(t, c, "vfs", 3)
		b.clock.Set(time.Date(2030, 6, 1, 20, 30, 0, 0, time.UTC)) // 22:30 in Paris
		if n := claimAll(t, c); n != 0 {
			t.Fatalf("claimed %d in the quiet hours, want none", n)
		}
		b.clock.Set(time.Date(2030, 6, 2, 4, 0, 0, 0, time.UTC)) // 06:00: no cap
		if n := claimAll(t, c); n < 100 {
			t.Fatalf("claimed %d by day, want no cap (claimAll stops after 100)", n)
		}
	})

	t.Run("MinimumIntervalPerMissionIsRespected", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs", MinMissionInterval: durationpb.New(10 * time.Minute)})
		portalMissions(t, c, "vfs", 1)
		cl := claimOne(t, c, "vfs0")
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		b.clock.Advance(10*time.Minute - time.Microsecond)
		if got := claim(t, c, 10, 0); len(got) != 0 {
			t.Fatalf("claimed %v within the minimum interval", got)
		}
		b.clock.Advance(time.Microsecond)
		claimOne(t, c, "vfs0")
	})
}

func TestPortalPause(t *testing.T) {
	t.Parallel()

	t.Run("ThresholdOfWallsPausesThePortalAndNothingOfItIsClaimed", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 3) // no settings: walls still pause it

		reportWall(t, c, wallCaptcha, 0)
		b.clock.Advance(time.Minute)
		reportWall(t, c, wallBlocked, 0)
		if st := portalStatus(t, c, "vfs"); st.GetPaused() || st.GetRecentWalls() != 2 {
			t.Fatalf("after 2 walls: %v", st)
		}
		wantPaused(t, b, "vfs", "")
		b.clock.Advance(time.Minute)
		reportWall(t, c, wallRateLimited, 0)
		pausedAt := b.clock.Now()
		wantPausedUntil(t, c, "vfs", pausedAt.Add(15*time.Minute))
		wantPaused(t, b, "vfs", "walls")
		if n := count(t, b.pool, `SELECT count(*) FROM requests.checks WHERE outcome IN ('captcha', 'blocked', 'rate_limited')`); n != 3 {
			t.Fatalf("%d wall checks recorded, want 3", n)
		}

		// Missions of other portals, or of none, are claimed as before.
		createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{mission: "free"})
		report(t, c, claimOne(t, c, "free").GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		b.clock.Advance(15*time.Minute - time.Microsecond)
		report(t, c, claimOne(t, c, "free").GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		b.clock.Advance(time.Microsecond)
		vfs := 0
		for _, cl := range claim(t, c, 100, 0) {
			if cl.GetMissionCode() != "free" {
				vfs++
			}
		}
		if vfs != 3 {
			t.Fatalf("claimed %d missions of vfs after the pause, want 3", vfs)
		}
		wantPaused(t, b, "vfs", "")
	})

	t.Run("WallsOutsideTheWindowDoNotCount", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 1)
		reportWall(t, c, wallCaptcha, 0)
		b.clock.Advance(5 * time.Minute)
		reportWall(t, c, wallCaptcha, 0)
		b.clock.Advance(5*time.Minute + time.Microsecond) // the first is out of the 10 minutes
		reportWall(t, c, wallCaptcha, 0)
		if st := portalStatus(t, c, "vfs"); st.GetPaused() {
			t.Fatalf("paused by walls 10 minutes apart: %v", st)
		}
	})

	t.Run("PauseDoublesOnEachRepeatUpToSixHoursAndResetsAfterQuiet", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 1)
		for i, want := range []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour, 6 * time.Hour} {
			for range 3 {
				reportWall(t, c, wallCaptcha, 0)
			}
			wantPausedUntil(t, c, "vfs", b.clock.Now().Add(want))
			if st := portalStatus(t, c, "vfs"); st.GetPauseLevel() != int32(i+1) {
				t.Fatalf("pause %d: level %d", i+1, st.GetPauseLevel())
			}
			b.clock.Advance(want)
		}
		b.clock.Advance(6 * time.Hour) // quiet for 6 hours after the last pause
		for range 3 {
			reportWall(t, c, wallCaptcha, 0)
		}
		wantPausedUntil(t, c, "vfs", b.clock.Now().Add(15*time.Minute))
	})

	t.Run("RetryAfterPausesAtLeastThatLong", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 2)
		reportWall(t, c, wallRateLimited, 2*time.Hour) // one report, below the threshold
		wantPausedUntil(t, c, "vfs", b.clock.Now().Add(2*time.Hour))
		wantPaused(t, b, "vfs", "walls") // a bot wall's Retry-After, not a maintenance's

		c2, b2 := setup(t)
		portalMissions(t, c2, "vfs", 1)
		reportWall(t, c2, wallRateLimited, time.Minute) // shorter than the backoff: the backoff
		wantPausedUntil(t, c2, "vfs", b2.clock.Now().Add(15*time.Minute))

		// A wall reported while paused (a check claimed before) with a later
		// Retry-After lengthens the pause.
		c3, b3 := setup(t)
		portalMissions(t, c3, "vfs", 2)
		held := claim(t, c3, 1, 0)[0]
		for range 3 {
			reportWall(t, c3, wallCaptcha, 0)
		}
		wantPausedUntil(t, c3, "vfs", b3.clock.Now().Add(15*time.Minute))
		if _, err := c3.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{ClaimId: held.GetClaimId(),
			Outcome: wallRateLimited, RetryAfter: durationpb.New(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		wantPausedUntil(t, c3, "vfs", b3.clock.Now().Add(time.Hour))
	})

	t.Run("ResumeLiftsThePauseAndEventsAreDelivered", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, app.Config{})
		portalMissions(t, c, "vfs", 1)
		ctx, cancel := context.WithCancel(testkit.Context(t))
		defer cancel()
		s, err := c.WatchEvents(ctx, &requestsv1.WatchEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		next := func(want requestsv1.EventType) *requestsv1.WatchEventsResponse {
			t.Helper()
			for {
				ev, err := s.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if ev.GetType() == want {
					return ev
				}
				if ev.GetType() != requestsv1.EventType_EVENT_TYPE_CREATED {
					t.Fatalf("event %v, want %v", ev, want)
				}
			}
		}
		for range 3 {
			reportWall(t, c, wallCaptcha, 0)
		}
		ev := next(requestsv1.EventType_EVENT_TYPE_PORTAL_PAUSED)
		if ev.GetRequest() != nil || ev.GetPortal().GetName() != "vfs" || !ev.GetPortal().GetPaused() || ev.GetPortal().GetRecentWalls() != 3 ||
			!ev.GetPortal().GetPausedUntil().AsTime().Equal(b.clock.Now().Add(15*time.Minute)) {
			t.Fatalf("paused event = %v", ev)
		}

		b.clock.Advance(time.Minute)
		resp, err := c.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"})
		if err != nil || resp.GetStatus().GetPaused() || resp.GetStatus().GetPauseReason() != "resumed by an operator" {
			t.Fatalf("ResumePortal = %v, %v", resp, err)
		}
		ev = next(requestsv1.EventType_EVENT_TYPE_PORTAL_RESUMED)
		if ev.GetPortal().GetName() != "vfs" || ev.GetPortal().GetPaused() {
			t.Fatalf("resumed event = %v", ev)
		}
		claimOne(t, c, "vfs0")
		// Resuming a portal that is not paused changes nothing, writes no event.
		if _, err := c.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM requests.events WHERE type = 'portal_resumed'`); n != 1 {
			t.Fatalf("%d resumed events, want 1", n)
		}
	})

	t.Run("APauseThatRunsOutIsAnnouncedOnce", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 1)
		for range 3 {
			reportWall(t, c, wallCaptcha, 0)
		}
		b.clock.Advance(15 * time.Minute)
		claimOne(t, c, "vfs0")
		if _, err := b.server.app.ExpireDue(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		claim(t, c, 100, 0)
		if n := count(t, b.pool, `SELECT count(*) FROM requests.events WHERE type = 'portal_resumed'`); n != 1 {
			t.Fatalf("%d resumed events, want 1", n)
		}
		// The sweep alone announces it too, when no checker claims.
		c2, b2 := setup(t)
		portalMissions(t, c2, "vfs", 1)
		for range 3 {
			reportWall(t, c2, wallCaptcha, 0)
		}
		b2.clock.Advance(15 * time.Minute)
		if _, err := b2.server.app.ExpireDue(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		if n := count(t, b2.pool, `SELECT count(*) FROM requests.events WHERE type = 'portal_resumed'`); n != 1 {
			t.Fatalf("%d resumed events after the sweep, want 1", n)
		}
	})
}

// ConfirmClaim is the Checker's last call before a claimed check opens the
// portal: a claim made before its portal was paused may not go.
func TestConfirmClaim(t *testing.T) {
	t.Parallel()

	confirm := func(c requestsv1.RequestsServiceClient, id string) error {
		_, err := c.ConfirmClaim(testkit.Context(t), &requestsv1.ConfirmClaimRequest{ClaimId: id})
		return err
	}

	t.Run("AClaimOfAPortalPausedSinceIsRefusedAndEnded", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 2)
		held := claim(t, c, 1, 0)[0]
		if err := confirm(c, held.GetClaimId()); err != nil {
			t.Fatalf("ConfirmClaim before the pause: %v", err)
		}
		reportWall(t, c, wallRateLimited, time.Hour) // the other mission's check pauses the portal
		testkit.WantCode(t, confirm(c, held.GetClaimId()), codes.FailedPrecondition)
		// The claim is over: no report, no check recorded, and the mission
		// is claimed again once the pause is over, not before.
		_, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{ClaimId: held.GetClaimId(),
			Outcome: requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT})
		testkit.WantCode(t, err, codes.FailedPrecondition)
		if n := count(t, b.pool, `SELECT count(*) FROM requests.checks WHERE claim_id = $1`, held.GetClaimId()); n != 0 {
			t.Fatalf("%d checks recorded for the refused claim", n)
		}
		if got := claim(t, c, 100, 0); len(got) != 0 {
			t.Fatalf("claimed %d missions of the paused portal", len(got))
		}
		b.clock.Advance(time.Hour)
		var again bool
		for _, cl := range claim(t, c, 100, 0) {
			again = again || cl.GetMissionCode() == held.GetMissionCode() && cl.GetClaimId() != held.GetClaimId()
		}
		if !again {
			t.Fatalf("mission %s not claimed again after the pause", held.GetMissionCode())
		}
		// It ended when refused (the claim log says when), so the claim
		// that replaced it did not take over a lapsed one.
		if n := grpcservertest.Metric(t, b.server.registry, "slotwatch_requests_claims_lapsed_total"); n != 0 {
			t.Errorf("slotwatch_requests_claims_lapsed_total = %v after a refused claim, want 0", n)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM requests.claims WHERE id = $1 AND reported_at IS NOT NULL`, held.GetClaimId()); n != 1 {
			t.Error("the refused claim is not logged as ended")
		}
	})

	// A report of a wall holds the portal's row while it decides on a
	// pause; a ConfirmClaim meanwhile waits for it and sees the pause.
	t.Run("WaitsForAWallBeingRecorded", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 1)
		setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs"})
		held := claim(t, c, 1, 0)[0]
		ctx := testkit.Context(t)
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SELECT 1 FROM requests.portals WHERE name = 'vfs' FOR UPDATE`); err != nil {
			t.Fatal(err)
		}
		answer := make(chan error, 1)
		go func() { answer <- confirm(c, held.GetClaimId()) }()
		select {
		case err := <-answer:
			t.Fatalf("ConfirmClaim answered (%v) while the portal's row was held", err)
		case <-time.After(300 * time.Millisecond):
		}
		if _, err := tx.Exec(ctx, `UPDATE requests.portals SET paused_until = $1 WHERE name = 'vfs'`, b.clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		testkit.WantCode(t, <-answer, codes.FailedPrecondition)
	})

	t.Run("AClaimAfterTheResumeGoes", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		portalMissions(t, c, "vfs", 2)
		held := claim(t, c, 1, 0)[0]
		reportWall(t, c, wallRateLimited, time.Hour)
		if _, err := c.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"}); err != nil {
			t.Fatal(err)
		}
		if err := confirm(c, held.GetClaimId()); err != nil {
			t.Fatalf("ConfirmClaim after the resume: %v", err)
		}
	})

	t.Run("AClaimNotHeldIsAFailedPreconditionAndBadIDsAreInvalid", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		portalMissions(t, c, "vfs", 1)
		cl := claim(t, c, 1, 0)[0]
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		testkit.WantCode(t, confirm(c, cl.GetClaimId()), codes.FailedPrecondition)
		testkit.WantCode(t, confirm(c, "00000000-0000-4000-8000-000000000000"), codes.FailedPrecondition)
		wantViolation(t, confirm(c, "not-a-uuid"), "claim_id")
		wantViolation(t, confirm(c, ""), "claim_id")
	})
}

// TestAWallCountsAgainstThePortalOfTheClaim: a mission moved to another
// portal while a check of it runs (UpsertMission) has its wall counted
// against the portal the claim was made for, which the check met, not the
// one the mission names by the time the report comes.
func TestAWallCountsAgainstThePortalOfTheClaim(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	portalMissions(t, c, "vfs", 1)
	for _, name := range []string{"vfs", "tls"} {
		setPortal(t, c, &requestsv1.SetPortalRequest{Name: name, MaxChecksPerMinute: proto.Int32(60)})
	}
	claims := claim(t, c, 1, 0)
	if len(claims) != 1 {
		t.Fatalf("claims %v, want the vfs0 mission's", claims)
	}
	upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: "vfs0", Portal: proto.String("tls")})
	if _, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{
		ClaimId: claims[0].GetClaimId(), Outcome: wallCaptcha, AccountId: 7}); err != nil {
		t.Fatal(err)
	}
	if got := portalStatus(t, c, "vfs").GetRecentWalls(); got != 1 {
		t.Errorf("vfs has %d recent walls, want the 1 its claim met", got)
	}
	if got := portalStatus(t, c, "tls").GetRecentWalls(); got != 0 {
		t.Errorf("tls has %d recent walls, want 0: no check of it met one", got)
	}
}

// TestMaintenanceIsAWall: a portal's maintenance page (HTTP 503 with
// Retry-After: 1800 on portalsim) is a wall. Reported as FAILED, every
// claim during the maintenance sent another account to a portal that was
// down, and the portal was never paused.
func TestMaintenanceIsAWall(t *testing.T) {
	t.Parallel()
	wallMaintenance := requestsv1.CheckOutcome_CHECK_OUTCOME_MAINTENANCE

	t.Run("WithRetryAfterOneReportPausesAtOnceForAtLeastThat", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 3)
		reportWall(t, c, wallMaintenance, 30*time.Minute) // longer than the first backoff (15m)
		wantPausedUntil(t, c, "vfs", b.clock.Now().Add(30*time.Minute))
		st := portalStatus(t, c, "vfs")
		if st.GetRecentWalls() != 1 || !strings.Contains(st.GetPauseReason(), "maintenance") {
			t.Fatalf("status %v, want 1 wall and a reason naming maintenance", st)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM requests.checks WHERE outcome = 'maintenance'`); n != 1 {
			t.Fatalf("%d maintenance checks recorded, want 1", n)
		}
		grpcservertest.WantMetric(t, b.server.registry, 1, "slotwatch_requests_checks_total", "outcome", "maintenance")
		wantPaused(t, b, "vfs", "maintenance")
		if cl := claim(t, c, 100, 0); len(cl) != 0 {
			t.Fatalf("claimed %v while the portal is down for maintenance", cl)
		}
		b.clock.Advance(30*time.Minute - time.Microsecond)
		if cl := claim(t, c, 100, 0); len(cl) != 0 {
			t.Fatalf("claimed %v before the Retry-After ended", cl)
		}
		b.clock.Advance(time.Microsecond)
		if cl := claim(t, c, 100, 0); len(cl) != 3 {
			t.Fatalf("claimed %d missions after the pause, want all 3", len(cl))
		}
		wantPaused(t, b, "vfs", "")
	})

	t.Run("WithoutRetryAfterItCountsTowardTheThreshold", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 3)
		reportWall(t, c, wallMaintenance, 0)
		b.clock.Advance(time.Minute)
		reportWall(t, c, wallMaintenance, 0)
		if st := portalStatus(t, c, "vfs"); st.GetPaused() || st.GetRecentWalls() != 2 {
			t.Fatalf("after 2 maintenance pages: %v, want 2 walls and no pause yet", st)
		}
		b.clock.Advance(time.Minute)
		reportWall(t, c, wallCaptcha, 0) // walls of any kind add up
		wantPausedUntil(t, c, "vfs", b.clock.Now().Add(15*time.Minute))
		wantPaused(t, b, "vfs", "walls")
	})

	t.Run("AtTheThresholdItIsAWallsPause", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		portalMissions(t, c, "vfs", 3)
		reportWall(t, c, wallCaptcha, 0)
		reportWall(t, c, wallBlocked, 0)
		reportWall(t, c, wallMaintenance, 30*time.Minute) // the third wall: a backoff, the level raised
		wantPaused(t, b, "vfs", "walls")
	})

	t.Run("RetryAfterOutOfBoundsIsRefused", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		portalMissions(t, c, "vfs", 1)
		cl := claim(t, c, 1, 0)[0]
		_, err := c.ReportCheckResult(testkit.Context(t), &requestsv1.ReportCheckResultRequest{ClaimId: cl.GetClaimId(),
			Outcome: wallMaintenance, RetryAfter: durationpb.New(25 * time.Hour)})
		testkit.WantCode(t, err, codes.InvalidArgument)
	})
}

// TestConfirmClaimAsksThePortalOfTheClaim: a mission moved to another
// portal (UpsertMission) while a check of it waits for its account. The
// check goes to the portal the claim was made for, whose walls it counts
// (TestAWallCountsAgainstThePortalOfTheClaim); that portal's pause must
// stop it, not the pause (or none) of the portal the mission names now.
func TestConfirmClaimAsksThePortalOfTheClaim(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	portalMissions(t, c, "vfs", 2)
	for _, name := range []string{"vfs", "tls"} {
		setPortal(t, c, &requestsv1.SetPortalRequest{Name: name, MaxChecksPerMinute: proto.Int32(60)})
	}
	held := claim(t, c, 1, 0)[0]
	reportWall(t, c, wallRateLimited, time.Hour) // the other mission's check pauses vfs
	upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: held.GetMissionCode(), Portal: proto.String("tls")})
	_, err := c.ConfirmClaim(testkit.Context(t), &requestsv1.ConfirmClaimRequest{ClaimId: held.GetClaimId()})
	testkit.WantCode(t, err, codes.FailedPrecondition)
}

// wantPaused checks slotwatch_requests_portal_paused{portal}: 1 in the
// series of reason (walls, maintenance), 0 in the other; reason "": not
// paused, 0 in both. Both series are always there, so a pause that changes
// its reason makes no series appear or go.
func wantPaused(t *testing.T, b *testBundle, portal, reason string) {
	t.Helper()
	for _, r := range []string{"walls", "maintenance"} {
		want := 0.0
		if r == reason {
			want = 1
		}
		grpcservertest.WantMetric(t, b.server.registry, want, "slotwatch_requests_portal_paused", "portal", portal, "reason", r)
	}
}
