package consumer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/app"
)

// missionTTL is how long a mission's time zone is trusted before it is
// asked again.
const missionTTL = time.Minute

// LookupTimeout bounds one call to Requests: a Requests that never answers
// costs the consumer a retry (it resumes from the stored cursor), not the
// stream.
const LookupTimeout = 10 * time.Second

// Lookup asks Requests what an event does not carry: an applicant's name
// (through ListApplicants, which leaves passport numbers out) and a
// mission's time zone. It also answers app.Applicants.
type Lookup struct {
	client  requestsv1.RequestsServiceClient
	timeout time.Duration

	mu       sync.Mutex
	missions map[string]missionEntry
}

type missionEntry struct {
	tz string
	at time.Time
}

// NewLookup returns a Lookup on a Requests client.
func NewLookup(c requestsv1.RequestsServiceClient) *Lookup {
	return &Lookup{client: c, timeout: LookupTimeout, missions: map[string]missionEntry{}}
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, app.ErrRequestsUnavailable, err)
}

// ApplicantExists says whether Requests knows the applicant.
func (l *Lookup) ApplicantExists(ctx context.Context, id uuid.UUID) (bool, error) {
	_, ok, err := l.applicant(ctx, id)
	return ok, err
}

func (l *Lookup) applicant(ctx context.Context, id uuid.UUID) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.client.ListApplicants(ctx, &requestsv1.ListApplicantsRequest{Ids: []string{id.String()}, PageSize: 1})
	if err != nil {
		return "", false, unavailable("look up applicant", err)
	}
	if len(resp.GetApplicants()) == 0 {
		return "", false, nil
	}
	return resp.GetApplicants()[0].GetFullName(), true, nil
}

// ApplicantNames are the full names of the applicants with these ids, in
// one ListApplicants call (at most MaxBatch ids); an applicant Requests no
// longer has is left out.
func (l *Lookup) ApplicantNames(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.client.ListApplicants(ctx, &requestsv1.ListApplicantsRequest{Ids: ids, PageSize: int32(len(ids))})
	if err != nil {
		return nil, unavailable("look up applicants", err)
	}
	for _, a := range resp.GetApplicants() {
		out[a.GetId()] = a.GetFullName()
	}
	return out, nil
}

// MissionTimezone is the mission's IANA time zone ("UTC" for a mission
// without settings).
func (l *Lookup) MissionTimezone(ctx context.Context, code string, now time.Time) (string, error) {
	l.mu.Lock()
	e, ok := l.missions[code]
	l.mu.Unlock()
	if ok && now.Sub(e.at) < missionTTL {
		return e.tz, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.client.GetMission(ctx, &requestsv1.GetMissionRequest{MissionCode: code})
	switch {
	case status.Code(err) == codes.NotFound:
		return "UTC", nil
	case err != nil:
		return "", unavailable("look up mission", err)
	}
	tz := resp.GetMission().GetTimezone()
	if tz == "" {
		tz = "UTC"
	}
	l.mu.Lock()
	l.missions[code] = missionEntry{tz: tz, at: now}
	l.mu.Unlock()
	return tz, nil
}
