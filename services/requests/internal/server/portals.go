package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/page"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// portalPosition is ListPortals' page token: the last name served.
type portalPosition struct {
	Name string `json:"n"`
}

func portalToProto(p domain.Portal) *requestsv1.Portal {
	out := &requestsv1.Portal{
		Name:                    p.Name,
		MaxChecksPerMinute:      int32(p.MaxPerMinute),
		Timezone:                p.Timezone,
		QuietMaxChecksPerMinute: int32(p.QuietMaxPerMinute),
		MinMissionInterval:      durationpb.New(p.MinMissionInterval),
		CreatedAt:               timestamp(p.CreatedAt),
		UpdatedAt:               timestamp(p.UpdatedAt),
	}
	if p.HasQuiet {
		out.QuietStart, out.QuietEnd = domain.ClockString(p.QuietStart), domain.ClockString(p.QuietEnd)
	}
	return out
}

func portalStatusToProto(st domain.PortalStatus) *requestsv1.PortalStatus {
	return &requestsv1.PortalStatus{
		Name:               st.Name,
		Paused:             st.Paused,
		PausedUntil:        timestamp(st.PausedUntil),
		PauseReason:        st.Reason,
		RecentWalls:        int32(st.RecentWalls),
		ChecksLastMinute:   int32(st.ChecksLastMinute),
		MaxChecksPerMinute: int32(st.Cap),
		PauseLevel:         int32(st.Level),
	}
}

// SetPortal creates a portal's settings or changes the fields that are set.
func (s *Server) SetPortal(ctx context.Context, req *requestsv1.SetPortalRequest) (*requestsv1.SetPortalResponse, error) {
	var v apirule.FieldErrors
	domain.ValidPortalName(&v, "name", req.GetName())
	f := domain.PortalFields{
		MaxPerMinute: req.MaxChecksPerMinute, Timezone: req.Timezone, QuietStart: req.QuietStart,
		QuietEnd: req.QuietEnd, QuietMaxPerMinute: req.QuietMaxChecksPerMinute,
	}
	if req.GetMinMissionInterval() != nil {
		d := apierr.Duration(&v, "min_mission_interval", req.GetMinMissionInterval(), 0)
		f.MinMissionInterval = &d
	}
	f.Apply(&v, &domain.Portal{})
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "SetPortal", err)
	}
	p, err := s.app.SetPortal(ctx, req.GetName(), f)
	if err != nil {
		return nil, s.errorStatus(ctx, "SetPortal", err)
	}
	return &requestsv1.SetPortalResponse{Portal: portalToProto(p)}, nil
}

// GetPortal returns one portal's settings.
func (s *Server) GetPortal(ctx context.Context, req *requestsv1.GetPortalRequest) (*requestsv1.GetPortalResponse, error) {
	var v apirule.FieldErrors
	domain.ValidPortalName(&v, "name", req.GetName())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "GetPortal", err)
	}
	p, err := s.app.GetPortal(ctx, req.GetName())
	if err != nil {
		return nil, s.errorStatus(ctx, "GetPortal", err)
	}
	return &requestsv1.GetPortalResponse{Portal: portalToProto(p)}, nil
}

// ListPortals pages portals by name.
func (s *Server) ListPortals(ctx context.Context, req *requestsv1.ListPortalsRequest) (*requestsv1.ListPortalsResponse, error) {
	var (
		v   apirule.FieldErrors
		pos portalPosition
	)
	n := page.Size(&v, "page_size", req.GetPageSize())
	page.Decode(&v, "page_token", req.GetPageToken(), &pos)
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ListPortals", err)
	}
	ps, more, err := s.app.ListPortals(ctx, pos.Name, n)
	if err != nil {
		return nil, s.errorStatus(ctx, "ListPortals", err)
	}
	resp := &requestsv1.ListPortalsResponse{}
	for _, p := range ps {
		resp.Portals = append(resp.Portals, portalToProto(p))
	}
	if more {
		resp.NextPageToken = page.Encode(portalPosition{Name: ps[len(ps)-1].Name})
	}
	return resp, nil
}

// GetPortalStatus returns a portal's pause, recent walls and checks.
func (s *Server) GetPortalStatus(ctx context.Context, req *requestsv1.GetPortalStatusRequest) (*requestsv1.GetPortalStatusResponse, error) {
	var v apirule.FieldErrors
	domain.ValidPortalName(&v, "name", req.GetName())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "GetPortalStatus", err)
	}
	st, err := s.app.PortalStatus(ctx, req.GetName())
	if err != nil {
		return nil, s.errorStatus(ctx, "GetPortalStatus", err)
	}
	return &requestsv1.GetPortalStatusResponse{Status: portalStatusToProto(st)}, nil
}

// ResumePortal lifts a portal's pause.
func (s *Server) ResumePortal(ctx context.Context, req *requestsv1.ResumePortalRequest) (*requestsv1.ResumePortalResponse, error) {
	var v apirule.FieldErrors
	domain.ValidPortalName(&v, "name", req.GetName())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ResumePortal", err)
	}
	st, err := s.app.ResumePortal(ctx, req.GetName())
	if err != nil {
		return nil, s.errorStatus(ctx, "ResumePortal", err)
	}
	return &requestsv1.ResumePortalResponse{Status: portalStatusToProto(st)}, nil
}

// retryAfter reads ReportCheckResult's retry_after (0 when unset); its
// bounds are domain.NewCheckResult's.
func retryAfter(v *apirule.FieldErrors, d *durationpb.Duration) time.Duration {
	return max(apierr.Duration(v, "retry_after", d, 0), 0)
}
