package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
)

// PendingAcquires and PendingReleases count the calls of each kind queued
// behind the batch in flight, for tests that line callers up into one
// batch.
func (s *Store) PendingAcquires() int { return s.pending(func(o op) bool { return o.acquire != nil }) }

func (s *Store) PendingReleases() int { return s.pending(func(o op) bool { return o.release != nil }) }

func (s *Store) pending(kind func(op) bool) int {
	s.batch.mu.Lock()
	defer s.batch.mu.Unlock()
	n := 0
	for _, c := range s.batch.pending {
		if kind(c.req) {
			n++
		}
	}
	return n
}

// WithReleaseLockWait sets how long a batch with Releases waits for a row
// lock (after WithBatching): tests that line callers up behind a lock
// make it long, the test of the wait itself short.
func WithReleaseLockWait(d time.Duration) Option { return func(s *Store) { s.lockWait = d } }

// ExplainAcquire is Postgres's plan of the Acquire statement for n
// requests, each with an acquire_id, as EXPLAIN prints it.
func (s *Store) ExplainAcquire(ctx context.Context, n int) (string, error) {
	reqs := make([]AcquireParams, n)
	idx := make([]int, n)
	for i := range reqs {
		reqs[i] = AcquireParams{LeaseID: uuid.NewString(), AcquireID: uuid.NewString(), MissionCode: "fra",
			Holder: "checker-1", TTL: time.Minute, Now: time.Now(), MaxLogins: domain.DefaultConfig().MaxLoginsPerDay}
		idx[i] = i
	}
	rows, err := s.db.Query(ctx, "EXPLAIN "+acquireSQL, acquireArgs(reqs, idx, make([]acquired, n))...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}
