// Package app is the Requests service's application layer: one method per
// use case, each validating through the domain, reading the clock once,
// sealing and opening passport numbers, and calling the store. The gRPC
// server translates to and from it; the benchmark's direct path calls the
// store underneath it.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
	"github.com/slotwatch/slotwatch/services/requests/internal/metrics"
	"github.com/slotwatch/slotwatch/services/requests/internal/store"
)

// Defaults of the settings an operator can change.
const (
	DefaultCheckInterval = 2 * time.Minute
	DefaultClaimTTL      = 5 * time.Minute
	DefaultRetention     = 90 * 24 * time.Hour
)

// Config holds the service's settings.
type Config struct {
	// CheckInterval: a mission is due again this long after its last check;
	// 0 means always due.
	CheckInterval time.Duration
	// ClaimTTL is the claim length when the caller leaves it 0.
	ClaimTTL time.Duration
	// Walls say when walls pause a portal; zero fields take
	// domain.DefaultWallRules'.
	Walls domain.WallRules
	// Retention: Prune deletes claims, checks and events older than this;
	// 0 keeps everything.
	Retention time.Duration
	// PruneBatch is how many rows one delete statement takes (0:
	// retention.DefaultBatch), and PrunePause the pause between two of
	// them (0: retention.DefaultPause), so pruning a backlog never holds
	// many row locks or the disk for long.
	PruneBatch int
	PrunePause time.Duration
}

// App runs the use cases.
type App struct {
	store   *store.Store
	keys    *secrets.Keyset
	now     func() time.Time
	cfg     Config
	metrics *metrics.Requests
}

// Option changes an App.
type Option func(*App)

// WithMetrics makes the app count claims, lapsed claims and checks (none
// otherwise).
func WithMetrics(m *metrics.Requests) Option { return func(a *App) { a.metrics = m } }

// New returns an App. now is the clock (time.Now in production).
func New(st *store.Store, keys *secrets.Keyset, now func() time.Time, cfg Config, opts ...Option) *App {
	if cfg.ClaimTTL <= 0 {
		cfg.ClaimTTL = DefaultClaimTTL
	}
	d := domain.DefaultWallRules
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.Walls.Window, d.Window}, {&cfg.Walls.PauseMin, d.PauseMin}, {&cfg.Walls.PauseMax, d.PauseMax}, {&cfg.Walls.ResetAfter, d.ResetAfter}} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	if cfg.Walls.Threshold <= 0 {
		cfg.Walls.Threshold = d.Threshold
	}
	if now == nil {
		now = time.Now
	}
	a := &App{store: st, keys: keys, now: now, cfg: cfg}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Metrics is what the app counts with; nil counts nothing (its methods
// accept a nil receiver).
func (a *App) Metrics() *metrics.Requests { return a.metrics }

// Now reads the clock, in UTC at microsecond precision (what Postgres keeps),
// so values returned before and after a round trip through the database are
// equal.
func (a *App) Now() time.Time { return a.now().UTC().Truncate(time.Microsecond) }

// Today is the current calendar day in UTC: the day of rules that belong
// to no mission (a date of birth, the ten-year bound on a reported slot's
// date). A mission's dates are judged by MissionToday.
func (a *App) Today() time.Time { return domain.Today(a.Now(), time.UTC) }

// MissionToday is the current calendar day in the zone of the mission
// code names (UTC for a mission without settings, or not yet seen).
func (a *App) MissionToday(ctx context.Context, code string) (time.Time, error) {
	now := a.Now()
	m, err := a.store.GetMission(ctx, code)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		m = domain.NewMission(code, now)
	case err != nil:
		return time.Time{}, err
	}
	return m.Today(now), nil
}

// passportAD binds a passport ciphertext to its applicant row.
func passportAD(id uuid.UUID) []byte {
	return append([]byte("requests.applicants.passport_number:"), id[:]...)
}

func (a *App) seal(ap *store.ApplicantRecord) error {
	if ap.PassportNumber == "" {
		ap.PassportCiphertext = nil
		return nil
	}
	ct, err := a.keys.Encrypt([]byte(ap.PassportNumber), passportAD(ap.ID))
	if err != nil {
		return fmt.Errorf("seal passport number: %w", err)
	}
	ap.PassportCiphertext = ct
	ap.PassportNumber = ""
	return nil
}

