package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

const portalCols = `name, max_checks_per_minute, timezone, quiet_start_minute, quiet_end_minute,
	quiet_max_checks_per_minute, min_mission_interval_us, paused_at, paused_until, pause_reason,
	pause_level, pause_level_until, pause_level_at, pause_level_paused_until, pause_open, created_at, updated_at`

func scanPortal(row pgx.Row) (domain.Portal, error) {
	var (
		p          domain.Portal
		qs, qe     pgtype.Int4
		intervalUS int64
		at, until  pgtype.Timestamptz
		levelUntil pgtype.Timestamptz
		levelAt    pgtype.Timestamptz
		levelOf    pgtype.Timestamptz
	)
	err := row.Scan(&p.Name, &p.MaxPerMinute, &p.Timezone, &qs, &qe, &p.QuietMaxPerMinute, &intervalUS,
		&at, &until, &p.Pause.Reason, &p.Pause.Level, &levelUntil, &levelAt, &levelOf, &p.Pause.Open, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return p, err
	}
	p.HasQuiet, p.QuietStart, p.QuietEnd = qs.Valid, int(qs.Int32), int(qe.Int32)
	p.MinMissionInterval = time.Duration(intervalUS) * time.Microsecond
	p.Pause.At, p.Pause.Until, p.Pause.LevelUntil = at.Time, until.Time, levelUntil.Time
	if !levelAt.Valid || !levelAt.Time.Equal(at.Time) || !levelOf.Valid || !levelOf.Time.Equal(until.Time) {
		// A Requests older than 00011 began, lengthened or resumed the
		// pause in force (it writes paused_at and paused_until, never
		// the pause_level_ columns that record what this code wrote
		// beside them): the level counts from paused_until, as there.
		p.Pause.LevelUntil = time.Time{}
	}
	return p, nil
}

func collectPortals(rows pgx.Rows) ([]domain.Portal, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Portal, error) { return scanPortal(r) })
}

func nullTime(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()} }

// writePortal stores every column of p (its row exists).
func writePortal(ctx context.Context, tx pgx.Tx, p domain.Portal) error {
	qs, qe := pgtype.Int4{Int32: int32(p.QuietStart), Valid: p.HasQuiet}, pgtype.Int4{Int32: int32(p.QuietEnd), Valid: p.HasQuiet}
	_, err := tx.Exec(ctx, `UPDATE requests.portals SET max_checks_per_minute = $2, timezone = $3,
		quiet_start_minute = $4, quiet_end_minute = $5, quiet_max_checks_per_minute = $6, min_mission_interval_us = $7,
		paused_at = $8, paused_until = $9, pause_reason = $10, pause_level = $11, pause_open = $12, updated_at = $13,
		pause_level_until = $14, pause_level_at = $8, pause_level_paused_until = $9
		WHERE name = $1`,
		p.Name, p.MaxPerMinute, p.Timezone, qs, qe, p.QuietMaxPerMinute, p.MinMissionInterval.Microseconds(),
		nullTime(p.Pause.At), nullTime(p.Pause.Until), p.Pause.Reason, p.Pause.Level, p.Pause.Open, p.UpdatedAt,
		nullTime(p.Pause.LevelUntil))
	if err != nil {
		return fmt.Errorf("write portal: %w", err)
	}
	return nil
}

