package server_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// waitForLockWaits waits until n statements of the test's database wait
// for a lock.
func waitForLockWaits(t *testing.T, b *testBundle, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for count(t, b.pool, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'`) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d statements wait for a lock", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Around midnight in a mission's zone, a claim expires the requests whose
// last day has ended. It used to do so before locking the portal rows,
// while a report of a wall locks its portal's row, then the mission's, then
// the claim's requests: a claim that expired the report's request and then
// waited for the portal deadlocked with it. Here a transaction holds the
// mission's row so that the report waits holding the portal's; the claim
// comes then; both must succeed once the row is let go.
func TestWallReportAndClaimAtMidnightDoNotDeadlock(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	b.clock.Set(time.Date(2030, 6, 1, 23, 59, 0, 0, time.UTC))
	upsertMission(t, c, &requestsv1.UpsertMissionRequest{MissionCode: "fra", Portal: proto.String("vfs")})
	setPortal(t, c, &requestsv1.SetPortalRequest{Name: "vfs"})
	r := createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{earliest: "2030-06-01", latest: "2030-06-01"})
	held := claimOne(t, c, "fra")
	b.clock.Set(time.Date(2030, 6, 2, 0, 0, 30, 0, time.UTC)) // the request's last day has ended

	ctx := testkit.Context(t)
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM requests.missions WHERE code = 'fra' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	reported := make(chan error, 1)
	go func() {
		_, err := c.ReportCheckResult(ctx, &requestsv1.ReportCheckResultRequest{
			ClaimId: held.GetClaimId(), Outcome: wallCaptcha, AccountId: 7})
		reported <- err
	}()
	waitForLockWaits(t, b, 1) // the report, holding the portal's row
	claimed := make(chan error, 1)
	go func() {
		_, err := c.ClaimDueMissions(ctx, &requestsv1.ClaimDueMissionsRequest{CheckerId: "checker-2", MaxMissions: 10})
		claimed <- err
	}()
	waitForLockWaits(t, b, 2) // and the claim
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-reported; err != nil {
		t.Errorf("ReportCheckResult: %v", err)
	}
	if err := <-claimed; err != nil {
		t.Errorf("ClaimDueMissions: %v", err)
	}
	if got := getRequest(t, c, r.GetId()); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_EXPIRED {
		t.Errorf("request is %v, want EXPIRED", got.GetStatus())
	}
	if n := count(t, b.pool, `SELECT count(*) FROM requests.portal_walls WHERE portal = 'vfs'`); n != 1 {
		t.Errorf("%d walls recorded, want the report's", n)
	}
}
