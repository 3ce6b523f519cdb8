package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// A caller gave up while its batch ran, so its lease is handed back; a
// retry of its Acquire (same acquire_id, on another replica) got the lease
// before the hand-back ran. The hand-back must leave that lease alone: the
// retry's caller checks with the account, and an account handed back to
// the pool would be leased to a second holder meanwhile.
func TestAHandBackLeavesALeaseARetryGot(t *testing.T) {
	t.Parallel()
	other, b := setup(t, 3)
	cfg, err := pgxpool.ParseConfig(b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	handBacks := &statementCounter{text: "DELETE FROM accountpool.usage_log", hold: make(chan struct{})}
	cfg.ConnConfig.Tracer = handBacks
	db, err := pgxpool.NewWithConfig(testkit.Context(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := store.New(db, store.WithBatching(), store.WithReleaseLockWait(time.Hour))

	leaseID, acquireID := uuid.NewString(), uuid.NewString()
	unblock := claimLeaseID(t, b, leaseID)
	ctx, cancel := context.WithCancel(testkit.Context(t))
	p := store.AcquireParams{LeaseID: leaseID, MissionCode: "fra", Holder: "checker-1", TTL: 5 * time.Minute, Now: b.now,
		MaxLogins: b.cfg.MaxLoginsPerDay, AcquireID: acquireID}
	gone := make(chan error, 1)
	go func() {
		_, err := s.Acquire(ctx, p)
		gone <- err
	}()
	waitFor(t, "the batch to wait", func() bool { return waitingForLocks(t, b) == 1 })
	cancel()
	unblock()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller gave up while its batch ran, got %v", err)
	}
	waitFor(t, "the hand-back", func() bool { return handBacks.cnt.Load() > 0 })

	retried, gotID, err := other.LeaseOf(testkit.Context(t), acquireID, "checker-1", "fra", b.now, b.cfg.MaxLoginsPerDay)
	if err != nil || gotID != leaseID {
		t.Fatalf("the retry got lease %q, %v; want %s", gotID, err, leaseID)
	}
	close(handBacks.hold)
	if err := s.Drain(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	var held string
	if err := b.db.QueryRow(testkit.Context(t), `SELECT coalesce(lease_id::text, '') FROM accountpool.accounts WHERE id = $1`,
		retried.Account.ID).Scan(&held); err != nil || held != leaseID {
		t.Fatalf("account %d holds lease %q (%v) after the hand-back; want the retry's %s", retried.Account.ID, held, err, leaseID)
	}
}
