package cli

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slotwatch/slotwatch/services/platform/apierr"
)

// The services refuse a caller over RATE_LIMIT_RPS with ResourceExhausted
// and a RetryInfo delay, before the handler runs: the call did nothing, so
// slotctl waits the delay and makes it again, and a bulk command (an
// import, a long list) slows down to the limit instead of stopping.
const (
	// maxRateLimitWaits bounds how often one call waits before its
	// ResourceExhausted is returned.
	maxRateLimitWaits = 20
	// maxRateLimitWait bounds one wait, whatever the delay asked.
	maxRateLimitWait = 10 * time.Second
)

// retryRateLimited runs call, and runs it again after the delay each time
// it is refused with ResourceExhausted and RetryInfo, until it is not, the
// waits run out, or the wait would outlast ctx; then it returns call's
// last error.
func retryRateLimited(ctx context.Context, call func() error) error {
	for waits := 0; ; waits++ {
		err := call()
		if status.Code(err) != codes.ResourceExhausted || waits == maxRateLimitWaits {
			return err
		}
		delay, ok := apierr.RetryDelay(err)
		if !ok {
			return err
		}
		delay = min(delay, maxRateLimitWait)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// retryRateLimitedUnary gives every unary call of slotctl retryRateLimited.
func retryRateLimitedUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return retryRateLimited(ctx, func() error { return invoker(ctx, method, req, reply, cc, opts...) })
}
