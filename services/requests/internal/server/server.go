// Package server is the gRPC edge of the Requests service: handlers turn
// protobuf into domain input (collecting field violations), call the app,
// and turn the answer or the error back. They decide nothing; errors map to
// codes in one function, errorStatus.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/page"
	"github.com/slotwatch/slotwatch/services/platform/pgdb"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
	"github.com/slotwatch/slotwatch/services/requests/internal/store"
)

// Server implements requestsv1.RequestsServiceServer.
type Server struct {
	requestsv1.UnimplementedRequestsServiceServer
	app      *app.App
	feed     *app.Feed
	logger   *slog.Logger
	stopping <-chan struct{}
}

// New returns the server. stopping is the platform server's
// (grpcserver.Server.Stopping): the platform ends streams when it stops by
// cancelling their contexts, and a stream that ends while stopping is closed
// answers UNAVAILABLE, so its client resumes from its cursor elsewhere.
func New(a *app.App, feed *app.Feed, logger *slog.Logger, stopping <-chan struct{}) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{app: a, feed: feed, logger: logger, stopping: stopping}
}

// Register registers s on gs.
func (s *Server) Register(gs *grpc.Server) {
	requestsv1.RegisterRequestsServiceServer(gs, s)
}

// errorStatus is the one place domain errors become gRPC codes. An error
// nobody expected is logged here and reaches the caller only as "internal
// error".
func (s *Server) errorStatus(ctx context.Context, method string, err error) error {
	var (
		fieldErrs   apirule.FieldErrors
		wrongStatus *domain.StatusError
		pruned      *domain.CursorPrunedError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fieldErrs):
		return apierr.Invalid(fieldErrs)
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, domain.ErrApplicantNotFound):
		return status.Error(codes.FailedPrecondition, "applicant_id names no applicant")
	case errors.As(err, &wrongStatus):
		return apierr.Precondition(err.Error(), "STATUS", "request/"+wrongStatus.ID.String(),
			fmt.Sprintf("%s needs a %s request; this one is %s", wrongStatus.Action, statusWord(wrongStatus.Need), statusWord(wrongStatus.Status)))
	case errors.As(err, &pruned):
		return apierr.Info(codes.OutOfRange,
			fmt.Sprintf("%v (REQUESTS_RETENTION); the oldest cursor available is %d: resume with after_cursor %d to get every event still kept, after re-reading the state you need (ListAppointmentRequests)",
				err, pruned.PrunedThrough, pruned.PrunedThrough),
			apirule.ReasonEventsPruned, map[string]string{apirule.MetaOldestCursor: strconv.FormatInt(pruned.PrunedThrough, 10)})
	case errors.Is(err, domain.ErrPortalPaused):
		return status.Error(codes.FailedPrecondition, err.Error()+": the claim is ended; the mission is due again after the pause")
	case errors.Is(err, domain.ErrClaimNotHeld):
		return status.Error(codes.FailedPrecondition, "the claim is unknown, already reported or lapsed: claim again")
	case errors.Is(err, domain.ErrTooManyWatchers):
		return apierr.RetryAfter(err.Error()+": close one, or retry later", app.WatchRetryDelay)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case pgdb.Unavailable(err):
		s.logger.WarnContext(ctx, "database unavailable", "method", method, "error", err)
		return status.Error(codes.Unavailable, "database unavailable: retry")
	}
	s.logger.ErrorContext(ctx, "request failed", "method", method, "error", err)
	return status.Error(codes.Internal, "internal error")
}

// CreateApplicant adds an applicant.
func (s *Server) CreateApplicant(ctx context.Context, req *requestsv1.CreateApplicantRequest) (*requestsv1.CreateApplicantResponse, error) {
	var (
		v  apirule.FieldErrors
		ap domain.Applicant
	)
	domain.ApplicantFields{
		FullName: &req.FullName, Email: &req.Email, Phone: &req.Phone,
		PassportNumber: &req.PassportNumber, Nationality: &req.Nationality, DateOfBirth: &req.DateOfBirth,
	}.Apply(&v, &ap, s.app.Today())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "CreateApplicant", err)
	}
	ap, err := s.app.CreateApplicant(ctx, ap)
	if err != nil {
		return nil, s.errorStatus(ctx, "CreateApplicant", err)
	}
	return &requestsv1.CreateApplicantResponse{Applicant: applicantToProto(ap, false)}, nil
}

