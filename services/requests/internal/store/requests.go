package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// CreateRequest inserts r (PENDING) and its created event. A missing
// applicant is domain.ErrApplicantNotFound.
func (s *Store) CreateRequest(ctx context.Context, r domain.Request) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := insertMission(ctx, tx, r.MissionCode, r.CreatedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO requests.appointment_requests (`+requestCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 0, $10, $11, $12, $13)`,
			r.ID, r.ApplicantID, r.MissionCode, r.Centre, r.VisaCategory, r.EarliestDate, r.LatestDate,
			string(r.Status), slotsToJSON(r.MatchedSlots), r.CreatedAt, r.UpdatedAt, slotsToJSON(r.MissedSlots), r.MatchedSlotCount)
		if isForeignKeyViolation(err) {
			return domain.ErrApplicantNotFound
		}
		if err != nil {
			return fmt.Errorf("insert request: %w", err)
		}
		return writeEvents(ctx, tx, domain.EventCreated, []domain.Request{r}, r.CreatedAt)
	})
}

// GetRequest reads one request.
func (s *Store) GetRequest(ctx context.Context, id uuid.UUID) (domain.Request, error) {
	r, err := scanRequest(s.pool.QueryRow(ctx, `SELECT `+requestCols+` FROM requests.appointment_requests WHERE id = $1`, id))
	if err != nil {
		return r, fmt.Errorf("get request: %w", notFound(err))
	}
	return r, nil
}

// RequestFilter narrows ListRequests; zero fields match everything.
type RequestFilter struct {
	Status      domain.Status
	MissionCode string
	ApplicantID uuid.UUID
}

