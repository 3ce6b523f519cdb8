package store

// PendingAcquires and PendingReleases count the calls queued behind the
// batch in flight, for tests that line callers up into one batch.
func (s *Store) PendingAcquires() int { return s.acquires.queued() }

func (s *Store) PendingReleases() int { return s.releases.queued() }

func (b *batcher[Req, Res]) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}
