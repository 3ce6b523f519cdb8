// Package store is the Requests service's Postgres adapter: every SQL
// statement of the service lives here. pgx's errors become the domain's
// sentinels at this boundary (pgx.ErrNoRows → domain.ErrNotFound).
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// EventChannel is the NOTIFY channel that wakes event streams.
const EventChannel = "requests_events"

// eventLockKey is the transaction-level advisory lock taken right before
// events are inserted (see the events table's comment in the migration).
const eventLockKey = 7316003

// Store runs the service's SQL on a pool.
//
// Lock order. A transaction that locks rows of several kinds takes them in
// this order, so no two wait for each other: portal rows (several: in name
// order), then mission rows, then request rows (several: by id, or SKIP
// LOCKED), then the event lock (appendEvents, last). ClaimDueMissions:
// every portal, its missions (SKIP LOCKED), the requests it expires (SKIP
// LOCKED). ReportCheck: a wall's portal, the claim's mission, its requests.
// ConfirmClaim: the portal (FOR SHARE), then the mission. Request changes
// (cancel, resume, book; an applicant's deletion, after the applicant's
// row) lock requests only; settings, their portal or mission row only.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the underlying pool (the event hub copies its connection config).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// slotJSON is a slot as stored in jsonb columns and event snapshots.
type slotJSON struct {
	Centre       string `json:"centre"`
	VisaCategory string `json:"visa_category"`
	Date         string `json:"date"`
	Time         string `json:"time,omitempty"`
}

func slotsToJSON(slots []domain.Slot) []byte {
	out := make([]slotJSON, len(slots))
	for i, s := range slots {
		out[i] = slotJSON{Centre: s.Centre, VisaCategory: s.VisaCategory, Date: s.Date.Format(domain.DateLayout), Time: s.Time}
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic("store: slots do not marshal: " + err.Error())
	}
	return b
}

func slotsFromJSON(b []byte) ([]domain.Slot, error) {
	var in []slotJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("decode slots: %w", err)
	}
	out := make([]domain.Slot, len(in))
	for i, s := range in {
		d, err := time.Parse(domain.DateLayout, s.Date)
		if err != nil {
			return nil, fmt.Errorf("decode slot date: %w", err)
		}
		out[i] = domain.Slot{Centre: s.Centre, VisaCategory: s.VisaCategory, Date: d, Time: s.Time}
	}
	return out, nil
}

// requestJSON is the request snapshot stored with each event.
type requestJSON struct {
	ID            uuid.UUID       `json:"id"`
	ApplicantID   uuid.UUID       `json:"applicant_id"`
	MissionCode   string          `json:"mission_code"`
	Centre        string          `json:"centre"`
	VisaCategory  string          `json:"visa_category"`
	EarliestDate  string          `json:"earliest_date"`
	LatestDate    string          `json:"latest_date"`
	Status        domain.Status   `json:"status"`
	MatchedSlots  json.RawMessage `json:"matched_slots"`
	MissedSlots   json.RawMessage `json:"missed_slots,omitempty"`
	LastCheckedAt *time.Time      `json:"last_checked_at,omitempty"`
	CheckCount    int             `json:"check_count"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`

	// MatchedSlotCount is absent from snapshots written before it was kept.
	MatchedSlotCount int `json:"matched_slot_count,omitempty"`
}

func requestToJSON(r domain.Request) []byte {
	j := requestJSON{
		ID: r.ID, ApplicantID: r.ApplicantID, MissionCode: r.MissionCode, Centre: r.Centre,
		VisaCategory: r.VisaCategory, EarliestDate: r.EarliestDate.Format(domain.DateLayout),
		LatestDate: r.LatestDate.Format(domain.DateLayout), Status: r.Status,
		MatchedSlots: slotsToJSON(r.MatchedSlots), MatchedSlotCount: r.MatchedSlotCount, CheckCount: r.CheckCount,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if len(r.MissedSlots) > 0 {
		j.MissedSlots = slotsToJSON(r.AnsweredMissedSlots()) // an event shows what an answer does
	}
	if !r.LastCheckedAt.IsZero() {
		t := r.LastCheckedAt
		j.LastCheckedAt = &t
	}
	b, err := json.Marshal(j)
	if err != nil {
		panic("store: request does not marshal: " + err.Error())
	}
	return b
}

func requestFromJSON(b []byte) (domain.Request, error) {
	var j requestJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return domain.Request{}, fmt.Errorf("decode request snapshot: %w", err)
	}
	r := domain.Request{
		ID: j.ID, ApplicantID: j.ApplicantID, MissionCode: j.MissionCode, Centre: j.Centre,
		VisaCategory: j.VisaCategory, Status: j.Status, MatchedSlotCount: j.MatchedSlotCount, CheckCount: j.CheckCount,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
	}
	var err error
	if r.EarliestDate, err = time.Parse(domain.DateLayout, j.EarliestDate); err != nil {
		return r, fmt.Errorf("decode request snapshot: %w", err)
	}
	if r.LatestDate, err = time.Parse(domain.DateLayout, j.LatestDate); err != nil {
		return r, fmt.Errorf("decode request snapshot: %w", err)
	}
	if r.MatchedSlots, err = slotsFromJSON(j.MatchedSlots); err != nil {
		return r, err
	}
	if j.MissedSlots != nil {
		if r.MissedSlots, err = slotsFromJSON(j.MissedSlots); err != nil {
			return r, err
		}
	}
	if j.LastCheckedAt != nil {
		r.LastCheckedAt = *j.LastCheckedAt
	}
	return r, nil
}

