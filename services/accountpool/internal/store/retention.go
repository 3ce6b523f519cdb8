package store

import (
	"context"
	"fmt"
	"time"
)

// PruneUsage deletes up to limit usage rows of leases acquired before
// cutoff that have ended (released or expired: result set), oldest first,
// and says how many it deleted. A held lease's row is never taken.
func (s *Store) PruneUsage(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM accountpool.usage_log WHERE lease_id = ANY (ARRAY(
		SELECT lease_id FROM accountpool.usage_log
		WHERE acquired_at < $1 AND result IS NOT NULL
		ORDER BY acquired_at LIMIT $2))`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("prune usage log: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
