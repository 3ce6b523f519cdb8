package server

import (
	"context"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/page"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// missionPosition is ListMissions' page token: the last code served.
type missionPosition struct {
	Code string `json:"c"`
}

func missionToProto(m domain.Mission) *requestsv1.Mission {
	return &requestsv1.Mission{
		MissionCode: m.Code,
		Portal:      m.Portal,
		Timezone:    m.Timezone,
		CreatedAt:   timestamp(m.CreatedAt),
		UpdatedAt:   timestamp(m.UpdatedAt),
	}
}

// UpsertMission creates a mission's settings or changes the fields that
// are set.
func (s *Server) UpsertMission(ctx context.Context, req *requestsv1.UpsertMissionRequest) (*requestsv1.UpsertMissionResponse, error) {
	var v apirule.FieldErrors
	v.MissionCode("mission_code", req.GetMissionCode())
	f := domain.MissionFields{Portal: req.Portal, Timezone: req.Timezone}
	f.Apply(&v, &domain.Mission{})
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "UpsertMission", err)
	}
	m, err := s.app.UpsertMission(ctx, req.GetMissionCode(), f)
	if err != nil {
		return nil, s.errorStatus(ctx, "UpsertMission", err)
	}
	return &requestsv1.UpsertMissionResponse{Mission: missionToProto(m)}, nil
}

// GetMission returns one mission's settings.
func (s *Server) GetMission(ctx context.Context, req *requestsv1.GetMissionRequest) (*requestsv1.GetMissionResponse, error) {
	var v apirule.FieldErrors
	v.MissionCode("mission_code", req.GetMissionCode())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "GetMission", err)
	}
	m, err := s.app.GetMission(ctx, req.GetMissionCode())
	if err != nil {
		return nil, s.errorStatus(ctx, "GetMission", err)
	}
	return &requestsv1.GetMissionResponse{Mission: missionToProto(m)}, nil
}

// ListMissions pages missions by code.
func (s *Server) ListMissions(ctx context.Context, req *requestsv1.ListMissionsRequest) (*requestsv1.ListMissionsResponse, error) {
	var (
		v   apirule.FieldErrors
		pos missionPosition
	)
	n := page.Size(&v, "page_size", req.GetPageSize())
	page.Decode(&v, "page_token", req.GetPageToken(), &pos)
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ListMissions", err)
	}
	ms, more, err := s.app.ListMissions(ctx, pos.Code, n)
	if err != nil {
		return nil, s.errorStatus(ctx, "ListMissions", err)
	}
	resp := &requestsv1.ListMissionsResponse{}
	for _, m := range ms {
		resp.Missions = append(resp.Missions, missionToProto(m))
	}
	if more {
		resp.NextPageToken = page.Encode(missionPosition{Code: ms[len(ms)-1].Code})
	}
	return resp, nil
}
