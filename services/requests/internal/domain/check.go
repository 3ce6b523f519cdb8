package domain

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// MaxSlotsPerRequest bounds the slots a request keeps as matched (the
// earliest ones, by date and time; MatchedSlotCount counts them all) and as
// missed. A report may carry 10,000 slots, and a request that kept them all
// grew to a megabyte: the answers that carry requests (ReportCheckResult,
// the mission's every later ClaimDueMissions) then passed gRPC's 4 MB
// limit. With the bound, one request is a few kilobytes at most
// (Request.SizeBound).
const MaxSlotsPerRequest = apirule.MaxSlotsPerRequest

// MaxMissedSlots bounds the slots a request remembers as passed up. Far
// more than MaxSlotsPerRequest: with more than 20 slots open, each resume
// announces the next 20, and a list of only 20 would forget the first
// ones and announce them again, round and round. Answers show the last
// MaxSlotsPerRequest (AnsweredMissedSlots).
const MaxMissedSlots = 1000

// AnsweredMissedSlots are the missed slots an answer carries: the last
// MaxSlotsPerRequest passed up.
func (r Request) AnsweredMissedSlots() []Slot {
	return r.MissedSlots[max(len(r.MissedSlots)-MaxSlotsPerRequest, 0):]
}

// MatchSlots returns the slots that fit r: same centre and visa category
// (compared without regard to case or surrounding space, as portals and
// people spell them differently) and a date inside [EarliestDate,
// LatestDate], both ends included; a slot among r.MissedSlots (SameSlot)
// is left out, since the request was told of it once already.
func MatchSlots(r Request, slots []Slot) []Slot {
	fits := matcher(r)
	var out []Slot
	for _, s := range slots {
		if fits(s) {
			out = append(out, s)
		}
	}
	return out
}

// matcher is MatchSlots' rule for one request: whether a slot fits r.
func matcher(r Request) func(Slot) bool {
	// The missed slots by day and time, so that a report of 10,000 slots
	// against 1,000 missed (MaxMissedSlots) is not ten million compares
	// under the claim's row locks.
	var missed map[slotWhen][]Slot
	if len(r.MissedSlots) > 0 {
		missed = make(map[slotWhen][]Slot, len(r.MissedSlots))
		for _, m := range r.MissedSlots {
			missed[whenOf(m)] = append(missed[whenOf(m)], m)
		}
	}
	return func(s Slot) bool {
		return sameName(s.Centre, r.Centre) && sameName(s.VisaCategory, r.VisaCategory) &&
			!s.Date.Before(r.EarliestDate) && !s.Date.After(r.LatestDate) && !containsSlot(missed[whenOf(s)], s)
	}
}

// slotWhen is a slot's day and time, as SameSlot compares them.
type slotWhen struct {
	date int64 // the instant, as Equal compares it
	time string
}

func whenOf(s Slot) slotWhen {
	return slotWhen{date: s.Date.UnixNano(), time: strings.TrimSpace(s.Time)}
}

// SameSlot says whether a and b are one appointment: same centre and visa
// category (spelt alike, as MatchSlots compares them), date and time.
func SameSlot(a, b Slot) bool {
	return sameName(a.Centre, b.Centre) && sameName(a.VisaCategory, b.VisaCategory) &&
		a.Date.Equal(b.Date) && strings.TrimSpace(a.Time) == strings.TrimSpace(b.Time)
}

func containsSlot(slots []Slot, s Slot) bool {
	for _, o := range slots {
		if SameSlot(o, s) {
			return true
		}
	}
	return false
}

func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

// byWhen orders slots by date and time: the order in which a request keeps
// the earliest MaxSlotsPerRequest of those that matched.
func byWhen(a, b Slot) int {
	return cmp.Or(a.Date.Compare(b.Date), cmp.Compare(strings.TrimSpace(a.Time), strings.TrimSpace(b.Time)))
}

// earliestMatches is how many of sorted (ordered byWhen) fit r, and the
// first MaxSlotsPerRequest of them, each once (SameSlot). It reads only the slots dated inside
// r's window and keeps only what it returns: with a report of 10,000 slots
// and a claim of 1,000 requests, collecting and sorting each request's
// matches took gigabytes and seconds under the claim's row locks.
func earliestMatches(r Request, sorted []Slot) (first []Slot, n int) {
	fits := matcher(r)
	from, _ := slices.BinarySearchFunc(sorted, r.EarliestDate, func(s Slot, d time.Time) int {
		return cmp.Or(s.Date.Compare(d), 1) // the first slot of the day
	})
	var last *Slot
	for i, s := range sorted[from:] {
		if s.Date.After(r.LatestDate) {
			break
		}
		// Each slot once, in the list and in the count: a report may
		// list a slot twice, and duplicates would crowd later slots out
		// of the first MaxSlotsPerRequest (and so out of CheckedSlots),
		// and make readers of the count announce slots that do not
		// exist. The slots that fit r share its centre and category,
		// and sorted puts those of one day and time together, so a
		// duplicate follows the slot it repeats.
		if fits(s) && (last == nil || !SameSlot(*last, s)) {
			if len(first) < MaxSlotsPerRequest {
				first = append(first, s)
			}
			n++
			last = &sorted[from+i]
		}
	}
	return first, n
}