// GetApplicant returns an applicant with the passport number.
func (s *Server) GetApplicant(ctx context.Context, req *requestsv1.GetApplicantRequest) (*requestsv1.GetApplicantResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "GetApplicant", err)
	}
	ap, err := s.app.GetApplicant(ctx, id)
	if err != nil {
		return nil, s.errorStatus(ctx, "GetApplicant", err)
	}
	return &requestsv1.GetApplicantResponse{Applicant: applicantToProto(ap, true)}, nil
}

// ListApplicants pages applicants without passport numbers, all of them or
// those with the given ids.
func (s *Server) ListApplicants(ctx context.Context, req *requestsv1.ListApplicantsRequest) (*requestsv1.ListApplicantsResponse, error) {
	var v apirule.FieldErrors
	n, pos := page.Args[store.Position](&v, req.GetPageSize(), req.GetPageToken())
	var ids []uuid.UUID
	if len(req.GetIds()) > page.MaxSize {
		v.Add("ids", "at most %d ids, got %d", page.MaxSize, len(req.GetIds()))
	} else {
		for i, id := range req.GetIds() {
			ids = append(ids, v.UUID(fmt.Sprintf("ids[%d]", i), id))
		}
	}
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ListApplicants", err)
	}
	aps, more, err := s.app.ListApplicants(ctx, ids, pos, n)
	if err != nil {
		return nil, s.errorStatus(ctx, "ListApplicants", err)
	}
	resp := &requestsv1.ListApplicantsResponse{}
	for _, a := range aps {
		resp.Applicants = append(resp.Applicants, applicantToProto(a, false))
	}
	if more {
		last := aps[len(aps)-1]
		resp.NextPageToken = page.Encode(store.Position{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return resp, nil
}

// UpdateApplicant changes the fields that are set.
func (s *Server) UpdateApplicant(ctx context.Context, req *requestsv1.UpdateApplicantRequest) (*requestsv1.UpdateApplicantResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	f := domain.ApplicantFields{
		FullName: req.FullName, Email: req.Email, Phone: req.Phone,
		PassportNumber: req.PassportNumber, Nationality: req.Nationality, DateOfBirth: req.DateOfBirth,
	}
	f.Apply(&v, &domain.Applicant{}, s.app.Today())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "UpdateApplicant", err)
	}
	ap, err := s.app.UpdateApplicant(ctx, id, f)
	if err != nil {
		return nil, s.errorStatus(ctx, "UpdateApplicant", err)
	}
	return &requestsv1.UpdateApplicantResponse{Applicant: applicantToProto(ap, false)}, nil
}

// DeleteApplicant removes an applicant and cancels their pending requests.
func (s *Server) DeleteApplicant(ctx context.Context, req *requestsv1.DeleteApplicantRequest) (*requestsv1.DeleteApplicantResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "DeleteApplicant", err)
	}
	n, err := s.app.DeleteApplicant(ctx, id)
	if err != nil {
		return nil, s.errorStatus(ctx, "DeleteApplicant", err)
	}
	return &requestsv1.DeleteApplicantResponse{CancelledRequests: int32(n)}, nil
}

// CreateAppointmentRequest opens a PENDING request. Its window is judged
// against today in the mission's zone (read only for a well-formed code;
// NewRequest reports a bad one).
func (s *Server) CreateAppointmentRequest(ctx context.Context, req *requestsv1.CreateAppointmentRequestRequest) (*requestsv1.CreateAppointmentRequestResponse, error) {
	today := s.app.Today()
	if apirule.ValidMissionCode(req.GetMissionCode()) {
		var err error
		if today, err = s.app.MissionToday(ctx, req.GetMissionCode()); err != nil {
			return nil, s.errorStatus(ctx, "CreateAppointmentRequest", err)
		}
	}
	var v apirule.FieldErrors
	r := domain.NewRequest(&v, domain.NewRequestInput{
		ApplicantID: req.GetApplicantId(), MissionCode: req.GetMissionCode(), Centre: req.GetCentre(),
		VisaCategory: req.GetVisaCategory(), EarliestDate: req.GetEarliestDate(), LatestDate: req.GetLatestDate(),
	}, today)
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "CreateAppointmentRequest", err)
	}
	r, err := s.app.CreateRequest(ctx, r)
	if err != nil {
		return nil, s.errorStatus(ctx, "CreateAppointmentRequest", err)
	}
	return &requestsv1.CreateAppointmentRequestResponse{Request: requestToProto(r)}, nil
}