// ListRequests returns up to limit requests after pos matching f, oldest
// first, and whether more follow.
func (s *Store) ListRequests(ctx context.Context, f RequestFilter, pos *Position, limit int) ([]domain.Request, bool, error) {
	query, args := listRequestsQuery(f, pos, limit+1)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list requests: %w", err)
	}
	out, err := collectRequests(rows)
	if err != nil {
		return nil, false, fmt.Errorf("list requests: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// listRequestsQuery writes the conditions of the filters that are set, and
// only those: a catch-all such as ($1 IS NULL OR status = $1) plans, once
// Postgres switches a prepared statement to its generic plan, as a filter
// over whichever index gives the order, and the keyset then stops being an
// index condition. Each filter has an index on (filter, created_at, id).
// Values travel as parameters.
func listRequestsQuery(f RequestFilter, pos *Position, limit int) (string, []any) {
	var (
		where []string
		args  []any
	)
	param := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Status != "" {
		where = append(where, "status = "+param(string(f.Status)))
	}
	if f.MissionCode != "" {
		where = append(where, "mission_code = "+param(f.MissionCode))
	}
	if f.ApplicantID != uuid.Nil {
		where = append(where, "applicant_id = "+param(f.ApplicantID))
	}
	if pos != nil {
		where = append(where, "(created_at, id) > ("+param(pos.CreatedAt)+", "+param(pos.ID)+")")
	}
	query := `SELECT ` + requestCols + ` FROM requests.appointment_requests`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	return query + ` ORDER BY created_at, id LIMIT ` + param(limit), args
}

// CancelRequest cancels a request (domain.Request.Cancel).
func (s *Store) CancelRequest(ctx context.Context, id uuid.UUID, now time.Time) (domain.Request, error) {
	return s.changeStatus(ctx, id, domain.EventCancelled, func(r *domain.Request) (bool, error) { return r.Cancel(now) }, now)
}

// ConfirmBooked books a request (domain.Request.ConfirmBooked).
func (s *Store) ConfirmBooked(ctx context.Context, id uuid.UUID, now time.Time) (domain.Request, error) {
	return s.changeStatus(ctx, id, domain.EventBooked, func(r *domain.Request) (bool, error) { return r.ConfirmBooked(now) }, now)
}

// ResumeWatching makes a request pending again (domain.Request.ResumeWatching).
func (s *Store) ResumeWatching(ctx context.Context, id uuid.UUID, now time.Time) (domain.Request, error) {
	return s.changeStatus(ctx, id, domain.EventWatchingResumed, func(r *domain.Request) (bool, error) { return r.ResumeWatching(now) }, now)
}

// changeStatus reads the request under a row lock and applies change (a
// domain.Request method); when it changed the request, it writes the
// status and slots back with an event of type typ in the same transaction.
func (s *Store) changeStatus(ctx context.Context, id uuid.UUID, typ domain.EventType, change func(*domain.Request) (bool, error), now time.Time) (domain.Request, error) {
	var r domain.Request
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanRequest(tx.QueryRow(ctx, `SELECT `+requestCols+` FROM requests.appointment_requests WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return fmt.Errorf("get request: %w", notFound(err))
		}
		changed, err := change(&r)
		if err != nil || !changed {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE requests.appointment_requests
			SET status = $2, matched_slots = $3, missed_slots = $4, updated_at = $5, matched_slot_count = $6 WHERE id = $1`,
			r.ID, string(r.Status), slotsToJSON(r.MatchedSlots), slotsToJSON(r.MissedSlots), r.UpdatedAt, r.MatchedSlotCount); err != nil {
			return fmt.Errorf("%s request: %w", typ, err)
		}
		return writeEvents(ctx, tx, typ, []domain.Request{r}, now)
	})
	return r, err
}

// expireBatch bounds how many requests one call expires, so a backlog (every
// request ending on the same day) spreads over several calls.
const expireBatch = 500

// expireSQL runs on every claim and sweep, over a table that is mostly
// history (expired, slot_found, cancelled rows), so both halves must stay on
// an index however much history there is. The inner query walks the partial
// index on pending requests' latest_date from the oldest end (ordering by
// id instead walked the primary key through every row, filtering), up to
// the latest of the missions' todays ($1); each row's own limit is its
// mission's today, from the zones passed in $4 and $5 (missionDays), so
// the rows it reads and skips are at most those ending on the day or two
// between the earliest and the latest zone's today. The
// outer one matches ids with = ANY of the array, an index condition on the
// primary key; joining the subquery instead (UPDATE ... FROM (...) d WHERE
// r.id = d.id) is planned as a hash join over a sequential scan of the whole
// table, because the planner guesses thousands of due rows (status and
// latest_date are estimated as independent, which extended statistics on
// the pair do not change).
const expireSQL = `UPDATE requests.appointment_requests SET status = 'expired', updated_at = $2
	WHERE id = ANY (ARRAY(SELECT r.id FROM requests.appointment_requests r
	                      JOIN requests.missions m ON m.code = r.mission_code
	                      JOIN unnest($4::text[], $5::date[]) AS z(name, today) ON z.name = m.timezone
	                      WHERE r.status = 'pending' AND r.latest_date < $1 AND r.latest_date < z.today
	                      ORDER BY r.latest_date LIMIT $3 FOR UPDATE OF r SKIP LOCKED))
	RETURNING ` + requestCols

// expire turns PENDING requests whose latest_date is before their
// mission's today EXPIRED (domain.Request.ExpiredOn in SQL) and queues
// their events on b. Rows another transaction holds are skipped, not
// waited for: the next call takes them.
func expire(ctx context.Context, tx pgx.Tx, b *pgx.Batch, md missionDays, now time.Time) (int, error) {
	if len(md.zones) == 0 {
		return 0, nil // no mission, so no request
	}
	rows, err := tx.Query(ctx, expireSQL, md.latest, now, expireBatch, md.zones, md.days)
	if err != nil {
		return 0, fmt.Errorf("expire requests: %w", err)
	}
	expired, err := collectRequests(rows)
	if err != nil {
		return 0, fmt.Errorf("expire requests: %w", err)
	}
	appendEvents(b, domain.EventExpired, expired, now)
	return len(expired), nil
}

// ExpireDue expires what is due now, for the periodic sweep; ClaimDueMissions
// does the same on every call.
func (s *Store) ExpireDue(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		md, err := readMissionDays(ctx, tx, now)
		if err != nil {
			return err
		}
		if n, err = expire(ctx, tx, b, md, now); err != nil {
			return err
		}
		return sendBatch(ctx, tx, b)
	})
	return n, err
}

// ClaimParams are the inputs of ClaimDueMissions.
type ClaimParams struct {
	CheckerID string
	Max       int
	TTL       time.Duration
	// CheckInterval is how long after its last check a mission is due again;
	// 0 makes every mission with pending requests due.
	CheckInterval time.Duration
	// Walls are the rules of portal pauses (for the status PORTAL_RESUMED
	// events carry).
	Walls domain.WallRules
	Now   time.Time
}

