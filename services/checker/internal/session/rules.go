package session

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// orderClaims puts the claims in the order the session leases accounts
// for them: the mission whose oldest pending request is oldest first (its
// applicants have waited longest), then by mission code. Requests returns
// claims in no promised order; leasing in a fixed order makes which
// mission gets which account (the pool hands out the least recently used)
// follow from the data alone.
func orderClaims(claims []Claim) {
	oldest := func(c Claim) time.Time {
		var t time.Time
		for _, r := range c.Requests {
			if t.IsZero() || r.CreatedAt.Before(t) {
				t = r.CreatedAt
			}
		}
		return t
	}
	slices.SortStableFunc(claims, func(a, b Claim) int {
		return cmp.Or(oldest(a).Compare(oldest(b)), cmp.Compare(a.Mission, b.Mission))
	})
}

// queriesOf lists the centre and visa category pairs the claim's requests
// ask for, each once (compared as Requests compares them: trimmed, case
// folded), in the order of the requests.
func queriesOf(reqs []Request) []portal.Query {
	var qs []portal.Query
	for _, r := range reqs {
		q := portal.Query{Centre: strings.TrimSpace(r.Centre), VisaCategory: strings.TrimSpace(r.VisaCategory)}
		if !slices.ContainsFunc(qs, func(o portal.Query) bool {
			return foldName(o.Centre) == foldName(q.Centre) && foldName(o.VisaCategory) == foldName(q.VisaCategory)
		}) {
			qs = append(qs, q)
		}
	}
	return qs
}

// foldName is a centre's or category's name as Requests compares it:
// trimmed, case folded (ToUpper then ToLower folds what EqualFold does,
// as 'ſ' and 's').
func foldName(s string) string {
	return strings.ToLower(strings.ToUpper(strings.TrimSpace(s)))
}

func requestIDs(reqs []Request) []string {
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = r.ID
	}
	return ids
}

// outcomeOf turns the driver's result into the check's outcome. A check
// that read the calendar is NoSlot here, whatever slots it saw: which
// slots a request asks for is Requests' rule (MatchSlots), so only its
// answer to the report makes the check a Success (withMatches).
func outcomeOf(res portal.Result) Outcome {
	switch res.Outcome {
	case portal.Success, portal.NoSlot:
		return NoSlot
	case portal.LoginFail:
		return LoginFail
	case portal.Banned:
		return Banned
	}
	switch {
	case res.Reason == portal.ReasonCalledOff, res.Reason == portal.ReasonLoginBudget,
		res.Reason == portal.ReasonBrowser && res.Step == "":
		// The account did nothing at the portal (the check was called off,
		// found its session dead and may not log in, or the browser failed
		// before the first step, opening the tab): not its failure.
		return Unused
	}
	return Error
}

// withMatches is the outcome released to the pool once Requests has
// answered the report: a check that read the calendar is a Success when
// the report made at least one request SLOT_FOUND, so that "success" to
// the pool means what SLOT_FOUND means to the applicants. Slots outside
// every request's window leave it NoSlot (they are still reported).
func withMatches(out Outcome, matched int) Outcome {
	if out == NoSlot && matched > 0 {
		return Success
	}
	return out
}

// detailOf says what happened, for the pool's usage log, the report and
// the logs. The driver never puts the password in it.
func detailOf(res portal.Result) string {
	d := res.Detail
	if res.Reason != "" {
		d = string(res.Reason) + ": " + d
	}
	if res.Artifacts != nil {
		d += "; page saved in " + res.Artifacts.Dir
	}
	return d
}

// walls are the failures Requests counts towards pausing a portal. A
// maintenance page is one: the portal is down for everyone, so another
// account would meet it too. (To the pool it stays an error: outcomeOf.)
var walls = map[portal.Reason]ReportOutcome{
	portal.ReasonCaptcha:     ReportCaptcha,
	portal.ReasonBlocked:     ReportBlocked,
	portal.ReasonRateLimited: ReportRateLimited,
	portal.ReasonMaintenance: ReportMaintenance,
}

// reportOf is what Requests is told. Slots seen are always reported, even
// when a later step of the check failed: they are real, and applicants are
// waiting for them. Otherwise a check that read the calendar (out is
// NoSlot or Success) is NO_SLOT; a wall (CAPTCHA, blocked, rate limited,
// maintenance: reason) is that wall, with the portal's Retry-After bounded to what
// Requests takes; any other is FAILED, with the outcome in the detail.
func reportOf(claim Claim, accountID int64, out Outcome, reason portal.Reason, retryAfter time.Duration, slots []portal.Slot, detail string) Report {
	r := Report{ClaimID: claim.ID, AccountID: accountID, Detail: detail}
	switch {
	case len(slots) > 0:
		r.Outcome = ReportSlotsFound
		r.Slots, r.SlotsCut = reportSlots(slots, claim.Requests)
		if out != Success && out != NoSlot {
			r.Detail = fmt.Sprintf("%s after reading slots: %s", out, detail)
		}
		if r.SlotsCut > 0 {
			// First, so that truncating a long detail does not lose it.
			r.Detail = fmt.Sprintf("%d slots left out (a report holds %d: each request's first, then the earliest); %s", r.SlotsCut, len(r.Slots), r.Detail)
		}
	case out == Success || out == NoSlot:
		r.Outcome = ReportNoSlot
	default:
		r.Outcome = ReportFailed
		r.Detail = fmt.Sprintf("%s: %s", out, detail)
		if wall, ok := walls[reason]; ok {
			r.Outcome = wall
			if retryAfter > 0 {
				r.RetryAfter = min(max(retryAfter, apirule.MinPortalRetryAfter), apirule.MaxPortalRetryAfter)
			}
		}
	}
	r.Detail = truncate(r.Detail, apirule.MaxReportDetailLen)
	return r
}

