package store

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
