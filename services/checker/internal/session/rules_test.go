package session

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

func TestOrderClaimsPutsTheLongestWaitingMissionFirst(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	claims := []Claim{
		{Mission: "bel", Requests: []Request{{CreatedAt: t0.Add(2 * time.Second)}}},
		{Mission: "fra", Requests: []Request{{CreatedAt: t0.Add(3 * time.Second)}, {CreatedAt: t0.Add(time.Second)}}},
		{Mission: "deu", Requests: []Request{{CreatedAt: t0.Add(2 * time.Second)}}},
	}
	orderClaims(claims)
	var got []string
	for _, c := range claims {
		got = append(got, c.Mission)
	}
	if want := []string{"fra", "bel", "deu"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v (oldest request first, then code)", got, want)
	}
}

func TestQueriesOfListsEachCentreAndCategoryOnce(t *testing.T) {
	t.Parallel()
	got := queriesOf([]Request{
		{Centre: "London", VisaCategory: "tourism"},
		{Centre: " london ", VisaCategory: "TOURISM"},
		{Centre: "London", VisaCategory: "business"},
		{Centre: "Manchester", VisaCategory: "tourism"},
	})
	want := []portal.Query{{Centre: "London", VisaCategory: "tourism"}, {Centre: "London", VisaCategory: "business"}, {Centre: "Manchester", VisaCategory: "tourism"}}
	if !slices.Equal(got, want) {
		t.Errorf("queries = %v, want %v", got, want)
	}
}

