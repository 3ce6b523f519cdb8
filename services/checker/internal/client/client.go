// Package client holds the checker's adapters to the other services: the
// session's LeaseClient over AccountPoolService and its MissionClient over
// RequestsService. They translate between the generated gRPC types and
// the session's own, and gRPC status codes into the session's errors.
package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
)

// Pool is a session.LeaseClient on AccountPoolService.
type Pool struct{ c apv1.AccountPoolServiceClient }

// NewPool returns a Pool on conn.
func NewPool(conn grpc.ClientConnInterface) *Pool {
	return &Pool{c: apv1.NewAccountPoolServiceClient(conn)}
}

var _ session.LeaseClient = (*Pool)(nil)

// Acquire implements session.LeaseClient.
func (p *Pool) Acquire(ctx context.Context, req session.AcquireRequest) (session.Lease, error) {
	resp, err := p.c.Acquire(ctx, &apv1.AcquireRequest{
		MissionCode: req.Mission, Holder: req.Holder, LeaseTtl: durationpb.New(req.TTL), RequestIds: req.RequestIDs,
		AcquireId: req.AcquireID,
	})
	if err != nil {
		if st, ok := status.FromError(err); ok {
			switch st.Code() {
			case codes.ResourceExhausted:
				// No account free (or this checker's rate limit, which asks
				// for the same thing: wait the delay and try again).
				if d, ok := apierr.RetryDelay(err); ok {
					return session.Lease{}, &session.NoAccountFreeError{RetryAfter: d, Message: st.Message()}
				}
			case codes.FailedPrecondition:
				return session.Lease{}, fmt.Errorf("acquire: %w (%s)", session.ErrNoActiveAccount, st.Message())
			}
		}
		return session.Lease{}, wrap("acquire", err)
	}
	l := resp.GetLease()
	return session.Lease{
		ID: l.GetLeaseId(), FencingToken: l.GetFencingToken(), AccountID: l.GetAccountId(),
		Email: l.GetEmail(), Password: l.GetPassword(), ExpiresAt: l.GetExpiresAt().AsTime(),
		SessionState: l.GetSessionState(), NoLogin: l.GetLoginBudgetLeft() <= 0,
	}, nil
}

// Renew implements session.LeaseClient.
func (p *Pool) Renew(ctx context.Context, l session.Lease, ttl time.Duration) (time.Time, error) {
	resp, err := p.c.Renew(ctx, &apv1.RenewRequest{LeaseId: l.ID, FencingToken: l.FencingToken, ExtendBy: durationpb.New(ttl)})
	if err != nil {
		return time.Time{}, leaseErr("renew", err)
	}
	return resp.GetExpiresAt().AsTime(), nil
}

var outcomes = map[session.Outcome]apv1.Outcome{
	session.Success:   apv1.Outcome_OUTCOME_SUCCESS,
	session.NoSlot:    apv1.Outcome_OUTCOME_NO_SLOT,
	session.LoginFail: apv1.Outcome_OUTCOME_LOGIN_FAIL,
	session.Banned:    apv1.Outcome_OUTCOME_BANNED,
	session.Error:     apv1.Outcome_OUTCOME_ERROR,
	session.Unused:    apv1.Outcome_OUTCOME_UNUSED,
	session.Aborted:   apv1.Outcome_OUTCOME_ABORTED,
}

// Release implements session.LeaseClient.
func (p *Pool) Release(ctx context.Context, l session.Lease, r session.Release) error {
	out, ok := outcomes[r.Outcome]
	if !ok {
		return fmt.Errorf("release: outcome %q is not one the pool takes", r.Outcome)
	}
	req := &apv1.ReleaseRequest{
		LeaseId: l.ID, FencingToken: l.FencingToken, Outcome: out, Detail: r.Detail, RequestIds: r.RequestIDs,
		LoggedIn: r.LoggedIn, SessionState: r.SessionState, ClearSession: r.ClearSession,
	}
	if len(r.SessionState) > 0 && r.SessionMaxAge > 0 {
		req.SessionMaxAge = durationpb.New(r.SessionMaxAge)
	}
	if r.RetryAfter > 0 {
		req.RetryAfter = durationpb.New(r.RetryAfter)
	}
	_, err := p.c.Release(ctx, req)
	if r.Outcome == session.Aborted && olderOutcome(err) {
		// An AccountPool older than OUTCOME_ABORTED (a rollout, or one
		// rolled back) refuses it: the lease ends as it did there, ERROR,
		// rather than lapse (lease_expired, a failure too, and the
		// account held until then).
		req.Outcome = apv1.Outcome_OUTCOME_ERROR
		_, err = p.c.Release(ctx, req)
	}
	if err != nil {
		return leaseErr("release", err)
	}
	return nil
}

// GiveBack implements session.LeaseClient: a Release by acquire_id.
func (p *Pool) GiveBack(ctx context.Context, acquireID, detail string) error {
	_, err := p.c.Release(ctx, &apv1.ReleaseRequest{AcquireId: acquireID, Outcome: apv1.Outcome_OUTCOME_UNUSED, Detail: detail})
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("give back: %w", session.ErrNoLease)
	}
	if err != nil {
		return leaseErr("give back", err)
	}
	return nil
}

func leaseErr(op string, err error) error {
	if status.Code(err) == codes.FailedPrecondition {
		return fmt.Errorf("%s: %w (%s)", op, session.ErrLeaseLost, status.Convert(err).Message())
	}
	return wrap(op, err)
}

// Requests is a session.MissionClient on RequestsService.
type Requests struct{ c rqv1.RequestsServiceClient }

// NewRequests returns a Requests on conn.
func NewRequests(conn grpc.ClientConnInterface) *Requests {
	return &Requests{c: rqv1.NewRequestsServiceClient(conn)}
}

