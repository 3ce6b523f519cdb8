package domain

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// Limits on free text, so one request cannot store megabytes. The limits
// the Checker must stay within too are apirule's.
const (
	MaxNameLen = 200
	MaxTextLen = 100
)

var (
	passportRE    = regexp.MustCompile(`^[A-Za-z0-9]{5,20}$`)
	nationalityRE = regexp.MustCompile(`^[A-Za-z]{2,3}$`)
	timeRE        = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// DateLayout is the API's date format.
const DateLayout = "2006-01-02"

// Bounds on dates, so that a typo (0203 for 2023, 9999) is a field
// violation rather than a request that never matches or a slot nobody can
// book.
const (
	// DateYears is how far from today a request window or a slot may lie,
	// either way.
	DateYears = 10
	// EarliestBirthYear is the first year a date of birth may name.
	EarliestBirthYear = 1900
)

// nearToday records a violation unless d lies within DateYears of today,
// and says whether it does.
func nearToday(p *apirule.FieldErrors, field string, d, today time.Time) bool {
	from, to := today.AddDate(-DateYears, 0, 0), today.AddDate(DateYears, 0, 0)
	if d.Before(from) || d.After(to) {
		p.Add(field, "must be within %d years of today (%s to %s)", DateYears, from.Format(DateLayout), to.Format(DateLayout))
		return false
	}
	return true
}

// ParseDate reads a "YYYY-MM-DD" date. An empty s records "must not be empty"
// when required, else returns the zero time.
func ParseDate(p *apirule.FieldErrors, field, s string, required bool) (time.Time, bool) {
	if s == "" {
		if required {
			p.Add(field, "must not be empty")
			return time.Time{}, false
		}
		return time.Time{}, true
	}
	d, err := time.Parse(DateLayout, s)
	if err != nil || len(s) != len(DateLayout) {
		p.Add(field, "must be a date in the form YYYY-MM-DD")
		return time.Time{}, false
	}
	return d, true
}

// text trims s and checks it with the shared helpers; it returns the
// trimmed value, which is what is stored.
func text(p *apirule.FieldErrors, field, s string, required bool, max int) string {
	s = strings.TrimSpace(s)
	if required && !p.Required(field, s) {
		return s
	}
	p.MaxLen(field, s, max)
	return s
}

// line is text for a single-line field (a name, a centre, a category, an
// id): it also refuses what breaks a line (apirule.FieldErrors.OneLine).
// Free text (a report's detail) goes through text and may hold line
// breaks.
func line(p *apirule.FieldErrors, field, s string, required bool, max int) string {
	before := p.Len()
	s = text(p, field, s, required, max)
	if p.Len() > before {
		return s // one violation per field
	}
	p.OneLine(field, s)
	return s
}

// ApplicantFields are the fields a caller sets on an applicant: all of them
// on create, those that are non-nil on update.
type ApplicantFields struct {
	FullName       *string
	Email          *string
	Phone          *string
	PassportNumber *string
	Nationality    *string
	DateOfBirth    *string
}

// Apply validates the fields that are set and writes them to a. On create
// every field is set, and full_name and email are required.
func (f ApplicantFields) Apply(p *apirule.FieldErrors, a *Applicant, today time.Time) {
	if f.FullName != nil {
		a.FullName = line(p, "full_name", *f.FullName, true, MaxNameLen)
	}
	if f.Email != nil {
		a.Email = strings.TrimSpace(*f.Email)
		p.Email("email", a.Email)
	}
	if f.Phone != nil {
		a.Phone = strings.TrimSpace(*f.Phone)
		p.Phone("phone", a.Phone)
	}
	if f.PassportNumber != nil {
		// The description never echoes the value: it is a secret.
		a.PassportNumber = strings.ToUpper(strings.TrimSpace(*f.PassportNumber))
		if a.PassportNumber != "" && !passportRE.MatchString(a.PassportNumber) {
			p.Add("passport_number", "must be 5 to 20 letters or digits")
		}
	}
	if f.Nationality != nil {
		a.Nationality = strings.ToUpper(strings.TrimSpace(*f.Nationality))
		if a.Nationality != "" && !nationalityRE.MatchString(a.Nationality) {
			p.Add("nationality", "must be an ISO 3166-1 alpha-2 or alpha-3 code such as FR or FRA")
		}
	}
	if f.DateOfBirth != nil {
		if d, ok := ParseDate(p, "date_of_birth", *f.DateOfBirth, false); ok {
			switch {
			case d.IsZero(): // not given, or cleared
			case d.After(today):
				p.Add("date_of_birth", "must not be in the future")
			case d.Year() < EarliestBirthYear:
				p.Add("date_of_birth", "must not be before %d-01-01", EarliestBirthYear)
			}
			a.DateOfBirth = d
		}
	}
}

// NewRequestInput is what a caller gives to open a request.
type NewRequestInput struct {
	ApplicantID  string
	MissionCode  string
	Centre       string
	VisaCategory string
	EarliestDate string
	LatestDate   string
}

// NewRequest validates in and returns a PENDING request (without id and
// times). A window that ends before today is rejected: it could never match.
func NewRequest(p *apirule.FieldErrors, in NewRequestInput, today time.Time) Request {
	r := Request{Status: StatusPending}
	r.ApplicantID = p.UUID("applicant_id", in.ApplicantID)
	r.MissionCode = in.MissionCode
	p.MissionCode("mission_code", in.MissionCode)
	r.Centre = line(p, "centre", in.Centre, true, MaxTextLen)
	r.VisaCategory = line(p, "visa_category", in.VisaCategory, true, MaxTextLen)
	earliest, okE := ParseDate(p, "earliest_date", in.EarliestDate, true)
	latest, okL := ParseDate(p, "latest_date", in.LatestDate, true)
	okE = okE && nearToday(p, "earliest_date", earliest, today)
	okL = okL && nearToday(p, "latest_date", latest, today)
	if okE && okL {
		switch {
		case earliest.After(latest):
			p.Add("earliest_date", "must not be after latest_date (%s)", in.LatestDate)
		case latest.Before(today):
			p.Add("latest_date", "must not be in the past (today is %s)", today.Format(DateLayout))
		}
	}
	r.EarliestDate, r.LatestDate = earliest, latest
	return r
}

// SlotInput is a slot as a caller reports it.
type SlotInput struct {
	Centre       string
	VisaCategory string
	Date         string
	Time         string
}

// CheckResultInput is a checker's report as it arrives.
type CheckResultInput struct {
	ClaimID   string
	Outcome   Outcome // empty when the caller sent none or an unknown one
	Slots     []SlotInput
	AccountID int64
	Detail    string
	// RetryAfter is the portal's Retry-After (0 when none was sent).
	RetryAfter time.Duration
}

// NewCheckResult validates a report. Slots come only with SLOTS_FOUND, and
// SLOTS_FOUND comes with at least one; slot dates lie within DateYears of
// today.
func NewCheckResult(p *apirule.FieldErrors, in CheckResultInput, today time.Time) CheckResult {
	c := CheckResult{ClaimID: p.UUID("claim_id", in.ClaimID), Outcome: in.Outcome, AccountID: in.AccountID, RetryAfter: in.RetryAfter}
	if in.RetryAfter != 0 {
		switch {
		case !in.Outcome.Wall():
			p.Add("retry_after", "must be unset unless outcome is CHECK_OUTCOME_CAPTCHA, CHECK_OUTCOME_BLOCKED, CHECK_OUTCOME_RATE_LIMITED or CHECK_OUTCOME_MAINTENANCE")
		case in.RetryAfter < apirule.MinPortalRetryAfter || in.RetryAfter > apirule.MaxPortalRetryAfter:
			p.Add("retry_after", "must be at least %s and at most %s, got %s", apirule.MinPortalRetryAfter, apirule.MaxPortalRetryAfter, in.RetryAfter)
		}
	}
	switch in.Outcome {
	case OutcomeNoSlot, OutcomeFailed, OutcomeCaptcha, OutcomeBlocked, OutcomeRateLimited, OutcomeMaintenance:
		if len(in.Slots) > 0 {
			p.Add("slots", "must be empty unless outcome is CHECK_OUTCOME_SLOTS_FOUND")
		}
	case OutcomeSlotsFound:
		if len(in.Slots) == 0 {
			p.Add("slots", "must list the slots seen when outcome is CHECK_OUTCOME_SLOTS_FOUND")
		}
	default:
		p.Add("outcome", "must be CHECK_OUTCOME_NO_SLOT, CHECK_OUTCOME_SLOTS_FOUND, CHECK_OUTCOME_FAILED, CHECK_OUTCOME_CAPTCHA, CHECK_OUTCOME_BLOCKED, CHECK_OUTCOME_RATE_LIMITED or CHECK_OUTCOME_MAINTENANCE")
	}
	if len(in.Slots) > apirule.MaxSlotsPerReport {
		p.Add("slots", "must hold at most %d slots, got %d", apirule.MaxSlotsPerReport, len(in.Slots))
	} else {
		for i, s := range in.Slots {
			f := fmt.Sprintf("slots[%d].", i)
			// text, not line: the Checker names a slot after the claim's
			// request, and a request stored before the single-line rule
			// must not make every report of its mission fail.
			slot := Slot{
				Centre:       text(p, f+"centre", s.Centre, true, MaxTextLen),
				VisaCategory: text(p, f+"visa_category", s.VisaCategory, true, MaxTextLen),
				Time:         s.Time,
			}
			if d, ok := ParseDate(p, f+"date", s.Date, true); ok && nearToday(p, f+"date", d, today) {
				slot.Date = d
			}
			if s.Time != "" && !timeRE.MatchString(s.Time) {
				p.Add(f+"time", "must be a time in the form HH:MM, or empty")
			}
			c.Slots = append(c.Slots, slot)
		}
	}
	if in.AccountID < 0 {
		p.Add("account_id", "must not be negative")
	}
	c.Detail = text(p, "detail", in.Detail, false, apirule.MaxReportDetailLen)
	return c
}

// CheckClaimInput validates the plain fields of a ClaimDueMissions call;
// a ttl of 0 asks for the server's default.
func CheckClaimInput(p *apirule.FieldErrors, checkerID string, maxMissions int32, ttl time.Duration) {
	line(p, "checker_id", checkerID, true, apirule.MaxCheckerIDLen)
	if maxMissions < 1 || maxMissions > apirule.MaxMissionsPerClaim {
		p.Add("max_missions", "must be between 1 and %d, got %d", apirule.MaxMissionsPerClaim, maxMissions)
	}
	switch {
	case ttl > apirule.MaxClaimTTL:
		p.Add("claim_ttl", "must be at most %s", apirule.MaxClaimTTL)
	case ttl > 0 && ttl < apirule.MinClaimTTL:
		p.Add("claim_ttl", "must be at least %s (or unset for the server's default)", apirule.MinClaimTTL)
	}
}