// lockPortal creates the portal's row with the defaults unless it exists,
// and reads it under a row lock.
func lockPortal(ctx context.Context, tx pgx.Tx, name string, now time.Time) (domain.Portal, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO requests.portals (name, created_at, updated_at) VALUES ($1, $2, $2)
		ON CONFLICT DO NOTHING`, name, now); err != nil {
		return domain.Portal{}, fmt.Errorf("insert portal: %w", err)
	}
	p, err := scanPortal(tx.QueryRow(ctx, `SELECT `+portalCols+` FROM requests.portals WHERE name = $1 FOR UPDATE`, name))
	if err != nil {
		return p, fmt.Errorf("lock portal: %w", err)
	}
	return p, nil
}

// SetPortal creates the portal with the defaults unless it exists, reads
// it under a row lock, lets update change it, and writes it back in the
// same transaction. An error from update aborts and is returned as it is.
func (s *Store) SetPortal(ctx context.Context, name string, now time.Time, update func(*domain.Portal) error) (domain.Portal, error) {
	var p domain.Portal
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if p, err = lockPortal(ctx, tx, name, now); err != nil {
			return err
		}
		if err := update(&p); err != nil {
			return err
		}
		return writePortal(ctx, tx, p)
	})
	return p, err
}

// GetPortal reads one portal.
func (s *Store) GetPortal(ctx context.Context, name string) (domain.Portal, error) {
	p, err := scanPortal(s.pool.QueryRow(ctx, `SELECT `+portalCols+` FROM requests.portals WHERE name = $1`, name))
	if err != nil {
		return p, fmt.Errorf("get portal: %w", notFound(err))
	}
	return p, nil
}

// ListPortals returns up to limit portals whose name sorts after after, by
// name, and whether more follow.
func (s *Store) ListPortals(ctx context.Context, after string, limit int) ([]domain.Portal, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+portalCols+` FROM requests.portals WHERE name > $1 ORDER BY name LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list portals: %w", err)
	}
	out, err := collectPortals(rows)
	if err != nil {
		return nil, false, fmt.Errorf("list portals: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// portalClaims counts each portal's claims after since.
func portalClaims(ctx context.Context, q pgx.Tx, names []string, since time.Time) (map[string]int, error) {
	out := map[string]int{}
	if len(names) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT portal, count(*) FROM requests.claims
		WHERE portal = ANY($1) AND claimed_at > $2 GROUP BY portal`, names, since)
	if err != nil {
		return nil, fmt.Errorf("count portal claims: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			n    int
		)
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("count portal claims: %w", err)
		}
		out[name] = n
	}
	return out, rows.Err()
}

func countWalls(ctx context.Context, tx pgx.Tx, name string, since time.Time) (int, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM requests.portal_walls WHERE portal = $1 AND reported_at > $2`,
		name, since).Scan(&n); err != nil {
		return 0, fmt.Errorf("count walls: %w", err)
	}
	return n, nil
}

// portalStatus reads what Portal.Status needs besides the portal.
func portalStatus(ctx context.Context, tx pgx.Tx, p domain.Portal, now time.Time, r domain.WallRules) (domain.PortalStatus, error) {
	walls, err := countWalls(ctx, tx, p.Name, now.Add(-r.Window))
	if err != nil {
		return domain.PortalStatus{}, err
	}
	claims, err := portalClaims(ctx, tx, []string{p.Name}, now.Add(-domain.RateWindow))
	if err != nil {
		return domain.PortalStatus{}, err
	}
	return p.Status(now, r, walls, claims[p.Name]), nil
}

// PortalStatus reads a portal's status at now.
func (s *Store) PortalStatus(ctx context.Context, name string, now time.Time, r domain.WallRules) (domain.PortalStatus, error) {
	var st domain.PortalStatus
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		p, err := scanPortal(tx.QueryRow(ctx, `SELECT `+portalCols+` FROM requests.portals WHERE name = $1`, name))
		if err != nil {
			return fmt.Errorf("get portal: %w", notFound(err))
		}
		st, err = portalStatus(ctx, tx, p, now, r)
		return err
	})
	return st, err
}