func TestOutcomeIsSuccessOnlyWhenRequestsSaysTheReportMatched(t *testing.T) {
	t.Parallel()
	slots := []portal.Slot{{Centre: "london", VisaCategory: "tourism", Date: "2030-03-02"}}
	for _, tc := range []struct {
		name    string
		res     portal.Result
		matched int
		want    Outcome
	}{
		{"SlotsARequestAsksFor", portal.Result{Outcome: portal.Success, Slots: slots}, 1, Success},
		{"SlotsOutsideEveryWindow", portal.Result{Outcome: portal.Success, Slots: slots}, 0, NoSlot},
		{"NoSlot", portal.Result{Outcome: portal.NoSlot}, 0, NoSlot},
		{"LoginFail", portal.Result{Outcome: portal.LoginFail}, 0, LoginFail},
		{"BannedAfterReadingMatchingSlots", portal.Result{Outcome: portal.Banned, Slots: slots}, 1, Banned},
		{"Error", portal.Result{Outcome: portal.Error}, 0, Error},
		{"BrowserFailedBeforeTheFirstStep", portal.Result{Outcome: portal.Error, Reason: portal.ReasonBrowser}, 0, Unused},
		{"BrowserDiedMidCheck", portal.Result{Outcome: portal.Error, Reason: portal.ReasonBrowser, Step: "login"}, 0, Error},
		{"Unset", portal.Result{}, 0, Error},
	} {
		if got := withMatches(outcomeOf(tc.res), tc.matched); got != tc.want {
			t.Errorf("%s: outcome %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestReportFollowsWhatRequestsAccepts(t *testing.T) {
	t.Parallel()
	slots := []portal.Slot{{Centre: "London", VisaCategory: "tourism", Date: "2030-03-01"}}
	for _, tc := range []struct {
		name      string
		out       Outcome
		slots     []portal.Slot
		want      ReportOutcome
		wantSlots int
		detail    string
	}{
		{"Success", Success, slots, ReportSlotsFound, 1, "d"},
		{"SlotsOutsideTheWindows", NoSlot, slots, ReportSlotsFound, 1, "d"},
		{"NoSlot", NoSlot, nil, ReportNoSlot, 0, "d"},
		{"BannedAfterReadingSlots", Banned, slots, ReportSlotsFound, 1, "banned after reading slots: d"},
		{"Banned", Banned, nil, ReportFailed, 0, "banned: d"},
		{"NoAccount", NoAccount, nil, ReportFailed, 0, "no_account: d"},
	} {
		r := reportOf(Claim{ID: "claim"}, 7, tc.out, "", 0, tc.slots, "d")
		if r.Outcome != tc.want || len(r.Slots) != tc.wantSlots || r.Detail != tc.detail || r.AccountID != 7 {
			t.Errorf("%s: report %+v, want %s with %d slots and detail %q", tc.name, r, tc.want, tc.wantSlots, tc.detail)
		}
	}
	// Walls are reported as walls, with the portal's Retry-After within
	// what Requests takes; other failures carry none.
	for _, tc := range []struct {
		reason     portal.Reason
		retryAfter time.Duration
		want       ReportOutcome
		wantRetry  time.Duration
	}{
		{portal.ReasonCaptcha, 0, ReportCaptcha, 0},
		{portal.ReasonBlocked, 10 * time.Minute, ReportBlocked, 10 * time.Minute},
		{portal.ReasonRateLimited, 48 * time.Hour, ReportRateLimited, apirule.MaxPortalRetryAfter},
		{portal.ReasonRateLimited, time.Millisecond, ReportRateLimited, apirule.MinPortalRetryAfter},
		{portal.ReasonMaintenance, time.Hour, ReportMaintenance, time.Hour},
		{portal.ReasonMaintenance, 0, ReportMaintenance, 0},
		{portal.ReasonMaintenance, 48 * time.Hour, ReportMaintenance, apirule.MaxPortalRetryAfter},
		{portal.ReasonServerError, time.Hour, ReportFailed, 0},
		{portal.ReasonBadCredentials, 0, ReportFailed, 0},
	} {
		r := reportOf(Claim{ID: "c"}, 7, Banned, tc.reason, tc.retryAfter, nil, "d")
		if r.Outcome != tc.want || r.RetryAfter != tc.wantRetry {
			t.Errorf("%s with Retry-After %s: report %s retry %s, want %s retry %s", tc.reason, tc.retryAfter, r.Outcome, r.RetryAfter, tc.want, tc.wantRetry)
		}
	}
	// A maintenance page is released to the pool as an error (the account
	// reached the portal; the pause keeps the others away) and reported as
	// the wall it is, with the portal's Retry-After (portalsim: 1800 s).
	maint := portal.Result{Outcome: portal.Error, Reason: portal.ReasonMaintenance, RetryAfter: 30 * time.Minute}
	if out := outcomeOf(maint); out != Error {
		t.Errorf("maintenance: pool outcome %s, want error", out)
	}
	if r := reportOf(Claim{ID: "c"}, 7, outcomeOf(maint), maint.Reason, maint.RetryAfter, nil, "d"); r.Outcome != ReportMaintenance || r.RetryAfter != 30*time.Minute || !r.Outcome.Wall() {
		t.Errorf("maintenance: report %s retry %s, want maintenance (a wall) retry 30m0s", r.Outcome, r.RetryAfter)
	}
	// Slots seen beat a wall met later: they are reported.
	if r := reportOf(Claim{ID: "c"}, 7, Banned, portal.ReasonCaptcha, time.Minute, slots, "d"); r.Outcome != ReportSlotsFound || r.RetryAfter != 0 {
		t.Errorf("slots then a CAPTCHA: %s retry %s, want slots_found", r.Outcome, r.RetryAfter)
	}
	if r := reportOf(Claim{ID: "c"}, 0, Error, "", 0, nil, strings.Repeat("é", 3000)); len(r.Detail) > apirule.MaxReportDetailLen {
		t.Errorf("detail of %d bytes, want at most %d", len(r.Detail), apirule.MaxReportDetailLen)
	}
}

func TestWindowLeavesHalfTheClaimForTheCheck(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	w := windowOf(t0, 5*time.Minute, t0.Add(5*time.Minute))
	if want := t0.Add(150 * time.Second); !w.acquireBy.Equal(want) {
		t.Errorf("acquireBy %v, want %v", w.acquireBy, want)
	}
	if want := t0.Add(5*time.Minute - 15*time.Second); !w.checkBy.Equal(want) {
		t.Errorf("checkBy %v, want %v", w.checkBy, want)
	}
	// A server clock ahead of ours shortens the claim; never lengthens it.
	w = windowOf(t0, 10*time.Second, t0.Add(8*time.Second))
	if want := t0.Add(4 * time.Second); !w.acquireBy.Equal(want) {
		t.Errorf("acquireBy %v, want %v", w.acquireBy, want)
	}
	if want := t0.Add(7 * time.Second); !w.checkBy.Equal(want) {
		t.Errorf("checkBy %v, want %v (one second margin)", w.checkBy, want)
	}
}

// TestReleasePassesThePortalsRetryAfter: the pool hears the portal's
// Retry-After (within what it takes) whatever the outcome, and rests the
// account at least that long.
func TestReleasePassesThePortalsRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		out  Outcome
		got  time.Duration
		want time.Duration
	}{
		{NoSlot, 0, 0},
		{NoSlot, 30 * time.Minute, 30 * time.Minute},
		{Banned, 48 * time.Hour, apirule.MaxPortalRetryAfter},
		{Error, time.Millisecond, apirule.MinPortalRetryAfter},
	} {
		r := withSession(Release{Outcome: tc.out}, portal.Result{RetryAfter: tc.got})
		if r.RetryAfter != tc.want {
			t.Errorf("%s with Retry-After %s: release says %s, want %s", tc.out, tc.got, r.RetryAfter, tc.want)
		}
	}
}

// A calendar larger than a report may hold is reported by its earliest
// slots, sorted and each once, within both of Requests' limits: the count
// (apirule.MaxSlotsPerReport) and the message size (its
// LargestRequestBytes, MaxSlotsPerReport*100 + 64 KiB); the rest is
// counted and said in the detail.
func TestReportHoldsTheEarliestSlotsRequestsTakes(t *testing.T) {
	t.Parallel()
	const largestRequest = apirule.MaxSlotsPerReport*100 + 64<<10
	day0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	calendar := func(n int, centre string) []portal.Slot {
		var slots []portal.Slot
		for i := range n {
			s := portal.Slot{Mission: "fra", Centre: centre, VisaCategory: "tourism",
				Date: day0.AddDate(0, 0, i/8).Format(time.DateOnly), Time: fmt.Sprintf("%02d:00", 9+i%8)}
			slots = append(slots, s, s) // each read twice
		}
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
		return slots
	}
	size := func(r Report) int {
		req := &rqv1.ReportCheckResultRequest{ClaimId: "0190f5b2-7e1c-7a3e-9c1d-2f3a4b5c6d7e", Outcome: rqv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND,
			AccountId: 7, Detail: r.Detail}
		for _, s := range r.Slots {
			req.Slots = append(req.Slots, &rqv1.Slot{Centre: s.Centre, VisaCategory: s.VisaCategory, Date: s.Date, Time: s.Time})
		}
		return proto.Size(req)
	}
	sorted := func(slots []portal.Slot) bool {
		return slices.IsSortedFunc(slots, func(a, b portal.Slot) int {
			return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.Time, b.Time))
		}) && len(slices.Compact(slices.Clone(slots))) == len(slots)
	}
	detail := strings.Repeat("d", apirule.MaxReportDetailLen)

	t.Run("SmallCalendarWhole", func(t *testing.T) {
		t.Parallel()
		r := reportOf(Claim{ID: "c"}, 7, NoSlot, "", 0, calendar(100, "London"), "d")
		if len(r.Slots) != 100 || r.SlotsCut != 0 || !sorted(r.Slots) || r.Detail != "d" {
			t.Errorf("%d slots, %d cut, sorted %t, detail %q; want the 100, sorted, none cut", len(r.Slots), r.SlotsCut, sorted(r.Slots), r.Detail)
		}
	})
	t.Run("MoreSlotsThanRequestsTakes", func(t *testing.T) {
		t.Parallel()
		r := reportOf(Claim{ID: "c"}, 7, NoSlot, "", 0, calendar(apirule.MaxSlotsPerReport+2000, "London"), detail)
		if len(r.Slots) != apirule.MaxSlotsPerReport || r.SlotsCut != 2000 || !sorted(r.Slots) || r.Slots[0].Date != "2030-01-01" || r.Slots[0].Time != "09:00" {
			t.Fatalf("%d slots (first %+v), %d cut, sorted %t; want the earliest %d, 2000 cut", len(r.Slots), r.Slots[0], r.SlotsCut, sorted(r.Slots), apirule.MaxSlotsPerReport)
		}
		if !strings.HasPrefix(r.Detail, "2000 slots left out") || size(r) > largestRequest {
			t.Errorf("detail %.60q, %d bytes; want the cut said, at most %d bytes", r.Detail, size(r), largestRequest)
		}
	})
	// A request whose window starts after the cut still gets its first
	// slots (what Requests keeps of a match), ahead of the others' later
	// ones: the earliest over the whole mission would starve it. Its names
	// are compared as Requests compares them, and the slots it passed up
	// (resumed) are not its first.
	t.Run("ALateWindowIsNotStarved", func(t *testing.T) {
		t.Parallel()
		from, to := day0.AddDate(0, 0, 1400).Format(time.DateOnly), day0.AddDate(0, 0, 1410).Format(time.DateOnly)
		slots := calendar(apirule.MaxSlotsPerReport+2000, "London")
		var passedUp []portal.Slot // the first 20 of its window
		for _, s := range slots {
			if s.Date >= from && s.Date <= to && !slices.Contains(passedUp, s) && len(passedUp) < apirule.MaxSlotsPerRequest {
				passedUp = append(passedUp, s)
			}
		}
		for name, late := range map[string]Request{
			"SameSpelling":      {ID: "late", Centre: "London", VisaCategory: "tourism", EarliestDate: from, LatestDate: to},
			"OtherSpelling":     {ID: "late", Centre: " LONDON", VisaCategory: "Tourism ", EarliestDate: from, LatestDate: to},
			"ResumedOnItsFirst": {ID: "late", Centre: "London", VisaCategory: "tourism", EarliestDate: from, LatestDate: to, Missed: passedUp},
		} {
			early := Request{ID: "early", Centre: "London", VisaCategory: "tourism", EarliestDate: day0.Format(time.DateOnly)}
			r := reportOf(Claim{ID: "c", Requests: []Request{early, late}}, 7, NoSlot, "", 0, slots, detail)
			inLate := 0
			for _, s := range r.Slots {
				if s.Date >= from && s.Date <= to && !slices.ContainsFunc(late.Missed, func(m portal.Slot) bool { return m.Date == s.Date && m.Time == s.Time }) {
					inLate++
				}
			}
			if inLate != apirule.MaxSlotsPerRequest || len(r.Slots) != apirule.MaxSlotsPerReport || r.SlotsCut != 2000 || !sorted(r.Slots) || r.Slots[0].Date != "2030-01-01" {
				t.Errorf("%s: %d of the late request's slots it can take, %d slots (first %+v), %d cut, sorted %t; want %d of its, the rest the earliest",
					name, inLate, len(r.Slots), r.Slots[0], r.SlotsCut, sorted(r.Slots), apirule.MaxSlotsPerRequest)
			}
		}
	})
	t.Run("LongNamesFitTheMessage", func(t *testing.T) {
		t.Parallel()
		r := reportOf(Claim{ID: "c"}, 7, NoSlot, "", 0, calendar(apirule.MaxSlotsPerReport, strings.Repeat("Centre with a long name ", 8)), detail)
		if n := size(r); n > largestRequest || r.SlotsCut == 0 || len(r.Slots)+r.SlotsCut != apirule.MaxSlotsPerReport || !sorted(r.Slots) {
			t.Errorf("%d slots, %d cut, %d bytes; want them cut to fit %d bytes", len(r.Slots), r.SlotsCut, n, largestRequest)
		}
	})
}
