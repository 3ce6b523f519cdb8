package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

const missionCols = `code, portal, timezone, created_at, updated_at`

func scanMission(row pgx.Row) (domain.Mission, error) {
	var m domain.Mission
	err := row.Scan(&m.Code, &m.Portal, &m.Timezone, &m.CreatedAt, &m.UpdatedAt)
	return m, err
}

// insertMission adds the mission's row with the defaults unless it exists.
func insertMission(ctx context.Context, tx pgx.Tx, code string, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO requests.missions (code, created_at, updated_at) VALUES ($1, $2, $2)
		ON CONFLICT DO NOTHING`, code, now); err != nil {
		return fmt.Errorf("insert mission: %w", err)
	}
	return nil
}

// UpsertMission creates the mission with the defaults unless it exists,
// reads it under a row lock, lets update change its settings, and writes
// them back in the same transaction. An error from update aborts and is
// returned as it is. The claim columns are not touched.
func (s *Store) UpsertMission(ctx context.Context, code string, now time.Time, update func(*domain.Mission) error) (domain.Mission, error) {
	var m domain.Mission
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := insertMission(ctx, tx, code, now); err != nil {
			return err
		}
		var err error
		m, err = scanMission(tx.QueryRow(ctx, `SELECT `+missionCols+` FROM requests.missions WHERE code = $1 FOR UPDATE`, code))
		if err != nil {
			return fmt.Errorf("get mission: %w", err)
		}
		if err := update(&m); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE requests.missions SET portal = $2, timezone = $3, updated_at = $4 WHERE code = $1`,
			m.Code, m.Portal, m.Timezone, m.UpdatedAt); err != nil {
			return fmt.Errorf("update mission: %w", err)
		}
		return nil
	})
	return m, err
}

// GetMission reads one mission's settings.
func (s *Store) GetMission(ctx context.Context, code string) (domain.Mission, error) {
	m, err := scanMission(s.pool.QueryRow(ctx, `SELECT `+missionCols+` FROM requests.missions WHERE code = $1`, code))
	if err != nil {
		return m, fmt.Errorf("get mission: %w", notFound(err))
	}
	return m, nil
}

// ListMissions returns up to limit missions whose code sorts after after
// ("" for the first page), by code, and whether more follow.
func (s *Store) ListMissions(ctx context.Context, after string, limit int) ([]domain.Mission, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+missionCols+` FROM requests.missions
		WHERE code > $1 ORDER BY code LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list missions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Mission, error) { return scanMission(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list missions: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// missionDays are the days it is at one moment in each zone that missions
// use, as query parameters: zones[i]'s day is days[i]. latest is the
// latest of them (the zero time when there are none): no request's window
// ends before its mission's today unless it ends before latest, which is
// the condition an index on latest_date answers.
type missionDays struct {
	zones  []string
	days   []time.Time
	latest time.Time
}

// readMissionDays reads the zones missions use and computes each one's
// today at now (domain.Today). A mission whose zone changes between this
// read and the statement that uses it is left out of that statement (it
// joins no zone), and taken by the next one.
func readMissionDays(ctx context.Context, tx pgx.Tx, now time.Time) (missionDays, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT timezone FROM requests.missions`)
	if err != nil {
		return missionDays{}, fmt.Errorf("read mission time zones: %w", err)
	}
	zones, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return missionDays{}, fmt.Errorf("read mission time zones: %w", err)
	}
	md := missionDays{zones: zones, days: make([]time.Time, len(zones))}
	for i, z := range zones {
		md.days[i] = domain.Today(now, domain.Zone(z))
		if md.days[i].After(md.latest) {
			md.latest = md.days[i]
		}
	}
	return md, nil
}