// CreateApplicant stores a validated applicant (its fields set by
// domain.ApplicantFields.Apply), the passport number sealed.
func (a *App) CreateApplicant(ctx context.Context, ap domain.Applicant) (domain.Applicant, error) {
	now := a.Now()
	ap.ID = uuid.Must(uuid.NewV7())
	ap.CreatedAt, ap.UpdatedAt = now, now
	rec := store.ApplicantRecord{Applicant: ap}
	if err := a.seal(&rec); err != nil {
		return domain.Applicant{}, err
	}
	if err := a.store.CreateApplicant(ctx, rec); err != nil {
		return domain.Applicant{}, err
	}
	return rec.Applicant, nil
}

// GetApplicant returns the applicant with the passport number opened: the
// one use case that reveals it.
func (a *App) GetApplicant(ctx context.Context, id uuid.UUID) (domain.Applicant, error) {
	rec, err := a.store.GetApplicant(ctx, id)
	if err != nil {
		return domain.Applicant{}, err
	}
	if rec.PassportCiphertext != nil {
		pt, err := a.keys.Decrypt(rec.PassportCiphertext, passportAD(rec.ID))
		if err != nil {
			return domain.Applicant{}, fmt.Errorf("open passport number of applicant %s: %w", rec.ID, err)
		}
		rec.PassportNumber = string(pt)
	}
	return rec.Applicant, nil
}

// ListApplicants pages applicants, without passport numbers: all of them,
// or only those in ids when it is not empty.
func (a *App) ListApplicants(ctx context.Context, ids []uuid.UUID, pos *store.Position, limit int) ([]domain.Applicant, bool, error) {
	recs, more, err := a.store.ListApplicants(ctx, ids, pos, limit)
	if err != nil {
		return nil, false, err
	}
	out := make([]domain.Applicant, len(recs))
	for i, r := range recs {
		out[i] = r.Applicant
	}
	return out, more, nil
}

// UpdateApplicant applies the fields that are set to the stored applicant
// and returns it without its passport number. Callers validate the fields
// first (domain.ApplicantFields.Apply on a scratch applicant) to report
// every violation; a field that still fails here is returned as field errors
// and nothing is written.
func (a *App) UpdateApplicant(ctx context.Context, id uuid.UUID, f domain.ApplicantFields) (domain.Applicant, error) {
	now := a.Now()
	rec, err := a.store.UpdateApplicant(ctx, id, func(rec *store.ApplicantRecord) error {
		var bad apirule.FieldErrors
		f.Apply(&bad, &rec.Applicant, domain.Today(now, time.UTC))
		if err := bad.Err(); err != nil {
			return err
		}
		rec.UpdatedAt = now
		if f.PassportNumber != nil {
			return a.seal(rec)
		}
		return nil
	})
	if err != nil {
		return domain.Applicant{}, err
	}
	rec.PassportNumber = ""
	return rec.Applicant, nil
}

// DeleteApplicant removes the applicant and cancels their pending requests.
func (a *App) DeleteApplicant(ctx context.Context, id uuid.UUID) (int, error) {
	return a.store.DeleteApplicant(ctx, id, a.Now())
}

// CreateRequest stores a validated PENDING request (from domain.NewRequest).
func (a *App) CreateRequest(ctx context.Context, r domain.Request) (domain.Request, error) {
	now := a.Now()
	r.ID = uuid.Must(uuid.NewV7())
	r.Status = domain.StatusPending
	r.CreatedAt, r.UpdatedAt = now, now
	if err := a.store.CreateRequest(ctx, r); err != nil {
		return domain.Request{}, err
	}
	return r, nil
}

// GetRequest returns one request.
func (a *App) GetRequest(ctx context.Context, id uuid.UUID) (domain.Request, error) {
	return a.store.GetRequest(ctx, id)
}

// ListRequests pages requests.
func (a *App) ListRequests(ctx context.Context, f store.RequestFilter, pos *store.Position, limit int) ([]domain.Request, bool, error) {
	return a.store.ListRequests(ctx, f, pos, limit)
}