// ApplyCheck is what a reported check does to the requests its claim
// covered. Each PENDING request counts the check (LastCheckedAt, CheckCount);
// when the check found slots, a PENDING request with a matching slot becomes
// SLOT_FOUND and keeps the earliest MaxSlotsPerRequest slots that matched, each once
// (MatchedSlotCount counts them all, each once). Requests that are no longer
// PENDING are left exactly as they are, and so are those whose window ended
// before today (the claim was taken on their last day, the report came
// after midnight): they are expired, which the next expiry records, and a
// slot inside their window is in the past. Today is the day it is in loc,
// the zone of the mission the requests belong to. It returns every request
// it changed, and separately those that became SLOT_FOUND.
func ApplyCheck(reqs []Request, res CheckResult, now time.Time, loc *time.Location) (changed, matched []Request) {
	today := Today(now, loc)
	var sorted []Slot
	if res.Outcome == OutcomeSlotsFound {
		sorted = slices.Clone(res.Slots)
		slices.SortStableFunc(sorted, byWhen)
	}
	for _, r := range reqs {
		if r.Status != StatusPending || r.ExpiredOn(today) {
			continue
		}
		r.LastCheckedAt = now
		r.CheckCount++
		r.UpdatedAt = now
		if res.Outcome == OutcomeSlotsFound {
			if first, n := earliestMatches(r, sorted); n > 0 {
				r.Status = StatusSlotFound
				r.MatchedSlots, r.MatchedSlotCount = first, n
				matched = append(matched, r)
			}
		}
		changed = append(changed, r)
	}
	return changed, matched
}

// CheckedSlots are the slots a check's record keeps (requests.checks.slots):
// of the slots that matched, the earliest MaxSlotsPerRequest, each once.
// matched are the requests the check turned SLOT_FOUND (ApplyCheck), each
// with the earliest MaxSlotsPerRequest of its matches, each once, so the
// earliest MaxSlotsPerRequest distinct slots of the check's matches are
// among them (a report listing a slot twice crowds out none). Nothing reads a check's slots but operators, and the
// whole list a report may carry (10,000 slots, about 900 KB of JSON) made
// each check row of a busy portal tens of kilobytes on disk, kept for
// REQUESTS_RETENTION.
func CheckedSlots(matched []Request) []Slot {
	var all []Slot
	for _, r := range matched {
		all = append(all, r.MatchedSlots...)
	}
	slices.SortStableFunc(all, byWhen)
	var out []Slot
	for _, s := range all {
		if len(out) == MaxSlotsPerRequest {
			break
		}
		if !containsSlot(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// ExpiredOn says whether r, still PENDING, can no longer match: its last
// acceptable date is before today (its mission's today). ApplyCheck leaves
// such a request alone; the store applies the same rule in SQL
// (latest_date < the mission's today) when it expires requests in bulk.
func (r Request) ExpiredOn(today time.Time) bool {
	return r.Status == StatusPending && r.LatestDate.Before(today)
}

// Cancel turns a PENDING request CANCELLED. Cancelling a CANCELLED request
// changes nothing (changed is false); other statuses are a *StatusError.
func (r *Request) Cancel(now time.Time) (changed bool, err error) {
	switch r.Status {
	case StatusPending:
		r.Status = StatusCancelled
		r.UpdatedAt = now
		return true, nil
	case StatusCancelled:
		return false, nil
	default:
		return false, &StatusError{ID: r.ID, Status: r.Status, Need: StatusPending, Action: "CancelAppointmentRequest"}
	}
}

// ConfirmBooked turns a SLOT_FOUND request BOOKED, which is final.
// Confirming a BOOKED request again changes nothing (changed is false), so
// a retried call gets the same answer; any other status is a *StatusError.
func (r *Request) ConfirmBooked(now time.Time) (changed bool, err error) {
	switch r.Status {
	case StatusSlotFound:
		r.Status = StatusBooked
		r.UpdatedAt = now
		return true, nil
	case StatusBooked:
		return false, nil
	default:
		return false, &StatusError{ID: r.ID, Status: r.Status, Need: StatusSlotFound, Action: "ConfirmBooked"}
	}
}

// ResumeWatching turns a SLOT_FOUND request PENDING again: the slots it
// matched move to MissedSlots, so the same slots are not announced again,
// and a different slot later is. MissedSlots keeps at most
// MaxMissedSlots, the most recently passed up (the ones just matched
// always fit), and drops those whose day has passed in every zone (before
// yesterday in UTC: no zone is more than a day behind it). Resuming a
// PENDING request changes nothing (changed is false: it is watched already,
// and a retried call gets the same answer); any other status is a
// *StatusError.
func (r *Request) ResumeWatching(now time.Time) (changed bool, err error) {
	switch r.Status {
	case StatusSlotFound:
		passed := Today(now, time.UTC).AddDate(0, 0, -1)
		var missed []Slot
		for _, s := range r.MissedSlots {
			if !s.Date.Before(passed) && !containsSlot(r.MatchedSlots, s) {
				missed = append(missed, s)
			}
		}
		missed = append(missed, r.MatchedSlots...)
		r.MissedSlots = missed[max(len(missed)-MaxMissedSlots, 0):]
		r.MatchedSlots, r.MatchedSlotCount = nil, 0
		r.Status = StatusPending
		r.UpdatedAt = now
		return true, nil
	case StatusPending:
		return false, nil
	default:
		return false, &StatusError{ID: r.ID, Status: r.Status, Need: StatusSlotFound, Action: "ResumeWatching"}
	}
}
