package client

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// losesFirstAcquireAnswer is a connection on which the pool handles the
// first Acquire but its answer never reaches the checker: it gets
// DEADLINE_EXCEEDED, as when the answer is lost on the way back. It
// records the acquire_id of every Acquire.
type losesFirstAcquireAnswer struct {
	grpc.ClientConnInterface
	mu         sync.Mutex
	lost       bool
	acquireIDs []string
}

func (c *losesFirstAcquireAnswer) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	err := c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
	if method != apv1.AccountPoolService_Acquire_FullMethodName {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acquireIDs = append(c.acquireIDs, args.(*apv1.AcquireRequest).GetAcquireId())
	if err == nil && !c.lost {
		c.lost = true
		return status.Error(codes.DeadlineExceeded, "the test lost the answer")
	}
	return err
}

// oneClaim is Requests with one claim of mission fra to hand out.
type oneClaim struct {
	mu      sync.Mutex
	given   bool
	reports []session.Report
}

func (r *oneClaim) ClaimDueMissions(context.Context, string, int, time.Duration) ([]session.Claim, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.given {
		return nil, nil
	}
	r.given = true
	return []session.Claim{{ID: "c-fra", Mission: "fra", Requests: []session.Request{{ID: "r-1", Centre: "London", VisaCategory: "tourism"}},
		ExpiresAt: time.Now().Add(5 * time.Minute)}}, nil
}

func (r *oneClaim) ReportCheckResult(_ context.Context, rep session.Report) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, rep)
	return 0, nil
}

func (r *oneClaim) ConfirmClaim(context.Context, string) error { return nil }

// noSlotPortal is a portal that logs in and finds no slot.
type noSlotPortal struct{}

func (noSlotPortal) CheckMission(ctx context.Context, _ portal.Account, _ string, _ []portal.Query, gate portal.Gate) (portal.Result, error) {
	if err := gate(ctx); err != nil {
		return portal.Result{}, err
	}
	return portal.Result{Outcome: portal.NoSlot, Step: "done", LoggedIn: true, Login: true}, nil
}

// The pool leases an account to the Checker's first Acquire, whose answer
// is lost: the Checker asks again with the same acquire_id and checks with
// the lease the pool granted. Before, it gave the mission up (Acquire was
// not safe to retry) and the lease ended at its TTL as lease_expired, a
// failure charged to an account no check used; had it asked again, it
// would have leased a second account.
func TestAnAcquireWhoseAnswerWasLostIsRetriedForTheSameLease(t *testing.T) {
	t.Parallel()
	admin, conn := startPool(t, 2)
	lossy := &losesFirstAcquireAnswer{ClientConnInterface: conn}
	requests := &oneClaim{}
	c := session.New(session.Config{CheckerID: "checker-1", LeaseTTL: time.Minute}, NewPool(lossy), requests, noSlotPortal{})
	sum, err := c.RunSession(testkit.Context(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 1 || sum.Results[0].Outcome != session.NoSlot || sum.Results[0].AccountID != 1 {
		t.Fatalf("results %+v; want mission fra checked, no_slot, with account 1", sum.Results)
	}
	lossy.mu.Lock()
	ids := lossy.acquireIDs
	lossy.mu.Unlock()
	if len(ids) != 2 || ids[0] == "" || ids[1] != ids[0] {
		t.Errorf("acquire ids %q; want two Acquires with one id", ids)
	}
	usage, err := admin.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if recs := usage.GetRecords(); len(recs) != 1 || recs[0].GetAccountId() != 1 || recs[0].GetResult() != apv1.UsageResult_USAGE_RESULT_NO_SLOT {
		t.Errorf("usage log %v; want one lease, of account 1, released no_slot", recs)
	}
	st, err := admin.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetLeased() != 0 {
		t.Errorf("%d accounts still leased, want none", st.GetLeased())
	}
}
