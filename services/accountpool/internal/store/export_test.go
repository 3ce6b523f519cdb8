package store

import "time"

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