// GetAppointmentRequest returns one request.
func (s *Server) GetAppointmentRequest(ctx context.Context, req *requestsv1.GetAppointmentRequestRequest) (*requestsv1.GetAppointmentRequestResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "GetAppointmentRequest", err)
	}
	r, err := s.app.GetRequest(ctx, id)
	if err != nil {
		return nil, s.errorStatus(ctx, "GetAppointmentRequest", err)
	}
	return &requestsv1.GetAppointmentRequestResponse{Request: requestToProto(r)}, nil
}

// ListAppointmentRequests filters and pages requests.
func (s *Server) ListAppointmentRequests(ctx context.Context, req *requestsv1.ListAppointmentRequestsRequest) (*requestsv1.ListAppointmentRequestsResponse, error) {
	var (
		v apirule.FieldErrors
		f store.RequestFilter
	)
	if st := req.GetStatus(); st != requestsv1.RequestStatus_REQUEST_STATUS_UNSPECIFIED {
		var ok bool
		if f.Status, ok = statusFromProto[st]; !ok {
			v.Add("status", "must be a RequestStatus value, got %d", st)
		}
	}
	if f.MissionCode = req.GetMissionCode(); f.MissionCode != "" {
		v.MissionCode("mission_code", f.MissionCode)
	}
	if req.GetApplicantId() != "" {
		f.ApplicantID = v.UUID("applicant_id", req.GetApplicantId())
	}
	n, pos := page.Args[store.Position](&v, req.GetPageSize(), req.GetPageToken())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ListAppointmentRequests", err)
	}
	rs, more, err := s.app.ListRequests(ctx, f, pos, n)
	if err != nil {
		return nil, s.errorStatus(ctx, "ListAppointmentRequests", err)
	}
	if fit := domain.FitAnswer(rs, domain.MaxAnswerBytes); fit < len(rs) {
		rs, more = rs[:fit], true // the next page starts after the last one sent
	}
	resp := &requestsv1.ListAppointmentRequestsResponse{Requests: requestsToProto(rs)}
	if more {
		last := rs[len(rs)-1]
		resp.NextPageToken = page.Encode(store.Position{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return resp, nil
}

// CancelAppointmentRequest cancels a PENDING request; cancelling a cancelled
// one again returns it unchanged.
func (s *Server) CancelAppointmentRequest(ctx context.Context, req *requestsv1.CancelAppointmentRequestRequest) (*requestsv1.CancelAppointmentRequestResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "CancelAppointmentRequest", err)
	}
	r, err := s.app.CancelRequest(ctx, id)
	if err != nil {
		return nil, s.errorStatus(ctx, "CancelAppointmentRequest", err)
	}
	return &requestsv1.CancelAppointmentRequestResponse{Request: requestToProto(r)}, nil
}

// ConfirmBooked books a SLOT_FOUND request; confirming a BOOKED one again
// returns it unchanged.
func (s *Server) ConfirmBooked(ctx context.Context, req *requestsv1.ConfirmBookedRequest) (*requestsv1.ConfirmBookedResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ConfirmBooked", err)
	}
	r, err := s.app.ConfirmBooked(ctx, id)
	if err != nil {
		return nil, s.errorStatus(ctx, "ConfirmBooked", err)
	}
	return &requestsv1.ConfirmBookedResponse{Request: requestToProto(r)}, nil
}

// ResumeWatching makes a SLOT_FOUND request PENDING again, its slots
// remembered as missed; resuming a PENDING one returns it unchanged.
func (s *Server) ResumeWatching(ctx context.Context, req *requestsv1.ResumeWatchingRequest) (*requestsv1.ResumeWatchingResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ResumeWatching", err)
	}
	r, err := s.app.ResumeWatching(ctx, id)
	if err != nil {
		return nil, s.errorStatus(ctx, "ResumeWatching", err)
	}
	return &requestsv1.ResumeWatchingResponse{Request: requestToProto(r)}, nil
}

