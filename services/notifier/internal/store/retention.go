package store

import (
	"context"
	"fmt"
	"time"
)

// PruneDeliveries deletes up to limit deliveries in a final state
// (delivered, dead) recorded (created_at) before cutoff, oldest first, and
// says how many it deleted. Pending deliveries, the queue, are never taken.
// Age counts from created_at, when the message and the personal data in it
// were recorded: a dead delivery has no delivered_at.
//
// Only deliveries of events at or before stream's stored cursor go. The
// unique (event_cursor, recipient_id) is what keeps a replayed event from
// being recorded twice; once its row is gone only the cursor does: Record
// skips every event at or before the stored cursor, which only moves
// forward, so a pruned event can never be recorded again. A delivery after
// the cursor (Record writes none: it moves the cursor in the same
// transaction) would be kept, however old, until the cursor passes it.
//
// The state is checked again on the row deleted: a DEAD delivery that
// RetryDelivery queued again since the batch was chosen is pending, and
// stays.
func (s *Store) PruneDeliveries(ctx context.Context, stream string, cutoff time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM notifier.deliveries WHERE id = ANY (ARRAY(
		SELECT id FROM notifier.deliveries
		WHERE state <> 'pending' AND created_at < $2
		  AND event_cursor <= (SELECT cursor FROM notifier.cursors WHERE stream = $1)
		ORDER BY created_at, id LIMIT $3)) AND state <> 'pending'`, stream, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