// requestCols are a request's columns in scanRequest's order; the
// parts before and after missed_slots are apart for claimedRequestCols.
const (
	requestColsBeforeMissed = `id, applicant_id, mission_code, centre, visa_category, earliest_date,
	latest_date, status, matched_slots, last_checked_at, check_count, created_at, updated_at, `
	requestColsAfterMissed = `,
	matched_slot_count`
	requestCols = requestColsBeforeMissed + `missed_slots` + requestColsAfterMissed
)

// claimedRequestCols are requestCols of the table r for the requests a
// claim carries: the same columns, but of missed_slots only the last
// domain.MaxSlotsPerRequest, all that a claim shows
// (Request.AnsweredMissedSlots). The list holds up to domain.MaxMissedSlots
// (about 80 KB), which every claim of the mission would otherwise send to
// Requests and decode, for each of its requests, to show 20. The request
// scanned from them is not one to match slots against (MatchSlots leaves
// out every missed slot): ReportCheck reads the claimed requests afresh.
var claimedRequestCols = requestColsBeforeMissed + fmt.Sprintf(
	"jsonb_path_query_array(r.missed_slots, '$[last - %d to last]') AS missed_slots", domain.MaxSlotsPerRequest-1) +
	requestColsAfterMissed

// scanRequest reads requestCols; lead are the destinations of columns
// selected before them.
func scanRequest(row pgx.Row, lead ...any) (domain.Request, error) {
	var (
		r         domain.Request
		applicant pgtype.UUID
		slots     []byte
		missed    []byte
		checked   pgtype.Timestamptz
	)
	err := row.Scan(append(lead, &r.ID, &applicant, &r.MissionCode, &r.Centre, &r.VisaCategory, &r.EarliestDate,
		&r.LatestDate, &r.Status, &slots, &checked, &r.CheckCount, &r.CreatedAt, &r.UpdatedAt, &missed,
		&r.MatchedSlotCount)...)
	if err != nil {
		return r, err
	}
	if applicant.Valid {
		r.ApplicantID = applicant.Bytes
	}
	if checked.Valid {
		r.LastCheckedAt = checked.Time
	}
	if r.MatchedSlots, err = slotsFromJSON(slots); err != nil {
		return r, err
	}
	if r.MissedSlots, err = slotsFromJSON(missed); err != nil || len(r.MissedSlots) > 0 {
		return r, err
	}
	r.MissedSlots = nil // none: as a request that never had any
	return r, nil
}

func collectRequests(rows pgx.Rows) ([]domain.Request, error) {
	defer rows.Close()
	var out []domain.Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// notFound turns pgx.ErrNoRows into domain.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.ErrNotFound
	}
	return err
}

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// appendEvents queues, as the last statements of a transaction, the event
// lock, the event rows and the NOTIFY that wakes streams. The lock is held
// until commit, so event ids become visible in increasing order.
func appendEvents(b *pgx.Batch, typ domain.EventType, reqs []domain.Request, at time.Time) {
	if len(reqs) == 0 {
		return
	}
	ids := make([]uuid.UUID, len(reqs))
	snaps := make([][]byte, len(reqs))
	for i, r := range reqs {
		ids[i] = r.ID
		snaps[i] = requestToJSON(r)
	}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, eventLockKey)
	b.Queue(`INSERT INTO requests.events (type, request_id, request, occurred_at)
		SELECT $1, u.id, u.snap, $4 FROM unnest($2::uuid[], $3::jsonb[]) WITH ORDINALITY AS u(id, snap, n)
		ORDER BY u.n`, string(typ), ids, snaps, at)
	b.Queue(`SELECT pg_notify($1, '')`, EventChannel)
}

func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

func writeEvents(ctx context.Context, tx pgx.Tx, typ domain.EventType, reqs []domain.Request, at time.Time) error {
	b := &pgx.Batch{}
	appendEvents(b, typ, reqs, at)
	if err := sendBatch(ctx, tx, b); err != nil {
		return fmt.Errorf("write %s events: %w", typ, err)
	}
	return nil
}