// ResumePortal lifts the portal's pause (domain.Portal.Resume) and writes
// a PORTAL_RESUMED event when there was one to lift; a resume of a pause
// already resumed writes nothing and answers the status as it is.
func (s *Store) ResumePortal(ctx context.Context, name string, now time.Time, r domain.WallRules) (domain.PortalStatus, error) {
	var st domain.PortalStatus
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := scanPortal(tx.QueryRow(ctx, `SELECT `+portalCols+` FROM requests.portals WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return fmt.Errorf("get portal: %w", notFound(err))
		}
		resumed := p.Resume(now)
		if resumed {
			p.UpdatedAt = now
			if err := writePortal(ctx, tx, p); err != nil {
				return err
			}
		}
		if st, err = portalStatus(ctx, tx, p, now, r); err != nil {
			return err
		}
		if resumed {
			b := &pgx.Batch{}
			appendPortalEvents(b, domain.EventPortalResumed, []domain.PortalStatus{st}, now)
			return sendBatch(ctx, tx, b)
		}
		return nil
	})
	return st, err
}

// recordWall records a wall of the portal under its row lock and applies
// domain.Portal.Wall; a pause that begins or is lengthened is written
// with its PORTAL_PAUSED event (the status after the wall) queued on b.
func recordWall(ctx context.Context, tx pgx.Tx, b *pgx.Batch, name string, o domain.Outcome, retryAfter time.Duration,
	now time.Time, r domain.WallRules) error {
	p, err := lockPortal(ctx, tx, name, now)
	if err != nil {
		return err
	}
	// Walls older than any window that can count them are of no use.
	if _, err := tx.Exec(ctx, `DELETE FROM requests.portal_walls WHERE portal = $1 AND reported_at < $2`,
		name, now.Add(-r.Window-time.Hour)); err != nil {
		return fmt.Errorf("prune walls: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO requests.portal_walls (portal, reported_at, outcome) VALUES ($1, $2, $3)`,
		name, now, string(o)); err != nil {
		return fmt.Errorf("record wall: %w", err)
	}
	windowStart, pauseEnd := p.WallsSince(now, r)
	var walls int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM requests.portal_walls
		WHERE portal = $1 AND reported_at > $2 AND ($3::timestamptz IS NULL OR reported_at >= $3)`,
		name, windowStart, nullTime(pauseEnd)).Scan(&walls); err != nil {
		return fmt.Errorf("count walls: %w", err)
	}
	before := p.Pause
	announce := p.Wall(now, o, walls, retryAfter, r)
	if p.Pause == before {
		return nil
	}
	p.UpdatedAt = now
	if err := writePortal(ctx, tx, p); err != nil {
		return err
	}
	if announce {
		st, err := portalStatus(ctx, tx, p, now, r)
		if err != nil {
			return err
		}
		appendPortalEvents(b, domain.EventPortalPaused, []domain.PortalStatus{st}, now)
	}
	return nil
}

// lockPortalsForClaim locks every portal row (in name order, so claimers
// never deadlock), writes the PORTAL_RESUMED events owed by pauses that
// ended by now, and returns the portals with a cap or a pause and each
// one's budget (domain.Portal.Budget) from its claims of the last minute.
func lockPortalsForClaim(ctx context.Context, tx pgx.Tx, b *pgx.Batch, now time.Time, r domain.WallRules) (map[string]int, error) {
	rows, err := tx.Query(ctx, `SELECT `+portalCols+` FROM requests.portals ORDER BY name FOR UPDATE`)
	if err != nil {
		return nil, fmt.Errorf("lock portals: %w", err)
	}
	portals, err := collectPortals(rows)
	if err != nil {
		return nil, fmt.Errorf("lock portals: %w", err)
	}
	if err := resumeLapsed(ctx, tx, b, portals, now, r); err != nil {
		return nil, err
	}
	names := make([]string, len(portals))
	for i, p := range portals {
		names[i] = p.Name
	}
	recent, err := portalClaims(ctx, tx, names, now.Add(-domain.RateWindow))
	if err != nil {
		return nil, err
	}
	budgets := map[string]int{}
	for _, p := range portals {
		if n, limited := p.Budget(now, recent[p.Name]); limited {
			budgets[p.Name] = n
		}
	}
	return budgets, nil
}

// resumeLapsed writes the PORTAL_RESUMED event of each pause among
// portals (locked by the caller) that ended by now and has none yet.
func resumeLapsed(ctx context.Context, tx pgx.Tx, b *pgx.Batch, portals []domain.Portal, now time.Time, r domain.WallRules) error {
	var statuses []domain.PortalStatus
	for _, p := range portals {
		if !p.Pause.Open || p.Paused(now) {
			continue
		}
		p.Pause.Open = false
		if _, err := tx.Exec(ctx, `UPDATE requests.portals SET pause_open = false WHERE name = $1`, p.Name); err != nil {
			return fmt.Errorf("resume portal: %w", err)
		}
		st, err := portalStatus(ctx, tx, p, now, r)
		if err != nil {
			return err
		}
		statuses = append(statuses, st)
	}
	appendPortalEvents(b, domain.EventPortalResumed, statuses, now)
	return nil
}

// ResumeLapsed writes the PORTAL_RESUMED events owed at now (the periodic
// sweep's share; every claim does the same).
func (s *Store) ResumeLapsed(ctx context.Context, now time.Time, r domain.WallRules) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+portalCols+` FROM requests.portals
			WHERE pause_open AND paused_until <= $1 ORDER BY name FOR UPDATE SKIP LOCKED`, now)
		if err != nil {
			return fmt.Errorf("lock paused portals: %w", err)
		}
		portals, err := collectPortals(rows)
		if err != nil {
			return fmt.Errorf("lock paused portals: %w", err)
		}
		b := &pgx.Batch{}
		if err := resumeLapsed(ctx, tx, b, portals, now, r); err != nil {
			return err
		}
		return sendBatch(ctx, tx, b)
	})
}

// PausedPortals gives, for every portal, the reason of its pause in force
// at now (pause_reason; never empty), or "" when it is not paused (as
// domain.Portal.Status says: a pause whose PORTAL_RESUMED is written is
// over): the slotwatch_requests_portal_paused gauge.
func (s *Store) PausedPortals(ctx context.Context, now time.Time) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name,
		CASE WHEN pause_open AND paused_until > $1 THEN coalesce(nullif(pause_reason, ''), 'paused') ELSE '' END
		FROM requests.portals`, now)
	if err != nil {
		return nil, fmt.Errorf("read paused portals: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, reason string
		if err := rows.Scan(&name, &reason); err != nil {
			return nil, fmt.Errorf("read paused portals: %w", err)
		}
		out[name] = reason
	}
	return out, rows.Err()
}

// appendPortalEvents queues portal events (as appendEvents does request
// ones), each carrying its portal's status.
func appendPortalEvents(b *pgx.Batch, typ domain.EventType, sts []domain.PortalStatus, at time.Time) {
	if len(sts) == 0 {
		return
	}
	snaps := make([][]byte, len(sts))
	for i, st := range sts {
		j, err := json.Marshal(st)
		if err != nil {
			panic("store: portal status does not marshal: " + err.Error())
		}
		snaps[i] = j
	}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, eventLockKey)
	b.Queue(`INSERT INTO requests.events (type, portal, occurred_at)
		SELECT $1, u.snap, $3 FROM unnest($2::jsonb[]) WITH ORDINALITY AS u(snap, n) ORDER BY u.n`, string(typ), snaps, at)
	b.Queue(`SELECT pg_notify($1, '')`, EventChannel)
}