// claimableSQL is the FROM and WHERE of the missions that may be claimed
// now, but for their portal's cap and pause: due (the due condition
// ClaimDueMissions writes, or none), with no live claim, not claimed
// within their portal's minimum interval, with a pending request whose
// window has not ended by the mission's today (z.today, from missionDays).
func claimableSQL(due string) string {
	return `FROM requests.missions m
				JOIN unnest(@zones::text[], @days::date[]) AS z(name, today) ON z.name = m.timezone
				LEFT JOIN requests.portals p ON p.name = m.portal
				WHERE (m.claim_expires_at IS NULL OR m.claim_expires_at <= @lapsed_before)
				  ` + due + `
				  AND (p.min_mission_interval_us IS NULL OR p.min_mission_interval_us = 0 OR m.last_claimed_at IS NULL
				       OR m.last_claimed_at <= @now::timestamptz - p.min_mission_interval_us * interval '1 microsecond')
				  AND EXISTS (SELECT 1 FROM requests.appointment_requests r
				              WHERE r.mission_code = m.code AND r.status = 'pending' AND r.latest_date >= z.today)`
}

// withinBudget picks, among the claimable missions of the portals with a
// budget left (budgets, from lockPortalsForClaim), as many of each portal
// as its budget allows, in claim order. The portal rows are locked, so no
// other transaction claims these missions meanwhile.
func withinBudget(ctx context.Context, tx pgx.Tx, budgets map[string]int, due string, args pgx.NamedArgs) ([]string, error) {
	var open []string
	for name, n := range budgets {
		if n > 0 {
			open = append(open, name)
		}
	}
	if len(open) == 0 {
		return nil, nil
	}
	args["open"] = open
	rows, err := tx.Query(ctx, `SELECT m.code, m.portal `+claimableSQL(due)+`
				  AND m.portal = ANY(@open::text[])
				ORDER BY m.last_checked_at NULLS FIRST, m.code`, args)
	if err != nil {
		return nil, fmt.Errorf("read missions of capped portals: %w", err)
	}
	defer rows.Close()
	taken := map[string]int{}
	var codes []string
	for rows.Next() {
		var code, portal string
		if err := rows.Scan(&code, &portal); err != nil {
			return nil, fmt.Errorf("read missions of capped portals: %w", err)
		}
		if taken[portal] < budgets[portal] {
			taken[portal]++
			codes = append(codes, code)
		}
	}
	return codes, rows.Err()
}

// ClaimDueMissions claims up to p.Max missions that have PENDING requests
// whose window has not ended by the mission's today (in its zone; each
// claim carries the zone's name), were last checked at least
// p.CheckInterval ago (any time, when it is 0), and hold no claim: never
// claimed, reported, or lapsed at least domain.ClaimGrace ago. Mission rows are taken with FOR UPDATE SKIP LOCKED and re-checked
// after locking, so concurrent callers on any number of replicas never get
// the same mission; a claim is live until its claim_expires_at, so one
// that is never reported lapses by itself.
// A claim carries at most apirule.MaxRequestsPerClaim of the mission's
// pending requests, those checked least recently first, and the answer
// stops before domain.MaxAnswerBytes (pickMissions): a mission that does
// not fit is not claimed.
//
// Portals (requests.portals): every portal row is locked FOR UPDATE first,
// so claimers on every replica take turns on them; a portal's missions are
// claimed only up to its budget (domain.Portal.Budget: its cap less its
// claims in the last minute, none while paused), and a mission of a portal
// with a minimum interval only that long after its last claim. The claim
// is logged with its portal, which is what the next count reads. It also
// expires what is due (after locking the missions: the lock order).
func (s *Store) ClaimDueMissions(ctx context.Context, p ClaimParams) ([]domain.Claim, error) {
	// With no interval a mission is always due. Leaving the condition out,
	// rather than comparing last_checked_at with now, keeps a replica whose
	// clock is behind the one that wrote last_checked_at from seeing
	// nothing due.
	due := ""
	if p.CheckInterval > 0 {
		due = "AND (m.last_checked_at IS NULL OR m.last_checked_at <= @due_before)"
	}
	var claims []domain.Claim
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		claims = nil
		events := &pgx.Batch{}
		// The lock order (Store): portals, then missions, then requests.
		// Expiring first took request locks before the portal rows, and
		// deadlocked with a report of a wall, which holds its portal's row
		// and waits for its claim's requests.
		budgets, err := lockPortalsForClaim(ctx, tx, events, p.Now, p.Walls)
		if err != nil {
			return err
		}
		md, err := readMissionDays(ctx, tx, p.Now)
		if err != nil {
			return err
		}
		expires := p.Now.Add(p.TTL)
		args := pgx.NamedArgs{
			"now": p.Now, "lapsed_before": p.Now.Add(-domain.ClaimGrace), "due_before": p.Now.Add(-p.CheckInterval),
			"zones": md.zones, "days": md.days, "max": p.Max, "interval_us": p.CheckInterval.Microseconds(),
			"grace_us": domain.ClaimGrace.Microseconds(),
		}
		allowed, err := withinBudget(ctx, tx, budgets, due, args)
		if err != nil {
			return err
		}
		limited := make([]string, 0, len(budgets))
		for name := range budgets {
			limited = append(limited, name)
		}
		args["limited"], args["allowed"] = limited, allowed
		picked, err := pickMissions(ctx, tx, due, args)
		if err != nil {
			return err
		}
		// Claims carry no request that expires here: they read windows
		// that have not ended by the mission's today, and this expires
		// those that have.
		if _, err := expire(ctx, tx, events, md, p.Now); err != nil {
			return err
		}
		if err := insertClaims(ctx, tx, picked, p.CheckerID, p.Now, expires); err != nil {
			return err
		}
		for _, m := range picked {
			m.claim.CheckerID, m.claim.ClaimedAt, m.claim.ExpiresAt = p.CheckerID, p.Now, expires
			slices.SortFunc(m.claim.Requests, func(a, b domain.Request) int {
				return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), bytes.Compare(a.ID[:], b.ID[:]))
			})
			claims = append(claims, m.claim)
		}
		return sendBatch(ctx, tx, events)
	})
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// pickedMission is a mission ClaimDueMissions holds the row lock of, to
// claim.
type pickedMission struct {
	claim  domain.Claim // its Requests least recently checked first
	portal string
}