var _ session.MissionClient = (*Requests)(nil)

// ClaimDueMissions implements session.MissionClient.
func (r *Requests) ClaimDueMissions(ctx context.Context, checkerID string, max int, ttl time.Duration) ([]session.Claim, error) {
	resp, err := r.c.ClaimDueMissions(ctx, &rqv1.ClaimDueMissionsRequest{
		CheckerId: checkerID, MaxMissions: int32(max), ClaimTtl: durationpb.New(ttl),
	})
	if err != nil {
		return nil, wrap("claim due missions", err)
	}
	claims := make([]session.Claim, 0, len(resp.GetClaims()))
	for _, c := range resp.GetClaims() {
		cl := session.Claim{ID: c.GetClaimId(), Mission: c.GetMissionCode(), ExpiresAt: c.GetExpiresAt().AsTime()}
		for _, q := range c.GetRequests() {
			cl.Requests = append(cl.Requests, session.Request{
				ID: q.GetId(), Centre: q.GetCentre(), VisaCategory: q.GetVisaCategory(),
				EarliestDate: q.GetEarliestDate(), LatestDate: q.GetLatestDate(), CreatedAt: q.GetCreatedAt().AsTime(),
			})
			for _, s := range q.GetMissedSlots() {
				r := &cl.Requests[len(cl.Requests)-1]
				r.Missed = append(r.Missed, portal.Slot{Centre: s.GetCentre(), VisaCategory: s.GetVisaCategory(), Date: s.GetDate(), Time: s.GetTime()})
			}
		}
		claims = append(claims, cl)
	}
	return claims, nil
}

var reportOutcomes = map[session.ReportOutcome]rqv1.CheckOutcome{
	session.ReportNoSlot:     rqv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT,
	session.ReportSlotsFound: rqv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND,
	session.ReportFailed:     rqv1.CheckOutcome_CHECK_OUTCOME_FAILED,
	// Walls, which Requests counts towards pausing the portal.
	session.ReportCaptcha:     rqv1.CheckOutcome_CHECK_OUTCOME_CAPTCHA,
	session.ReportBlocked:     rqv1.CheckOutcome_CHECK_OUTCOME_BLOCKED,
	session.ReportRateLimited: rqv1.CheckOutcome_CHECK_OUTCOME_RATE_LIMITED,
	session.ReportMaintenance: rqv1.CheckOutcome_CHECK_OUTCOME_MAINTENANCE,
}

// ReportCheckResult implements session.MissionClient.
func (r *Requests) ReportCheckResult(ctx context.Context, rep session.Report) (int, error) {
	req := &rqv1.ReportCheckResultRequest{
		ClaimId: rep.ClaimID, Outcome: reportOutcomes[rep.Outcome], AccountId: rep.AccountID, Detail: rep.Detail,
	}
	if rep.RetryAfter > 0 {
		req.RetryAfter = durationpb.New(rep.RetryAfter)
	}
	for _, s := range rep.Slots {
		req.Slots = append(req.Slots, slotToProto(s))
	}
	resp, err := r.c.ReportCheckResult(ctx, req)
	if rep.Outcome == session.ReportMaintenance && olderOutcome(err) {
		// A Requests older than CHECK_OUTCOME_MAINTENANCE (a rollout, or
		// one rolled back) refuses it: the check goes in as it did there,
		// FAILED (its detail names the maintenance), rather than lapse
		// unrecorded.
		req.Outcome, req.RetryAfter = rqv1.CheckOutcome_CHECK_OUTCOME_FAILED, nil
		resp, err = r.c.ReportCheckResult(ctx, req)
	}
	if err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			return 0, fmt.Errorf("report: %w (%s)", session.ErrClaimLost, status.Convert(err).Message())
		}
		return 0, wrap("report", err)
	}
	// matched lists every request found unless that would make the answer
	// too large; matched_count counts them all (0 from a server before it).
	return max(int(resp.GetMatchedCount()), len(resp.GetMatched())), nil
}

// olderOutcome says whether err is Requests refusing a report's outcome,
// or AccountPool a release's, as not one of those it knows
// (INVALID_ARGUMENT naming outcome).
func olderOutcome(err error) bool {
	_, named := apierr.FieldViolations(err)["outcome"]
	return status.Code(err) == codes.InvalidArgument && named
}

// ConfirmClaim implements session.MissionClient.
func (r *Requests) ConfirmClaim(ctx context.Context, claimID string) error {
	if _, err := r.c.ConfirmClaim(ctx, &rqv1.ConfirmClaimRequest{ClaimId: claimID}); err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			return fmt.Errorf("confirm claim: %w (%s)", session.ErrClaimLost, status.Convert(err).Message())
		}
		return wrap("confirm claim", err)
	}
	return nil
}

func slotToProto(s portal.Slot) *rqv1.Slot {
	return &rqv1.Slot{Centre: s.Centre, VisaCategory: s.VisaCategory, Date: s.Date, Time: s.Time}
}

// wrap marks the errors worth retrying: the service was unreachable or
// did not answer in time; both also as session.ErrNoAnswer, since the
// call may have taken effect (gRPC's UNAVAILABLE does not tell a call
// refused before it was sent from one whose stream broke after the server
// ran it).
func wrap(op string, err error) error {
	switch code := status.Code(err); {
	case code == codes.DeadlineExceeded, errors.Is(err, context.DeadlineExceeded), code == codes.Unavailable:
		return fmt.Errorf("%s: %w: %w: %w", op, session.ErrUnavailable, session.ErrNoAnswer, err)
	case code == codes.Aborted, code == codes.ResourceExhausted:
		return fmt.Errorf("%s: %w: %w", op, session.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
