package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// A caller that lost an Acquire's answer gives the lease back by the
// Acquire's acquire_id alone: a lease granted for it and still held ends
// unused (no failure, no cooldown), and a retry of that release is a
// replay; an id no lease was granted for is domain.ErrNotFound and
// changes nothing; an id whose lease ended otherwise is answered as a
// replayed release with another outcome is (lease not held).
func TestAReleaseByAcquireIDGivesBackALostLease(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]store.Option{"Batched": {store.WithBatching()}, "Unbatched": nil} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, b := setup(t, 2)
			s := store.New(b.db, opts...)
			ctx := testkit.Context(t)
			acquireID := uuid.NewString()
			leased, err := s.Acquire(ctx, store.AcquireParams{LeaseID: uuid.NewString(), MissionCode: "fra", Holder: "checker-1",
				TTL: 10 * time.Minute, Now: b.now, MaxLogins: b.cfg.MaxLoginsPerDay, AcquireID: acquireID})
			if err != nil {
				t.Fatal(err)
			}
			// The caller never saw leased: it knows only acquireID.
			at := b.now.Add(time.Second)
			giveBack := store.ReleaseParams{AcquireID: acquireID, Outcome: domain.OutcomeUnused, Detail: "answer lost", Now: at}
			rel, err := s.Release(ctx, b.cfg, giveBack)
			if err != nil {
				t.Fatalf("release by acquire_id: %v", err)
			}
			if a := rel.Account; a.ID != leased.Account.ID || a.LeaseID != "" || a.CooldownUntil != nil || a.QuarantineUntil != nil ||
				a.ConsecutiveFailures != 0 || a.State(at) != domain.StateAvailable || rel.Replay {
				t.Errorf("released %+v (replay %t); want account %d available at once, no failure, no cooldown",
					a, rel.Replay, leased.Account.ID)
			}
			var result, detail string
			if err := b.db.QueryRow(ctx, `SELECT result, detail FROM accountpool.usage_log WHERE acquire_id = $1`, acquireID).
				Scan(&result, &detail); err != nil || result != string(domain.OutcomeUnused) || detail != "answer lost" {
				t.Errorf("usage row: result %q, detail %q (%v); want unused, %q", result, detail, err, "answer lost")
			}

			again, err := s.Release(ctx, b.cfg, giveBack)
			if err != nil || !again.Replay || again.Account.UpdatedAt != rel.Account.UpdatedAt {
				t.Errorf("retried release by acquire_id: %+v, %v; want the first answer, replayed", again, err)
			}

			if _, err := s.Release(ctx, b.cfg, store.ReleaseParams{AcquireID: uuid.NewString(), Outcome: domain.OutcomeUnused, Now: at}); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("release by an acquire_id no lease was granted for: %v; want domain.ErrNotFound", err)
			}

			usedID := uuid.NewString()
			used, err := s.Acquire(ctx, store.AcquireParams{LeaseID: uuid.NewString(), MissionCode: "fra", Holder: "checker-1",
				TTL: 10 * time.Minute, Now: at, MaxLogins: b.cfg.MaxLoginsPerDay, AcquireID: usedID})
			if err != nil {
				t.Fatal(err)
			}
			var leaseID string
			if err := b.db.QueryRow(ctx, `SELECT lease_id::text FROM accountpool.usage_log WHERE acquire_id = $1`, usedID).Scan(&leaseID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Release(ctx, b.cfg, store.ReleaseParams{LeaseID: leaseID, FencingToken: used.Account.FencingToken,
				Outcome: domain.OutcomeNoSlot, Now: at.Add(time.Second)}); err != nil {
				t.Fatal(err)
			}
			_, err = s.Release(ctx, b.cfg, store.ReleaseParams{AcquireID: usedID, Outcome: domain.OutcomeUnused, Now: at.Add(2 * time.Second)})
			if !errors.Is(err, domain.ErrLeaseNotHeld) {
				t.Errorf("release by the acquire_id of a lease released no_slot: %v; want lease not held", err)
			}
			var cooldown *time.Time
			if err := b.db.QueryRow(ctx, `SELECT cooldown_until FROM accountpool.accounts WHERE id = $1`, used.Account.ID).Scan(&cooldown); err != nil ||
				cooldown == nil {
				t.Errorf("the no_slot release's cooldown is %v (%v); want it kept", cooldown, err)
			}
		})
	}
}
