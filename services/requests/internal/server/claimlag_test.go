package server_test

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// claimLag reads slotwatch_requests_claim_lag_seconds: its count and sum.
func claimLag(t *testing.T, reg prometheus.Gatherer) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "slotwatch_requests_claim_lag_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatal("no metric slotwatch_requests_claim_lag_seconds")
	return 0, 0
}

// The claim lag of a mission is measured from the moment it became due:
// its first pending request, its last check plus the interval, or the end
// of a lapsed claim's grace, whichever came last.
func TestClaimLagRunsFromWhenTheMissionBecameDue(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Minute
	c, b := setup(t, app.Config{CheckInterval: interval})
	reg := b.server.registry
	wantLag := func(n uint64, sum time.Duration) {
		t.Helper()
		gotN, gotSum := claimLag(t, reg)
		if gotN != n || math.Abs(gotSum-sum.Seconds()) > 1e-6 {
			t.Fatalf("claim lag: %d observations summing to %vs, want %d summing to %vs", gotN, gotSum, n, sum.Seconds())
		}
	}
	ap := createApplicant(t, c)
	createRequest(t, c, ap.GetId(), reqArgs{mission: "fra"})
	wantLag(0, 0)

	// Never checked: due since its request was created.
	b.clock.Advance(30 * time.Second)
	first := claimOne(t, c, "fra")
	wantLag(1, 30*time.Second)

	// Checked: due again one interval after the check.
	b.clock.Advance(5 * time.Second)
	report(t, c, first.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
	b.clock.Advance(interval + 45*time.Second)
	second := claimOne(t, c, "fra")
	wantLag(2, 75*time.Second)

	// Claimed and never reported: due again when the claim's grace ends,
	// which here is after the interval since the last check.
	expires := second.GetExpiresAt().AsTime()
	b.clock.Set(expires.Add(domain.ClaimGrace + 20*time.Second))
	claimOne(t, c, "fra")
	wantLag(3, 95*time.Second)
}
