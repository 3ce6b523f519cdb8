package server_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestUsageStatsPagesListEveryAccountWhileLeasesGoOn: GetUsageStats pages
// by (uses, id) of a count that still grows while the window is open: the
// window's end is the caller's (slotctl sends its own clock's now, here a
// minute ahead of the pool's; any until in the future does the same), and
// a lease taken between pages raises an account not yet listed to the
// cursor's count with a smaller id, so no page lists it.
func TestUsageStatsPagesListEveryAccountWhileLeasesGoOn(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	ids := addAccounts(t, c, 2) // x = ids[0], y = ids[1]
	now := b.clock.Now()
	for i, uses := range []int{1, 2} {
		for k := range uses {
			if _, err := b.db.Exec(testkit.Context(t), `INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, result, acquired_at)
				VALUES (gen_random_uuid(), $1, $2, 'fra', 'checker-1', 'no_slot', $3)`, ids[i], k+1, now.Add(-time.Duration(k+1)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	req := &apv1.GetUsageStatsRequest{Since: timestamppb.New(now.Add(-24 * time.Hour)), Until: timestamppb.New(now.Add(time.Minute)), PageSize: 1}
	listed := map[int64]int32{}
	p, err := c.GetUsageStats(testkit.Context(t), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.GetStats() {
		listed[s.GetAccountId()] = s.GetUses()
	}
	// A Checker leases an account between the pages (the least recently
	// used: x).
	l, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", LeaseTtl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leased account %d between the pages", l.GetLease().GetAccountId())
	for req.PageToken = p.GetNextPageToken(); req.PageToken != ""; req.PageToken = p.GetNextPageToken() {
		if p, err = c.GetUsageStats(testkit.Context(t), req); err != nil {
			t.Fatal(err)
		}
		for _, s := range p.GetStats() {
			listed[s.GetAccountId()] = s.GetUses()
		}
	}
	for _, id := range ids {
		if _, ok := listed[id]; !ok {
			t.Errorf("account %d (used in the window) is on no page; pages listed %v", id, listed)
		}
	}
}