// ClaimDueMissions claims missions due for a check.
func (s *Server) ClaimDueMissions(ctx context.Context, req *requestsv1.ClaimDueMissionsRequest) (*requestsv1.ClaimDueMissionsResponse, error) {
	var v apirule.FieldErrors
	ttl := apierr.Duration(&v, "claim_ttl", req.GetClaimTtl(), 0)
	domain.CheckClaimInput(&v, req.GetCheckerId(), req.GetMaxMissions(), ttl)
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ClaimDueMissions", err)
	}
	claims, err := s.app.ClaimDueMissions(ctx, strings.TrimSpace(req.GetCheckerId()), int(req.GetMaxMissions()), ttl)
	if err != nil {
		return nil, s.errorStatus(ctx, "ClaimDueMissions", err)
	}
	resp := &requestsv1.ClaimDueMissionsResponse{Claims: make([]*requestsv1.MissionClaim, len(claims))}
	for i, c := range claims {
		resp.Claims[i] = claimToProto(c)
	}
	return resp, nil
}

// ReportCheckResult ends a claim with its result.
func (s *Server) ReportCheckResult(ctx context.Context, req *requestsv1.ReportCheckResultRequest) (*requestsv1.ReportCheckResultResponse, error) {
	var v apirule.FieldErrors
	in := domain.CheckResultInput{
		ClaimID: req.GetClaimId(), Outcome: outcomeFromProto[req.GetOutcome()],
		AccountID: req.GetAccountId(), Detail: req.GetDetail(), RetryAfter: retryAfter(&v, req.GetRetryAfter()),
	}
	for _, sl := range req.GetSlots() {
		in.Slots = append(in.Slots, domain.SlotInput{Centre: sl.GetCentre(), VisaCategory: sl.GetVisaCategory(), Date: sl.GetDate(), Time: sl.GetTime()})
	}
	res := domain.NewCheckResult(&v, in, s.app.Today())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ReportCheckResult", err)
	}
	rec, matched, err := s.app.ReportCheckResult(ctx, res)
	if err != nil {
		return nil, s.errorStatus(ctx, "ReportCheckResult", err)
	}
	// The report is committed: an answer too large for the client would
	// tell the Checker it failed. matched_count counts what is left out.
	fit := domain.FitAnswer(matched, domain.MaxAnswerBytes)
	return &requestsv1.ReportCheckResultResponse{Matched: requestsToProto(matched[:fit]), CheckId: rec.ID,
		MatchedCount: int32(len(matched))}, nil
}

// ConfirmClaim lets a claimed check open the portal, unless the claim is
// no longer held or its portal was paused since.
func (s *Server) ConfirmClaim(ctx context.Context, req *requestsv1.ConfirmClaimRequest) (*requestsv1.ConfirmClaimResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("claim_id", req.GetClaimId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ConfirmClaim", err)
	}
	if err := s.app.ConfirmClaim(ctx, id); err != nil {
		return nil, s.errorStatus(ctx, "ConfirmClaim", err)
	}
	return &requestsv1.ConfirmClaimResponse{}, nil
}

// WatchEvents streams events after the cursor, then live (app.Feed). The
// caller's identity counts its streams against the per-caller limit; with
// auth off every caller is the same one.
func (s *Server) WatchEvents(req *requestsv1.WatchEventsRequest, stream grpc.ServerStreamingServer[requestsv1.WatchEventsResponse]) error {
	ctx := stream.Context()
	if req.GetAfterCursor() < 0 {
		var v apirule.FieldErrors
		v.Add("after_cursor", "must not be negative")
		return s.errorStatus(ctx, "WatchEvents", v.Err())
	}
	caller, _ := auth.CallerFrom(ctx)
	err := s.feed.Watch(ctx, caller, req.GetAfterCursor(), func(e domain.Event) error {
		if err := stream.Send(eventToProto(e)); err != nil {
			return err
		}
		s.app.Metrics().Streamed()
		return nil
	})
	switch {
	case s.isStopping():
		return errStopping
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case status.Code(err) != codes.Unknown:
		return err // a failed Send carries its status already
	}
	return s.errorStatus(ctx, "WatchEvents", err)
}

// errStopping tells a stream's client to resume elsewhere.
var errStopping = status.Error(codes.Unavailable, "server is stopping: resume from the last cursor")

func (s *Server) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}
