package client

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// dropsAcquireConnection is a connection on which the pool handles every
// Acquire (the lease is committed) but the connection breaks before the
// answer arrives: the caller sees UNAVAILABLE, as when the pool's pod is
// killed or a proxy resets the stream after the handler ran.
type dropsAcquireConnection struct{ grpc.ClientConnInterface }

func (c *dropsAcquireConnection) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	err := c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
	if method == apv1.AccountPoolService_Acquire_FullMethodName {
		return status.Error(codes.Unavailable, "error reading from server: EOF")
	}
	return err
}

// An Acquire the pool committed whose stream then broke ends UNAVAILABLE,
// not DEADLINE_EXCEEDED (a killed pool pod, a reset proxy): a mission that
// gives up after such a try gives the lease back by its acquire_id too, or
// the lease stays held, leased to no one, until it expires as
// lease_expired.
func TestALeaseWhoseAcquireEndedUnavailableIsGivenBack(t *testing.T) {
	t.Parallel()
	admin, conn := startPool(t, 1)
	c := session.New(session.Config{CheckerID: "checker-1", LeaseTTL: 10 * time.Minute, ClaimTTL: 3 * time.Second},
		NewPool(&dropsAcquireConnection{ClientConnInterface: conn}), &oneClaim{}, noSlotPortal{})
	sum, err := c.RunSession(testkit.Context(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 1 || sum.Results[0].Outcome != session.NoAccount {
		t.Fatalf("results %+v; want mission fra unchecked, no account", sum.Results)
	}
	c.Drain(time.Minute) // waits for any give-back
	st, err := admin.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetLeased() != 0 || st.GetAvailable() != 1 {
		t.Errorf("pool status after the mission gave up and the checker drained: leased %d, available %d; want the lease the Acquire committed given back (0 leased, 1 available)",
			st.GetLeased(), st.GetAvailable())
	}
}
