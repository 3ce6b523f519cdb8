package server_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestSeedExampleSixAccountsTwoMissions plays the seed's "Example: 6
// Accounts, 2 Missions" through the gRPC API with the default 10-minute
// cooldown and a session every two minutes.
func TestSeedExampleSixAccountsTwoMissions(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	ids := addAccounts(t, c, 6)
	acc := func(n int) int64 { return ids[n-1] }

	type step struct {
		mission string
		want    int64
		outcome apv1.Outcome
	}
	session := func(n int, steps ...step) {
		t.Helper()
		for _, s := range steps {
			l := acquire(t, c, s.mission)
			if l.GetAccountId() != s.want {
				t.Fatalf("session %d: %s got account %d, want %d", n, s.mission, l.GetAccountId(), s.want)
			}
			if l.GetPassword() != accPassword(int(indexOf(ids, s.want))+1) {
				t.Fatalf("session %d: lease carries the wrong password", n)
			}
			b.clock.Advance(5 * time.Second) // the check itself
			if a := release(t, c, l, s.outcome); a.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN {
				t.Fatalf("session %d: account %d is %v after release, want cooldown", n, s.want, a.GetState())
			}
		}
	}

	start := b.clock.Now()
	session(1, step{"fra", acc(1), apv1.Outcome_OUTCOME_NO_SLOT}, step{"bel", acc(2), apv1.Outcome_OUTCOME_NO_SLOT})
	b.clock.Advance(2 * time.Minute)
	session(2, step{"fra", acc(3), apv1.Outcome_OUTCOME_SUCCESS}, step{"bel", acc(4), apv1.Outcome_OUTCOME_NO_SLOT})
	// France found its slot: from now on only Belgium is checked.
	b.clock.Advance(2 * time.Minute)
	session(3, step{"bel", acc(5), apv1.Outcome_OUTCOME_NO_SLOT})
	b.clock.Advance(2 * time.Minute)
	session(4, step{"bel", acc(6), apv1.Outcome_OUTCOME_NO_SLOT})

	// Session 5: every account cools down; the pool says to wait exactly
	// until account 1's cooldown ends (it was used first, at the start).
	b.clock.Advance(2 * time.Minute)
	_, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "bel", Holder: "checker-test"})
	testkit.WantCode(t, err, codes.ResourceExhausted)
	delay, ok := apierr.RetryDelay(err)
	if !ok {
		t.Fatal("RESOURCE_EXHAUSTED without RetryInfo")
	}
	acc1FreeAt := start.Add(5*time.Second + 10*time.Minute)
	if want := acc1FreeAt.Sub(b.clock.Now()); delay != want {
		t.Fatalf("session 5: retry delay %s, want %s (account 1's remaining cooldown)", delay, want)
	}
	st, err := c.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetAvailable() != 0 || st.GetInCooldown() != 6 || !st.GetNextAvailableAt().AsTime().Equal(acc1FreeAt) {
		t.Fatalf("session 5: pool status %v", st)
	}

	// Session 6: the checker waited that long; account 1 is the LRU again.
	b.clock.Advance(delay)
	session(6, step{"bel", acc(1), apv1.Outcome_OUTCOME_NO_SLOT})
}

func indexOf(ids []int64, id int64) int64 {
	for i, v := range ids {
		if v == id {
			return int64(i)
		}
	}
	return -1
}