// CancelRequest cancels a PENDING request.
func (a *App) CancelRequest(ctx context.Context, id uuid.UUID) (domain.Request, error) {
	return a.store.CancelRequest(ctx, id, a.Now())
}

// ConfirmBooked turns a SLOT_FOUND request BOOKED (a BOOKED one is
// returned unchanged).
func (a *App) ConfirmBooked(ctx context.Context, id uuid.UUID) (domain.Request, error) {
	return a.store.ConfirmBooked(ctx, id, a.Now())
}

// ResumeWatching turns a SLOT_FOUND request PENDING again, remembering the
// slots it matched as missed (a PENDING one is returned unchanged).
func (a *App) ResumeWatching(ctx context.Context, id uuid.UUID) (domain.Request, error) {
	return a.store.ResumeWatching(ctx, id, a.Now())
}

// ClaimDueMissions claims up to max due missions for checkerID; ttl 0 means
// the configured default. The ttl is cut to whole microseconds, as Now is,
// so the expires_at returned equals the one stored.
func (a *App) ClaimDueMissions(ctx context.Context, checkerID string, max int, ttl time.Duration) ([]domain.Claim, error) {
	if ttl <= 0 {
		ttl = a.cfg.ClaimTTL
	}
	ttl = ttl.Truncate(time.Microsecond)
	claims, err := a.store.ClaimDueMissions(ctx, store.ClaimParams{
		CheckerID: checkerID, Max: max, TTL: ttl, CheckInterval: a.cfg.CheckInterval, Walls: a.cfg.Walls, Now: a.Now(),
	})
	if err == nil {
		a.metrics.Claimed(claims)
	}
	return claims, err
}

// ConfirmClaim answers whether a claimed check may open the portal now
// (store.ConfirmClaim).
func (a *App) ConfirmClaim(ctx context.Context, claimID uuid.UUID) error {
	return a.store.ConfirmClaim(ctx, claimID, a.Now())
}

// ReportCheckResult ends a claim with its result (domain.ApplyCheck decides
// what happens to the claimed requests). A report sent again, of a claim
// reported with the same outcome, gets the recorded answer and is counted
// once.
func (a *App) ReportCheckResult(ctx context.Context, res domain.CheckResult) (store.CheckRecord, []domain.Request, error) {
	now := a.Now()
	rec, matched, err := a.store.ReportCheck(ctx, res, now, a.cfg.Walls, func(timezone string, reqs []domain.Request) ([]domain.Request, []domain.Request) {
		return domain.ApplyCheck(reqs, res, now, domain.Zone(timezone))
	})
	if err == nil && !rec.Retried {
		a.metrics.Checked(res.Outcome)
	}
	return rec, matched, err
}

// UpsertMission creates the mission's settings or changes the fields that
// are set. Callers validate the fields first (domain.MissionFields.Apply
// on a scratch mission) to report every violation; a field that still
// fails here is returned as field errors and nothing is written.
func (a *App) UpsertMission(ctx context.Context, code string, f domain.MissionFields) (domain.Mission, error) {
	now := a.Now()
	return a.store.UpsertMission(ctx, code, now, func(m *domain.Mission) error {
		var bad apirule.FieldErrors
		f.Apply(&bad, m)
		if err := bad.Err(); err != nil {
			return err
		}
		m.UpdatedAt = now
		return nil
	})
}

// GetMission returns one mission's settings.
func (a *App) GetMission(ctx context.Context, code string) (domain.Mission, error) {
	return a.store.GetMission(ctx, code)
}

// ListMissions pages missions by code, after the code after.
func (a *App) ListMissions(ctx context.Context, after string, limit int) ([]domain.Mission, bool, error) {
	return a.store.ListMissions(ctx, after, limit)
}

// ExpireDue expires every request that is due, and writes the
// PORTAL_RESUMED events of pauses that ended (the periodic sweep; claims
// do both too).
func (a *App) ExpireDue(ctx context.Context) (int, error) {
	if err := a.store.ResumeLapsed(ctx, a.Now(), a.cfg.Walls); err != nil {
		return 0, err
	}
	total := 0
	for {
		n, err := a.store.ExpireDue(ctx, a.Now())
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}
