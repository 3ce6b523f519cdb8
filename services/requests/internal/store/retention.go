package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tables retention prunes (the table label of the pruned-rows metric).
const (
	TableChecks = "checks"
	TableClaims = "claims"
	TableEvents = "events"
)

// PruneChecks deletes up to limit checks recorded before cutoff, oldest
// first, and says how many it deleted.
func (s *Store) PruneChecks(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM requests.checks WHERE id = ANY (ARRAY(
		SELECT id FROM requests.checks WHERE checked_at < $1 ORDER BY checked_at LIMIT $2))`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("prune checks: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// PruneClaims deletes up to limit claims taken and ended before cutoff,
// oldest first: never a mission's current claim (live or not, the one a
// report would end), nor one whose check is still kept (PruneChecks goes
// first).
func (s *Store) PruneClaims(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM requests.claims WHERE id = ANY (ARRAY(
		SELECT c.id FROM requests.claims c
		WHERE c.claimed_at < $1 AND c.expires_at < $1
		  AND NOT EXISTS (SELECT 1 FROM requests.missions m WHERE m.claim_id = c.id)
		  AND NOT EXISTS (SELECT 1 FROM requests.checks k WHERE k.claim_id = c.id)
		ORDER BY c.claimed_at LIMIT $2))`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("prune claims: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// PruneEvents deletes up to limit of the oldest events, by cursor, that
// occurred before cutoff: it stops at the first event (by cursor) that did
// not, so what is left is every event after a cursor, which it records as
// requests.retention.events_pruned_through (EventsAfter returns it). The
// retention row is locked first, so pruners on several replicas take turns.
func (s *Store) PruneEvents(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM requests.retention FOR UPDATE`); err != nil {
			return fmt.Errorf("lock retention: %w", err)
		}
		var through *int64
		err := tx.QueryRow(ctx, `
			WITH batch AS (SELECT id, occurred_at FROM requests.events ORDER BY id LIMIT $2),
			     stop AS (SELECT min(id) AS id FROM batch WHERE occurred_at >= $1),
			     gone AS (DELETE FROM requests.events e USING batch b
			              WHERE e.id = b.id AND ((SELECT id FROM stop) IS NULL OR b.id < (SELECT id FROM stop))
			              RETURNING e.id)
			SELECT count(*), max(id) FROM gone`, cutoff, limit).Scan(&n, &through)
		if err != nil {
			return fmt.Errorf("prune events: %w", err)
		}
		if through == nil {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE requests.retention SET events_pruned_through = greatest(events_pruned_through, $1)`, *through)
		if err != nil {
			return fmt.Errorf("record pruned events: %w", err)
		}
		return nil
	})
	return n, err
}
