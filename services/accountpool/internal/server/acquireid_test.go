package server_test

import (
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// leasedAndLogged counts the accounts leased now and the usage rows.
func leasedAndLogged(t *testing.T, b *testBundle) (leased, logged int) {
	t.Helper()
	if err := b.db.QueryRow(testkit.Context(t), `SELECT (SELECT count(*) FROM accountpool.accounts WHERE lease_id IS NOT NULL),
		(SELECT count(*) FROM accountpool.usage_log)`).Scan(&leased, &logged); err != nil {
		t.Fatal(err)
	}
	return leased, logged
}

// An Acquire whose answer was lost is sent again with its acquire_id: the
// retry gets the lease the first one granted, not a second account, and
// the lease is logged once. With the batched store (the service's
// default) and without.
func TestARetriedAcquireGetsTheSameLease(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]option{"Batched": nil, "Unbatched": {withoutBatching()}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, b := setup(t, opts...)
			addAccounts(t, c, 3)
			req := &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", AcquireId: uuid.NewString(),
				LeaseTtl: durationpb.New(2 * time.Minute), RequestIds: []string{"r1"}}
			first, err := c.Acquire(testkit.Context(t), req)
			if err != nil {
				t.Fatal(err)
			}
			b.clock.Advance(30 * time.Second)
			again, err := c.Acquire(testkit.Context(t), req)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if !proto.Equal(again.GetLease(), first.GetLease()) {
				t.Errorf("retry got lease %v\nwant the first %v", again.GetLease(), first.GetLease())
			}
			if leased, logged := leasedAndLogged(t, b); leased != 1 || logged != 1 {
				t.Errorf("%d accounts leased, %d usage rows; want 1 and 1", leased, logged)
			}
			// The lease the retry got is the caller's to release.
			release(t, c, again.GetLease(), apv1.Outcome_OUTCOME_NO_SLOT)
		})
	}
}

// acquire_id names one lease: a retry after it ended, or with another
// holder or mission, is ALREADY_EXISTS and leases nothing.
func TestAnAcquireIDNamesOneLease(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	addAccounts(t, c, 3)
	ctx := testkit.Context(t)
	acquireWith := func(id, holder, mission string) (*apv1.Lease, error) {
		resp, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: mission, Holder: holder, AcquireId: id,
			LeaseTtl: durationpb.New(time.Minute)})
		return resp.GetLease(), err
	}
	releasedID, heldID := uuid.NewString(), uuid.NewString()
	released, err := acquireWith(releasedID, "checker-1", "fra")
	if err != nil {
		t.Fatal(err)
	}
	_, err = acquireWith(heldID, "checker-1", "fra")
	if err != nil {
		t.Fatal(err)
	}
	release(t, c, released, apv1.Outcome_OUTCOME_SUCCESS)
	_, logged := leasedAndLogged(t, b)

	for _, tc := range []struct {
		name, id, holder, mission string
	}{
		{"AfterItsLeaseWasReleased", releasedID, "checker-1", "fra"},
		{"ByAnotherHolder", heldID, "checker-2", "fra"},
		{"ForAnotherMission", heldID, "checker-1", "bel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := acquireWith(tc.id, tc.holder, tc.mission)
			testkit.WantCode(t, err, codes.AlreadyExists)
		})
	}
	if leased, n := leasedAndLogged(t, b); leased != 1 || n != logged {
		t.Errorf("%d accounts leased, %d usage rows; want 1 and %d", leased, n, logged)
	}

	// A lease that expired unreleased ended too.
	b.clock.Advance(time.Minute + domain.ExpiryGrace + time.Second)
	_, err = acquireWith(heldID, "checker-1", "fra")
	testkit.WantCode(t, err, codes.AlreadyExists)
}

// Identical Acquires at once, on two replicas (two connections each), get
// one lease: every caller the same, one account leased, one usage row.
// Those that lost the race hand back the account they had taken.
func TestTwoReplicasGrantOneLeasePerAcquireID(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]option{"Batched": nil, "Unbatched": {withoutBatching()}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			noCooldown := withConfig(func(c *domain.Config) { c.Cooldown = 0 })
			c1, b1 := setup(t, append([]option{withRealClock(), noCooldown}, opts...)...)
			c2, b2 := setupOn(t, b1.dbURL, append([]option{withRealClock(), noCooldown, withKeyset(b1.keyset)}, opts...)...)
			addAccounts(t, c1, 8)
			clients := []apv1.AccountPoolServiceClient{c1, b1.dial(t, checkerToken), c2, b2.dial(t, checkerToken)}
			const rounds = 25
			for round := range rounds {
				req := &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", AcquireId: uuid.NewString()}
				leases := make([]*apv1.Lease, len(clients))
				errs := make([]error, len(clients))
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i, c := range clients {
					wg.Go(func() {
						<-start
						resp, err := c.Acquire(testkit.Context(t), req)
						leases[i], errs[i] = resp.GetLease(), err
					})
				}
				close(start)
				wg.Wait()
				for i := range clients {
					if errs[i] != nil {
						t.Fatalf("round %d, client %d: %v", round, i, errs[i])
					}
					if leases[i].GetLeaseId() != leases[0].GetLeaseId() || leases[i].GetFencingToken() != leases[0].GetFencingToken() {
						t.Fatalf("round %d: client %d got lease %s (token %d), client 0 %s (token %d)", round, i,
							leases[i].GetLeaseId(), leases[i].GetFencingToken(), leases[0].GetLeaseId(), leases[0].GetFencingToken())
					}
				}
				for _, b := range []*testBundle{b1, b2} {
					if err := b.store.Drain(testkit.Context(t)); err != nil { // the hand-backs of the race's losers
						t.Fatal(err)
					}
				}
				if leased, logged := leasedAndLogged(t, b1); leased != 1 || logged != round+1 {
					t.Fatalf("round %d: %d accounts leased, %d usage rows; want 1 and %d", round, leased, logged, round+1)
				}
				release(t, c1, leases[0], apv1.Outcome_OUTCOME_NO_SLOT)
			}
		})
	}
}

// ListUsage shows each lease's acquire_id (empty for an Acquire that sent
// none), so that an operator can follow a Checker's retried Acquire to
// its lease.
func TestListUsageShowsTheAcquireID(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	addAccounts(t, c, 2)
	ctx := testkit.Context(t)
	id := uuid.NewString()
	named, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", AcquireId: id})
	if err != nil {
		t.Fatal(err)
	}
	unnamed := acquire(t, c, "fra")
	resp, err := c.ListUsage(ctx, &apv1.ListUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range resp.GetRecords() {
		got[r.GetLeaseId()] = r.GetAcquireId()
	}
	want := map[string]string{named.GetLease().GetLeaseId(): id, unnamed.GetLeaseId(): ""}
	if !maps.Equal(got, want) {
		t.Errorf("acquire_id by lease %v, want %v", got, want)
	}
}
