package session

import (
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// A portal that is slow or hangs is the portal's failure, not slotwatch's:
// the check must be released error (a failure of the account, toward
// quarantine), not aborted. Here the profile's own step timeouts are the
// defaults (15s), and the claim's deadline comes first.
func TestAPortalThatIsSlowOrHangsIsNotAborted(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	run := func(t *testing.T, ttl time.Duration, b sim.Behaviour) {
		c, bb := setupWith(t, Config{ClaimTTL: ttl}, nil)
		if err := bb.sim.SetBehaviour("acc1@example.com", b); err != nil {
			t.Fatal(err)
		}
		bb.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
		sum := runSession(t, c)
		t.Logf("result %+v", sum.Results[0])
		if len(bb.pool.releases) != 1 || bb.pool.releases[0].Outcome != Error {
			t.Errorf("releases %+v; want one, error: the portal was slow, not slotwatch", bb.pool.releases)
		}
	}
	// Every answer takes 6s, under the 15s step timeout: no step times
	// out, and the check runs into the claim's deadline (20s claim,
	// checkBy 19s) after a few pages.
	t.Run("EveryPageSlowButWithinItsTimeout", func(t *testing.T) {
		t.Parallel()
		run(t, 20*time.Second, sim.Behaviour{DelayMS: 6000})
	})
	// The slot answer never comes; the claim's deadline (checkBy 11s)
	// comes before the 15s step timeout would have.
	t.Run("TheSlotAnswerHangs", func(t *testing.T) {
		t.Parallel()
		run(t, 12*time.Second, sim.Behaviour{DelayMS: 120000, Only: sim.SlotAPI})
	})
}
