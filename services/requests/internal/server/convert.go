package server

import (
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(domain.DateLayout)
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// uuidString is "" for uuid.Nil (a request whose applicant was deleted).
func uuidString(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// applicantToProto leaves the passport number out unless withPassport:
// only GetApplicant shows it.
func applicantToProto(a domain.Applicant, withPassport bool) *requestsv1.Applicant {
	p := &requestsv1.Applicant{
		Id:          a.ID.String(),
		FullName:    a.FullName,
		Email:       a.Email,
		Phone:       a.Phone,
		Nationality: a.Nationality,
		DateOfBirth: formatDate(a.DateOfBirth),
		CreatedAt:   timestamp(a.CreatedAt),
		UpdatedAt:   timestamp(a.UpdatedAt),
	}
	if withPassport {
		p.PassportNumber = a.PassportNumber
	}
	return p
}

var statusToProto = map[domain.Status]requestsv1.RequestStatus{
	domain.StatusPending:   requestsv1.RequestStatus_REQUEST_STATUS_PENDING,
	domain.StatusSlotFound: requestsv1.RequestStatus_REQUEST_STATUS_SLOT_FOUND,
	domain.StatusCancelled: requestsv1.RequestStatus_REQUEST_STATUS_CANCELLED,
	domain.StatusExpired:   requestsv1.RequestStatus_REQUEST_STATUS_EXPIRED,
	domain.StatusBooked:    requestsv1.RequestStatus_REQUEST_STATUS_BOOKED,
}

var statusFromProto = map[requestsv1.RequestStatus]domain.Status{
	requestsv1.RequestStatus_REQUEST_STATUS_PENDING:    domain.StatusPending,
	requestsv1.RequestStatus_REQUEST_STATUS_SLOT_FOUND: domain.StatusSlotFound,
	requestsv1.RequestStatus_REQUEST_STATUS_CANCELLED:  domain.StatusCancelled,
	requestsv1.RequestStatus_REQUEST_STATUS_EXPIRED:    domain.StatusExpired,
	requestsv1.RequestStatus_REQUEST_STATUS_BOOKED:     domain.StatusBooked,
}

var outcomeFromProto = map[requestsv1.CheckOutcome]domain.Outcome{
	requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT:      domain.OutcomeNoSlot,
	requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND:  domain.OutcomeSlotsFound,
	requestsv1.CheckOutcome_CHECK_OUTCOME_FAILED:       domain.OutcomeFailed,
	requestsv1.CheckOutcome_CHECK_OUTCOME_CAPTCHA:      domain.OutcomeCaptcha,
	requestsv1.CheckOutcome_CHECK_OUTCOME_BLOCKED:      domain.OutcomeBlocked,
	requestsv1.CheckOutcome_CHECK_OUTCOME_RATE_LIMITED: domain.OutcomeRateLimited,
	requestsv1.CheckOutcome_CHECK_OUTCOME_MAINTENANCE:  domain.OutcomeMaintenance,
}

var eventTypeToProto = map[domain.EventType]requestsv1.EventType{
	domain.EventCreated:         requestsv1.EventType_EVENT_TYPE_CREATED,
	domain.EventSlotFound:       requestsv1.EventType_EVENT_TYPE_SLOT_FOUND,
	domain.EventCancelled:       requestsv1.EventType_EVENT_TYPE_CANCELLED,
	domain.EventExpired:         requestsv1.EventType_EVENT_TYPE_EXPIRED,
	domain.EventPortalPaused:    requestsv1.EventType_EVENT_TYPE_PORTAL_PAUSED,
	domain.EventPortalResumed:   requestsv1.EventType_EVENT_TYPE_PORTAL_RESUMED,
	domain.EventBooked:          requestsv1.EventType_EVENT_TYPE_BOOKED,
	domain.EventWatchingResumed: requestsv1.EventType_EVENT_TYPE_WATCHING_RESUMED,
}

func slotToProto(s domain.Slot) *requestsv1.Slot {
	return &requestsv1.Slot{Centre: s.Centre, VisaCategory: s.VisaCategory, Date: formatDate(s.Date), Time: s.Time}
}

func requestToProto(r domain.Request) *requestsv1.AppointmentRequest {
	p := &requestsv1.AppointmentRequest{
		Id:            r.ID.String(),
		ApplicantId:   uuidString(r.ApplicantID),
		MissionCode:   r.MissionCode,
		Centre:        r.Centre,
		VisaCategory:  r.VisaCategory,
		EarliestDate:  formatDate(r.EarliestDate),
		LatestDate:    formatDate(r.LatestDate),
		Status:        statusToProto[r.Status],
		LastCheckedAt: timestamp(r.LastCheckedAt),
		CheckCount:    int32(r.CheckCount),
		CreatedAt:     timestamp(r.CreatedAt),
		UpdatedAt:     timestamp(r.UpdatedAt),
		// A request found before the count was kept shows its slots' number.
		MatchedSlotCount: int32(max(r.MatchedSlotCount, len(r.MatchedSlots))),
	}
	for _, s := range r.MatchedSlots {
		p.MatchedSlots = append(p.MatchedSlots, slotToProto(s))
	}
	for _, s := range r.AnsweredMissedSlots() {
		p.MissedSlots = append(p.MissedSlots, slotToProto(s))
	}
	return p
}

func requestsToProto(rs []domain.Request) []*requestsv1.AppointmentRequest {
	out := make([]*requestsv1.AppointmentRequest, len(rs))
	for i, r := range rs {
		out[i] = requestToProto(r)
	}
	return out
}

func claimToProto(c domain.Claim) *requestsv1.MissionClaim {
	return &requestsv1.MissionClaim{
		ClaimId:     c.ID.String(),
		MissionCode: c.MissionCode,
		Requests:    requestsToProto(c.Requests),
		ExpiresAt:   timestamp(c.ExpiresAt),
		Timezone:    c.Timezone,
	}
}

func eventToProto(e domain.Event) *requestsv1.WatchEventsResponse {
	out := &requestsv1.WatchEventsResponse{
		Cursor:     e.Cursor,
		Type:       eventTypeToProto[e.Type],
		OccurredAt: timestamp(e.OccurredAt),
	}
	if e.Portal != nil {
		out.Portal = portalStatusToProto(*e.Portal)
	} else {
		out.Request = requestToProto(e.Request)
	}
	return out
}

// statusWord is a status as the API spells it (SLOT_FOUND), for messages.
func statusWord(st domain.Status) string {
	return strings.TrimPrefix(statusToProto[st].String(), "REQUEST_STATUS_")
}