// reportSlots is what a report carries of the slots a check read: sorted
// by date and time, each once, and of those what Requests takes: at most
// apirule.MaxSlotsPerReport, within apirule.MaxReportSlotsBytes. A huge
// calendar, or one with long centre and category names, would otherwise
// make every report of the mission fail. When it must cut, each claimed
// request's earliest apirule.MaxSlotsPerRequest slots in its window go
// first (what Requests keeps of a match), then the earliest of the rest,
// so that a request whose window starts late is not starved by the others'
// early slots. cut counts the slots left out.
func reportSlots(slots []portal.Slot, reqs []Request) (kept []portal.Slot, cut int) {
	all := slices.Clone(slots)
	slices.SortFunc(all, func(a, b portal.Slot) int {
		return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.Time, b.Time),
			cmp.Compare(a.Centre, b.Centre), cmp.Compare(a.VisaCategory, b.VisaCategory), cmp.Compare(a.Mission, b.Mission))
	})
	all = slices.Compact(all)
	size := 0
	for _, s := range all {
		size += slotWireBytes(s)
	}
	if len(all) <= apirule.MaxSlotsPerReport && size <= apirule.MaxReportSlotsBytes {
		return all, 0
	}
	// The slots of a query are named after its requests (the engine
	// copies their centre and category), so they are found by name, as
	// queriesOf groups requests. A slot the request passed up (Missed) is
	// not one of its first: Requests would not match it.
	type query struct{ centre, category string }
	byQuery := map[query][]int{}
	for i, s := range all {
		q := query{foldName(s.Centre), foldName(s.VisaCategory)}
		byQuery[q] = append(byQuery[q], i)
	}
	first := make([]bool, len(all))
	for _, r := range reqs {
		n := 0
		for _, i := range byQuery[query{foldName(r.Centre), foldName(r.VisaCategory)}] {
			s := all[i]
			if s.Date < r.EarliestDate || (r.LatestDate != "" && s.Date > r.LatestDate) {
				continue
			}
			if slices.ContainsFunc(r.Missed, func(m portal.Slot) bool {
				return m.Date == s.Date && strings.TrimSpace(m.Time) == strings.TrimSpace(s.Time)
			}) {
				continue
			}
			first[i] = true
			if n++; n == apirule.MaxSlotsPerRequest {
				break
			}
		}
	}
	// The firsts, then the rest, each in date order, until one no longer
	// fits; what is kept goes back in date order.
	keep, n, size := make([]bool, len(all)), 0, 0
	for _, firsts := range []bool{true, false} {
		for i, s := range all {
			if first[i] != firsts {
				continue
			}
			if size += slotWireBytes(s); n == apirule.MaxSlotsPerReport || size > apirule.MaxReportSlotsBytes {
				return keptOf(all, keep), len(all) - n
			}
			keep[i], n = true, n+1
		}
	}
	return keptOf(all, keep), len(all) - n
}

// keptOf is the slots keep marks, in their order.
func keptOf(all []portal.Slot, keep []bool) []portal.Slot {
	kept := make([]portal.Slot, 0, len(all))
	for i, s := range all {
		if keep[i] {
			kept = append(kept, s)
		}
	}
	return kept
}

// slotWireBytes is what a slot takes in ReportCheckResultRequest.slots
// (field 3): a Slot message of its centre, visa category, date and time
// (fields 1-4), as protobuf encodes them.
func slotWireBytes(s portal.Slot) int {
	n := 0
	for _, f := range []string{s.Centre, s.VisaCategory, s.Date, s.Time} {
		if f != "" {
			n += protowire.SizeTag(1) + protowire.SizeBytes(len(f))
		}
	}
	return protowire.SizeTag(3) + protowire.SizeBytes(n)
}

// claimWindow is how a claim's time is spent. The claim cannot be renewed,
// so the check must be reported before it lapses: an account is waited for
// only while at least half the claim would be left for the check, and the
// check itself ends a margin before the claim does, leaving time to
// release and report.
type claimWindow struct {
	acquireBy time.Time // give up waiting for a slot or an account
	checkBy   time.Time // the check's deadline
}

func windowOf(received time.Time, requestedTTL time.Duration, expiresAt time.Time) claimWindow {
	// Trust the shorter of the two: our TTL from when we got the claim, and
	// the server's expiry (its clock may be ahead of ours).
	end := received.Add(requestedTTL)
	if !expiresAt.IsZero() && expiresAt.Before(end) {
		end = expiresAt
	}
	ttl := end.Sub(received)
	margin := min(max(ttl/20, time.Second), 15*time.Second)
	return claimWindow{acquireBy: received.Add(ttl / 2), checkBy: end.Add(-margin)}
}

// truncate cuts s to at most n bytes of valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
