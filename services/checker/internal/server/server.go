// Package server is the checker's gRPC edge: CheckerService over the
// session runner and the browser manager. Handlers translate; the session
// package decides.
package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// Runner is what the server needs of the session package.
type Runner interface {
	RunSession(ctx context.Context, max int) (session.Summary, error)
	Status() session.Status
}

// Server implements CheckerService.
type Server struct {
	checkerv1.UnimplementedCheckerServiceServer
	runner   Runner
	browser  func() browser.Status
	profiles func() []portal.ProfileStatus
	logger   *slog.Logger
	now      func() time.Time
}

// New returns a Server. profiles gives what each profile's checks saw
// lately (nil: none).
func New(runner Runner, browserStatus func() browser.Status, profiles func() []portal.ProfileStatus, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	if profiles == nil {
		profiles = func() []portal.ProfileStatus { return nil }
	}
	return &Server{runner: runner, browser: browserStatus, profiles: profiles, logger: logger, now: time.Now}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { checkerv1.RegisterCheckerServiceServer(g, s) }

// RunSession implements CheckerService.
func (s *Server) RunSession(ctx context.Context, req *checkerv1.RunSessionRequest) (*checkerv1.RunSessionResponse, error) {
	if n := req.GetMaxMissions(); n < 0 || n > apirule.MaxMissionsPerClaim {
		var v apirule.FieldErrors
		v.Add("max_missions", "must be between 0 (the checker's default) and %d, got %d", apirule.MaxMissionsPerClaim, n)
		return nil, apierr.Invalid(v)
	}
	sum, err := s.runner.RunSession(ctx, int(req.GetMaxMissions()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &checkerv1.RunSessionResponse{Session: summaryToProto(sum)}, nil
}

func (s *Server) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, session.ErrStopping):
		return status.Error(codes.Unavailable, "the checker is stopping")
	case errors.Is(err, session.ErrNotReady):
		return status.Error(codes.Unavailable, "the checker cannot check now: the browser does not start (see GetStatus)")
	case errors.Is(err, session.ErrUnavailable):
		return status.Error(codes.Unavailable, "the Requests service is unreachable; try again")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	s.logger.ErrorContext(ctx, "run session failed", "err", err)
	return status.Error(codes.Internal, "internal error")
}

// GetStatus implements CheckerService.
func (s *Server) GetStatus(_ context.Context, _ *checkerv1.GetStatusRequest) (*checkerv1.GetStatusResponse, error) {
	st := s.runner.Status()
	now := s.now()
	resp := &checkerv1.GetStatusResponse{CheckerId: st.CheckerID}
	for _, f := range st.InFlight {
		resp.InFlight = append(resp.InFlight, &checkerv1.InFlightMission{
			MissionCode: f.Mission, AccountId: f.AccountID, AccountEmail: f.AccountEmail,
			ClaimId: f.ClaimID, SessionNumber: f.Session,
			StartedAt: timestamppb.New(f.StartedAt), Elapsed: durationpb.New(now.Sub(f.StartedAt)),
		})
	}
	for _, sum := range st.Recent {
		resp.RecentSessions = append(resp.RecentSessions, summaryToProto(sum))
	}
	b := s.browser()
	resp.Browser = &checkerv1.BrowserStatus{
		Running: b.Running, ChecksDone: b.ChecksDone, Restarts: b.Restarts, LastError: b.LastError,
	}
	if !b.StartedAt.IsZero() {
		resp.Browser.StartedAt = timestamppb.New(b.StartedAt)
	}
	for _, p := range s.profiles() {
		ps := &checkerv1.ProfileStatus{Profile: p.Profile, LastUnknownArtifacts: p.LastUnknown, LastUnknownStep: p.LastUnknownStep}
		if !p.LastUnknownAt.IsZero() {
			ps.LastUnknownAt = timestamppb.New(p.LastUnknownAt)
		}
		resp.Profiles = append(resp.Profiles, ps)
	}
	return resp, nil
}

func summaryToProto(sum session.Summary) *checkerv1.SessionSummary {
	out := &checkerv1.SessionSummary{Number: sum.Number}
	if !sum.StartedAt.IsZero() {
		out.StartedAt = timestamppb.New(sum.StartedAt)
	}
	if !sum.FinishedAt.IsZero() {
		out.FinishedAt = timestamppb.New(sum.FinishedAt)
	}
	for _, r := range sum.Results {
		mr := &checkerv1.MissionResult{
			MissionCode: r.Mission, ClaimId: r.ClaimID, AccountId: r.AccountID, AccountEmail: r.AccountEmail,
			Outcome: string(r.Outcome), SlotsFound: int32(r.Slots), RequestsMatched: int32(r.Matched),
			Detail: r.Detail, Duration: durationpb.New(r.Duration),
			LoggedIn: r.LoggedIn, SessionReused: r.SessionReused,
		}
		if r.RetryAfter > 0 {
			mr.RetryAfter = durationpb.New(r.RetryAfter)
		}
		out.Results = append(out.Results, mr)
	}
	return out
}
