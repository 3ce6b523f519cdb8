package server_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// A checker whose Acquire got no answer gives its lease back by the
// acquire_id alone: a Release with acquire_id (no lease_id, no token) ends
// the lease that Acquire granted as OUTCOME_UNUSED, and a retry of it gets
// the same answer; for an id no lease was granted for it is NOT_FOUND and
// leases nothing.
func TestAReleaseByAcquireIDGivesBackALostLease(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	addAccounts(t, c, 2)
	ctx := testkit.Context(t)
	acquireID := uuid.NewString()
	if _, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", AcquireId: acquireID,
		LeaseTtl: durationpb.New(10 * time.Minute), RequestIds: []string{"r1"}}); err != nil {
		t.Fatal(err)
	} // and the answer is lost

	giveBack := &apv1.ReleaseRequest{AcquireId: acquireID, Outcome: apv1.Outcome_OUTCOME_UNUSED, Detail: "the Acquire's answer was lost"}
	resp, err := c.Release(ctx, giveBack)
	if err != nil {
		t.Fatalf("release by acquire_id: %v", err)
	}
	if a := resp.GetAccount(); a.GetState() != apv1.AccountState_ACCOUNT_STATE_AVAILABLE || a.GetConsecutiveFailures() != 0 ||
		a.GetCooldownUntil() != nil || a.GetLeasedBy() != "" {
		t.Errorf("account after the release by acquire_id: %v; want it available at once, no failure, no cooldown", a)
	}
	if leased, logged := leasedAndLogged(t, b); leased != 0 || logged != 1 {
		t.Errorf("%d accounts leased, %d usage rows; want 0 and 1", leased, logged)
	}
	usage, err := c.ListUsage(ctx, &apv1.ListUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if recs := usage.GetRecords(); len(recs) != 1 || recs[0].GetResult() != apv1.UsageResult_USAGE_RESULT_UNUSED {
		t.Errorf("usage log %v; want the one lease, unused", recs)
	}

	again, err := c.Release(ctx, giveBack)
	if err != nil || !proto.Equal(again.GetAccount(), resp.GetAccount()) {
		t.Errorf("retried release by acquire_id: %v, %v; want the first answer %v", again.GetAccount(), err, resp.GetAccount())
	}

	_, err = c.Release(ctx, &apv1.ReleaseRequest{AcquireId: uuid.NewString(), Outcome: apv1.Outcome_OUTCOME_UNUSED})
	testkit.WantCode(t, err, codes.NotFound)
	if leased, logged := leasedAndLogged(t, b); leased != 0 || logged != 1 {
		t.Errorf("after the release of an unknown acquire_id: %d accounts leased, %d usage rows; want 0 and 1", leased, logged)
	}
}

// A release by acquire_id only gives a lease back unused: it names no
// lease and no token, and takes no outcome but OUTCOME_UNUSED and none of
// the fields of a check that ran.
func TestAReleaseByAcquireIDIsChecked(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	ctx := testkit.Context(t)
	id := uuid.NewString()
	for field, req := range map[string]*apv1.ReleaseRequest{
		"acquire_id":    {AcquireId: "not-a-uuid", Outcome: apv1.Outcome_OUTCOME_UNUSED},
		"lease_id":      {AcquireId: id, LeaseId: uuid.NewString(), Outcome: apv1.Outcome_OUTCOME_UNUSED},
		"fencing_token": {AcquireId: id, FencingToken: 3, Outcome: apv1.Outcome_OUTCOME_UNUSED},
		"outcome":       {AcquireId: id, Outcome: apv1.Outcome_OUTCOME_NO_SLOT},
		"clear_session": {AcquireId: id, Outcome: apv1.Outcome_OUTCOME_UNUSED, ClearSession: true},
		"retry_after":   {AcquireId: id, Outcome: apv1.Outcome_OUTCOME_UNUSED, RetryAfter: durationpb.New(time.Minute)},
		"logged_in":     {AcquireId: id, Outcome: apv1.Outcome_OUTCOME_UNUSED, LoggedIn: true},
	} {
		_, err := c.Release(ctx, req)
		wantViolation(t, err, field)
	}
}

// A give-back that finds its lease expired is FAILED_PRECONDITION, but no
// fencing rejection: slotwatch_pool_fencing_rejections_total counts a
// holder's stale Renew or Release (the SlotwatchFencingRejections
// runbook), and a give-back comes from a caller that never held the lease.
func TestAReleaseByAcquireIDOfAnExpiredLeaseIsNoFencingRejection(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	addAccounts(t, c, 1)
	ctx := testkit.Context(t)
	acquireID := uuid.NewString()
	if _, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", AcquireId: acquireID,
		LeaseTtl: durationpb.New(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Minute)
	if n, err := b.pool.ExpireLeases(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireLeases = %d, %v", n, err)
	}
	_, err := c.Release(ctx, &apv1.ReleaseRequest{AcquireId: acquireID, Outcome: apv1.Outcome_OUTCOME_UNUSED})
	testkit.WantCode(t, err, codes.FailedPrecondition)
	grpcservertest.WantMetric(t, b.registry, 0, "slotwatch_pool_fencing_rejections_total")
}