// pickMissions locks (FOR UPDATE SKIP LOCKED) up to @max claimable
// missions (claimableSQL) in claim order, those of a portal with a cap or
// a pause only if withinBudget allowed them (@limited, @allowed), and
// returns them with the requests each claim carries: its pending requests
// whose window has not ended by its today, at most
// apirule.MaxRequestsPerClaim, those checked least recently first. A
// mission's DueAt and whether its previous claim lapsed unreported are read
// under its row lock, so exactly once.
//
// It stops reading before the answer would pass domain.MaxAnswerBytes (the
// claims' and requests' SizeBound), so that the answer reaches the client:
// the missions it returns are those that got requests (at least one
// request of the first); the others are not claimed (their row locks go at
// commit), and a mission's requests left out come with its next claims.
func pickMissions(ctx context.Context, tx pgx.Tx, due string, args pgx.NamedArgs) ([]pickedMission, error) {
	args["per_claim"] = apirule.MaxRequestsPerClaim
	rows, err := tx.Query(ctx, `
		WITH picked AS (
			-- due_at is when each condition below last became true
			-- (Claim.DueAt); GREATEST skips the NULLs of a mission never
			-- checked or with no lapsed claim. z.today is the day it is in
			-- the mission's zone (missionDays).
			SELECT m.code, m.timezone, m.portal, z.today, m.last_checked_at,
			       GREATEST(m.last_checked_at + @interval_us * interval '1 microsecond',
			                m.claim_expires_at + @grace_us * interval '1 microsecond',
			                (SELECT min(r.updated_at) FROM requests.appointment_requests r
			                 WHERE r.mission_code = m.code AND r.status = 'pending' AND r.latest_date >= z.today)) AS due_at,
			       EXISTS (SELECT 1 FROM requests.claims old WHERE old.id = m.claim_id AND old.reported_at IS NULL) AS lapsed
			`+claimableSQL(due)+`
			  AND (m.portal <> ALL(@limited::text[]) OR m.code = ANY(@allowed::text[]))
			ORDER BY m.last_checked_at NULLS FIRST, m.code
			LIMIT @max
			FOR UPDATE OF m SKIP LOCKED
		)
		SELECT p.timezone, p.portal, p.due_at, p.lapsed, q.*
		FROM picked p
		CROSS JOIN LATERAL (SELECT `+claimedRequestCols+` FROM requests.appointment_requests r
		                    WHERE r.mission_code = p.code AND r.status = 'pending' AND r.latest_date >= p.today
		                    ORDER BY r.last_checked_at NULLS FIRST, r.created_at, r.id
		                    LIMIT @per_claim) q
		ORDER BY p.last_checked_at NULLS FIRST, p.code, q.last_checked_at NULLS FIRST, q.created_at, q.id`, args)
	if err != nil {
		return nil, fmt.Errorf("claim missions: %w", err)
	}
	defer rows.Close()
	var (
		out  []pickedMission
		used int
	)
	for rows.Next() {
		var m pickedMission
		r, err := scanRequest(rows, &m.claim.Timezone, &m.portal, &m.claim.DueAt, &m.claim.TookOverLapsed)
		if err != nil {
			return nil, fmt.Errorf("claim missions: %w", err)
		}
		size := r.SizeBound()
		first := len(out) == 0 || out[len(out)-1].claim.MissionCode != r.MissionCode
		if first {
			size += domain.ClaimSizeBound(r.MissionCode, m.claim.Timezone)
		}
		if used+size > domain.MaxAnswerBytes && used > 0 {
			break
		}
		used += size
		if first {
			m.claim.MissionCode = r.MissionCode
			out = append(out, m)
		}
		last := &out[len(out)-1].claim
		last.Requests = append(last.Requests, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim missions: %w", err)
	}
	return out, nil
}

// insertClaims claims the picked missions (their rows are locked) and logs
// each claim, with the requests it carries, in requests.claims (with its
// portal, which the next claims' cap counts).
func insertClaims(ctx context.Context, tx pgx.Tx, picked []pickedMission, checker string, now, expires time.Time) error {
	if len(picked) == 0 {
		return nil
	}
	var (
		codes, portals []string
		ids            []uuid.UUID
		reqClaims      []uuid.UUID
		reqIDs         []uuid.UUID
	)
	for i := range picked {
		m := &picked[i]
		m.claim.ID = uuid.New()
		codes, portals, ids = append(codes, m.claim.MissionCode), append(portals, m.portal), append(ids, m.claim.ID)
		for _, r := range m.claim.Requests {
			reqClaims, reqIDs = append(reqClaims, m.claim.ID), append(reqIDs, r.ID)
		}
	}
	_, err := tx.Exec(ctx, `
		WITH c AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[]) AS c(code, id, portal)),
		     r AS (SELECT x.claim, array_agg(x.id ORDER BY x.n) AS ids
		           FROM unnest($4::uuid[], $5::uuid[]) WITH ORDINALITY AS x(claim, id, n) GROUP BY x.claim),
		     claimed AS (UPDATE requests.missions m SET claim_id = c.id, claim_expires_at = $6, last_claimed_at = $7
		                 FROM c WHERE m.code = c.code)
		INSERT INTO requests.claims (id, mission_code, checker_id, request_ids, claimed_at, expires_at, portal)
		SELECT c.id, c.code, $8, r.ids, $7, $6, c.portal FROM c JOIN r ON r.claim = c.id`,
		codes, ids, portals, reqClaims, reqIDs, expires, now, checker)
	if err != nil {
		return fmt.Errorf("claim missions: %w", err)
	}
	return nil
}

// CheckRecord is a recorded check.
type CheckRecord struct {
	ID          int64
	MissionCode string
	CheckerID   string
	// Retried: the claim had been reported with this outcome already, and
	// this is that report's record (nothing was written again).
	Retried bool
}

// ReportCheck ends a live claim and records its check in one transaction:
// the claim is marked reported; the mission's claim ends (claim_expires_at
// becomes NULL, so the mission is free at once on every replica, whatever
// its clock) and its last_checked_at moves to now; the check row is
// written; the claim's requests that are still PENDING are read under row
// locks and passed to apply (domain.ApplyCheck), whose changes are written
// back with a slot_found event for each match. A wall (CAPTCHA, blocked,
// rate limited, maintenance) of a mission with a portal is recorded against the portal,
// which it may pause (recordWall). apply gets the mission's
// time zone, whose today decides which windows are still open. A claim is live until its
// claim_expires_at, exclusive, with no grace (see domain.ClaimGrace); one
// that is unknown, lapsed, taken over or already reported with another
// outcome is domain.ErrClaimNotHeld, and nothing is written. A claim
// already reported with this outcome (a report sent again after its answer
// was lost) gets that report's answer (recordedCheck), and nothing is
// written again.
func (s *Store) ReportCheck(ctx context.Context, res domain.CheckResult, now time.Time, walls domain.WallRules,
	apply func(timezone string, pending []domain.Request) (changed, matched []domain.Request)) (CheckRecord, []domain.Request, error) {
	var (
		rec     CheckRecord
		matched []domain.Request
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var (
			reqIDs   []uuid.UUID
			timezone string
			portal   string
		)
		if res.Outcome.Wall() {
			// A wall may pause the portal: take the portal's row lock
			// first (the order ClaimDueMissions takes them in), so that a
			// ConfirmClaim from now on waits for this report and sees the
			// pause it may make. The wall is the claim's portal's.
			var err error
			if portal, err = lockClaimPortal(ctx, tx, res.ClaimID, now); err != nil {
				return err
			}
		}
		err := tx.QueryRow(ctx, `
			WITH m AS (
				UPDATE requests.missions SET claim_expires_at = NULL, last_checked_at = $2
				WHERE claim_id = $1 AND claim_expires_at > $2
				RETURNING code, timezone, portal
			)
			UPDATE requests.claims c SET reported_at = $2
			FROM m WHERE c.id = $1 AND c.mission_code = m.code AND c.reported_at IS NULL
			RETURNING c.mission_code, c.checker_id, c.request_ids, m.timezone`,
			res.ClaimID, now).Scan(&rec.MissionCode, &rec.CheckerID, &reqIDs, &timezone)
		if err != nil {
			if notFound(err) == domain.ErrNotFound {
				var found bool
				if rec, matched, found, err = recordedCheck(ctx, tx, res.ClaimID, res.Outcome); err == nil && !found {
					err = domain.ErrClaimNotHeld
				}
				return err
			}
			return fmt.Errorf("end claim: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT `+requestCols+` FROM requests.appointment_requests
			WHERE id = ANY($1) AND status = 'pending' ORDER BY id FOR UPDATE`, reqIDs)
		if err != nil {
			return fmt.Errorf("lock claimed requests: %w", err)
		}
		pending, err := collectRequests(rows)
		if err != nil {
			return fmt.Errorf("lock claimed requests: %w", err)
		}
		var changed []domain.Request
		changed, matched = apply(timezone, pending)

		b := &pgx.Batch{}
		if len(changed) > 0 {
			ids := make([]uuid.UUID, len(changed))
			statuses := make([]string, len(changed))
			slots := make([][]byte, len(changed))
			counts := make([]int32, len(changed))
			found := make([]int32, len(changed))
			checked := make([]time.Time, len(changed))
			updated := make([]time.Time, len(changed))
			for i, r := range changed {
				ids[i], statuses[i], slots[i] = r.ID, string(r.Status), slotsToJSON(r.MatchedSlots)
				counts[i], checked[i], updated[i] = int32(r.CheckCount), r.LastCheckedAt, r.UpdatedAt
				found[i] = int32(r.MatchedSlotCount)
			}
			b.Queue(`UPDATE requests.appointment_requests r SET status = u.status, matched_slots = u.slots,
				check_count = u.count, last_checked_at = u.checked, updated_at = u.updated, matched_slot_count = u.found
				FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::int[], $5::timestamptz[], $6::timestamptz[], $7::int[])
				     AS u(id, status, slots, count, checked, updated, found)
				WHERE r.id = u.id`, ids, statuses, slots, counts, checked, updated, found)
		}
		// The check keeps how many slots the portal showed and the
		// earliest of those that matched (domain.CheckedSlots), not them all.
		b.Queue(`INSERT INTO requests.checks (claim_id, mission_code, checker_id, account_id, outcome, slots, slot_count, detail, checked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			res.ClaimID, rec.MissionCode, rec.CheckerID, res.AccountID, string(res.Outcome), slotsToJSON(domain.CheckedSlots(matched)),
			len(res.Slots), res.Detail, now).
			QueryRow(func(row pgx.Row) error { return row.Scan(&rec.ID) })
		appendEvents(b, domain.EventSlotFound, matched, now)
		if res.Outcome.Wall() && portal != "" {
			if err := recordWall(ctx, tx, b, portal, res.Outcome, res.RetryAfter, now, walls); err != nil {
				return err
			}
		}
		if err := sendBatch(ctx, tx, b); err != nil {
			return fmt.Errorf("record check: %w", err)
		}
		return nil
	})
	if err != nil {
		return CheckRecord{}, nil, err
	}
	return rec, matched, nil
}

// recordedCheck is the answer a report of the claim with outcome got, when
// the claim was reported with that outcome (found): its check, and the
// claim's requests that check matched (those whose last check it was and
// that kept its match), as ReportCheck answered them. Otherwise found is
// false.
func recordedCheck(ctx context.Context, tx pgx.Tx, claimID uuid.UUID, outcome domain.Outcome) (rec CheckRecord, matched []domain.Request, found bool, err error) {
	var (
		recorded  string
		checkedAt time.Time
		reqIDs    []uuid.UUID
	)
	err = tx.QueryRow(ctx, `SELECT k.id, k.mission_code, k.checker_id, k.outcome, k.checked_at, c.request_ids
		FROM requests.checks k JOIN requests.claims c ON c.id = k.claim_id WHERE k.claim_id = $1`, claimID).
		Scan(&rec.ID, &rec.MissionCode, &rec.CheckerID, &recorded, &checkedAt, &reqIDs)
	switch {
	case notFound(err) == domain.ErrNotFound, err == nil && recorded != string(outcome):
		return CheckRecord{}, nil, false, nil
	case err != nil:
		return CheckRecord{}, nil, false, fmt.Errorf("read recorded check: %w", err)
	}
	rec.Retried = true
	if outcome != domain.OutcomeSlotsFound {
		return rec, nil, true, nil
	}
	// In the order ReportCheck read them (ApplyCheck keeps it).
	rows, err := tx.Query(ctx, `SELECT `+requestCols+` FROM requests.appointment_requests
		WHERE id = ANY($1) AND last_checked_at = $2 AND matched_slot_count > 0 ORDER BY id`, reqIDs, checkedAt)
	if err != nil {
		return CheckRecord{}, nil, false, fmt.Errorf("read recorded matches: %w", err)
	}
	if matched, err = collectRequests(rows); err != nil {
		return CheckRecord{}, nil, false, fmt.Errorf("read recorded matches: %w", err)
	}
	return rec, matched, true, nil
}

// ConfirmClaim is ConfirmClaim's check: the claim is live (as in
// ReportCheck) and the portal it was made for is not paused at now. A claim whose
// portal is paused is ended there (its reported_at, the claim log's end of
// a claim, is set), with no check recorded and the mission's last check
// unchanged (so it is due again once the pause is
// over): a *domain.PausedError, which is domain.ErrPortalPaused. A claim not held
// is domain.ErrClaimNotHeld.
func (s *Store) ConfirmClaim(ctx context.Context, claimID uuid.UUID, now time.Time) error {
	var paused error // returned once the claim's end is committed
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The portal's row is read under a share lock, which waits for a
		// report of a wall that holds it (ReportCheck) and then reads the
		// pause it made. The portal is the claim's, which the check goes
		// to and counts its walls against, even if UpsertMission moved the
		// mission to another one since.
		var portal string
		err := tx.QueryRow(ctx, `SELECT c.portal FROM requests.missions m JOIN requests.claims c ON c.id = m.claim_id
			WHERE m.claim_id = $1 AND m.claim_expires_at > $2`, claimID, now).Scan(&portal)
		if err != nil {
			if notFound(err) == domain.ErrNotFound {
				return domain.ErrClaimNotHeld
			}
			return fmt.Errorf("read claim: %w", err)
		}
		var until pgtype.Timestamptz
		if portal != "" {
			err := tx.QueryRow(ctx, `SELECT paused_until FROM requests.portals WHERE name = $1 FOR SHARE`, portal).Scan(&until)
			if err != nil && notFound(err) != domain.ErrNotFound {
				return fmt.Errorf("read portal: %w", err)
			}
		}
		if !until.Valid || !until.Time.After(now) {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE requests.missions SET claim_expires_at = NULL WHERE claim_id = $1 AND claim_expires_at > $2`, claimID, now)
		if err != nil {
			return fmt.Errorf("end claim: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return domain.ErrClaimNotHeld // reported or lapsed meanwhile
		}
		// The claim log says when it ended, as for a report: the claim
		// that next takes the mission does not count it lapsed.
		if _, err := tx.Exec(ctx, `UPDATE requests.claims SET reported_at = $2 WHERE id = $1 AND reported_at IS NULL`, claimID, now); err != nil {
			return fmt.Errorf("end claim: %w", err)
		}
		paused = &domain.PausedError{Portal: portal, Until: until.Time}
		return nil
	})
	if err != nil {
		return err
	}
	return paused
}

// lockClaimPortal locks the row of the portal the claim was made for
// (claims.portal: the mission's portal when it was claimed, which the
// check met, even if UpsertMission has moved the mission since), if it has
// one (creating the row with the defaults, as recordWall would), and
// returns its name.
func lockClaimPortal(ctx context.Context, tx pgx.Tx, claimID uuid.UUID, now time.Time) (string, error) {
	var portal string
	err := tx.QueryRow(ctx, `SELECT portal FROM requests.claims WHERE id = $1`, claimID).Scan(&portal)
	switch {
	case err != nil && notFound(err) == domain.ErrNotFound, err == nil && portal == "":
		return "", nil // no claim (the report then says so), or no portal
	case err != nil:
		return "", fmt.Errorf("read the claim's portal: %w", err)
	}
	_, err = lockPortal(ctx, tx, portal, now)
	return portal, err
}

// LastEventID is the largest event cursor committed so far (0 for none),
// or the last one pruned when retention pruned every event: where a feed
// starts reading new events.
func (s *Store) LastEventID(ctx context.Context) (int64, error) {
	return s.lastEvent(ctx, false)
}

// LastCursorGiven is the largest cursor a consumer may hold: LastEventID,
// or the last number the events' numbering handed out or was moved to
// (after a restore, OPERATIONS "Restoring Requests' database" moves it
// past the cursors consumers stored, which are then valid before any new
// event). Not where a feed starts: a number handed out may belong to an
// event not committed yet.
func (s *Store) LastCursorGiven(ctx context.Context) (int64, error) {
	return s.lastEvent(ctx, true)
}

func (s *Store) lastEvent(ctx context.Context, withNumbering bool) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT greatest((SELECT coalesce(max(id), 0) FROM requests.events),
		(SELECT events_pruned_through FROM requests.retention),
		(SELECT last_value FROM requests.events_id_seq WHERE $1 AND is_called))`, withNumbering).Scan(&id); err != nil {
		return 0, fmt.Errorf("read last event id: %w", err)
	}
	return id, nil
}

// EventsAfter returns up to limit events with a cursor above after and at
// most through, in cursor order, and the cursor retention has pruned
// through (every event at or below it is gone; see PruneEvents), read in
// the same snapshot: when after is below it, events after after are
// missing from the answer.
func (s *Store) EventsAfter(ctx context.Context, after, through int64, limit int) ([]domain.Event, int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.events_pruned_through, e.id, e.type, e.request, e.portal, e.occurred_at
		FROM requests.retention r
		LEFT JOIN LATERAL (SELECT id, type, request, portal, occurred_at FROM requests.events
		                   WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3) e ON true
		ORDER BY e.id`, after, through, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var (
		out    []domain.Event
		pruned int64
	)
	for rows.Next() {
		var (
			cursor       *int64
			typ          *string
			occurred     *time.Time
			snap, portal []byte
		)
		if err := rows.Scan(&pruned, &cursor, &typ, &snap, &portal, &occurred); err != nil {
			return nil, 0, fmt.Errorf("read events: %w", err)
		}
		if cursor == nil {
			continue // no event: the one row carries the pruned cursor
		}
		e := domain.Event{Cursor: *cursor, Type: domain.EventType(*typ), OccurredAt: *occurred}
		if portal != nil {
			e.Portal = &domain.PortalStatus{}
			if err := json.Unmarshal(portal, e.Portal); err != nil {
				return nil, 0, fmt.Errorf("read events: decode portal snapshot: %w", err)
			}
		} else if e.Request, err = requestFromJSON(snap); err != nil {
			return nil, 0, fmt.Errorf("read events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read events: %w", err)
	}
	return out, pruned, nil
}

// CountByStatus counts requests by status, every status present.
func (s *Store) CountByStatus(ctx context.Context) (map[domain.Status]int, error) {
	out := map[domain.Status]int{
		domain.StatusPending: 0, domain.StatusSlotFound: 0, domain.StatusCancelled: 0, domain.StatusExpired: 0,
		domain.StatusBooked: 0,
	}
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM requests.appointment_requests GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st string
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count requests: %w", err)
		}
		out[domain.Status(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	return out, nil
}
