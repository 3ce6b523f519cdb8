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
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// losesAcquireAnswers is a connection on which the pool handles every
// Acquire but no answer reaches the checker (DEADLINE_EXCEEDED, as when
// the answers are lost on the way back). It records the Releases sent.
type losesAcquireAnswers struct {
	grpc.ClientConnInterface
	mu       sync.Mutex
	releases []*apv1.ReleaseRequest
}

func (c *losesAcquireAnswers) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	err := c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
	switch method {
	case apv1.AccountPoolService_Acquire_FullMethodName:
		return status.Error(codes.DeadlineExceeded, "the test lost the answer")
	case apv1.AccountPoolService_Release_FullMethodName:
		c.mu.Lock()
		c.releases = append(c.releases, args.(*apv1.ReleaseRequest))
		c.mu.Unlock()
	}
	return err
}

// The pool leases an account to the Checker's Acquire, whose answer is
// lost, and so is every retry's (each gets that same lease) until the
// claim's time for an account is over: the mission goes unchecked. The
// Checker gives the lease back by its acquire_id, once, and the account is
// free again at once, its lease logged unused. Before, the lease stayed
// held until its TTL ran out (the account idle all that time) and then
// ended as lease_expired, a failure charged to an account no check used.
func TestALeaseWhoseAcquireAnswerWasLostIsGivenBack(t *testing.T) {
	t.Parallel()
	admin, conn := startPool(t, 1)
	lossy := &losesAcquireAnswers{ClientConnInterface: conn}
	// A 3s claim leaves 1.5s to get an account: the first Acquire and
	// one retry a second later, then the mission gives up.
	c := session.New(session.Config{CheckerID: "checker-1", LeaseTTL: 10 * time.Minute, ClaimTTL: 3 * time.Second},
		NewPool(lossy), &oneClaim{}, noSlotPortal{})
	sum, err := c.RunSession(testkit.Context(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 1 || sum.Results[0].Outcome != session.NoAccount {
		t.Fatalf("results %+v; want mission fra unchecked, no account", sum.Results)
	}

	deadline := time.Now().Add(testkit.Scale(30 * time.Second))
	for {
		st, err := admin.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetLeased() == 0 && st.GetAvailable() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool status %v long after the mission gave up; want the lost lease given back, the account available", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	usage, err := admin.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if recs := usage.GetRecords(); len(recs) != 1 || recs[0].GetResult() != apv1.UsageResult_USAGE_RESULT_UNUSED {
		t.Errorf("usage log %v; want the one lease, unused", recs)
	}
	c.Drain(time.Minute)
	lossy.mu.Lock()
	defer lossy.mu.Unlock()
	if len(lossy.releases) != 1 || lossy.releases[0].GetAcquireId() == "" || lossy.releases[0].GetLeaseId() != "" {
		t.Errorf("releases sent %v; want one, by acquire_id", lossy.releases)
	}
}
