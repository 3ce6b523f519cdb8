package domain_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

func day(s string) time.Time {
	d, err := time.Parse(domain.DateLayout, s)
	if err != nil {
		panic(err)
	}
	return d
}

// violations runs check and returns the fields it named.
func violations(check func(*apirule.FieldErrors)) map[string]string {
	var v apirule.FieldErrors
	check(&v)
	out := map[string]string{}
	for _, f := range v {
		out[f.Field] = f.Description
	}
	return out
}

func pendingRequest() domain.Request {
	return domain.Request{
		ID: uuid.New(), MissionCode: "fra", Centre: "paris", VisaCategory: "tourism",
		EarliestDate: day("2030-07-01"), LatestDate: day("2030-07-10"), Status: domain.StatusPending,
	}
}

func slot(centre, category, date string) domain.Slot {
	return domain.Slot{Centre: centre, VisaCategory: category, Date: day(date)}
}

func TestMatchSlots(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		slots []domain.Slot
		want  int
	}{
		{"EarliestDateIsInside", []domain.Slot{slot("paris", "tourism", "2030-07-01")}, 1},
		{"LatestDateIsInside", []domain.Slot{slot("paris", "tourism", "2030-07-10")}, 1},
		{"DayBeforeWindowIsOutside", []domain.Slot{slot("paris", "tourism", "2030-06-30")}, 0},
		{"DayAfterWindowIsOutside", []domain.Slot{slot("paris", "tourism", "2030-07-11")}, 0},
		{"OtherCentreDoesNotMatch", []domain.Slot{slot("lyon", "tourism", "2030-07-05")}, 0},
		{"OtherCategoryDoesNotMatch", []domain.Slot{slot("paris", "business", "2030-07-05")}, 0},
		{"NamesCompareWithoutCaseOrSpace", []domain.Slot{slot(" Paris", "TOURISM ", "2030-07-05")}, 1},
		{"SeveralSlotsKeepOnlyTheMatchingOnes", []domain.Slot{
			slot("paris", "tourism", "2030-06-30"),
			slot("paris", "tourism", "2030-07-02"),
			slot("lyon", "tourism", "2030-07-03"),
			slot("paris", "tourism", "2030-07-09"),
		}, 2},
		{"NoSlotsNoMatch", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := domain.MatchSlots(pendingRequest(), tt.slots)
			if len(got) != tt.want {
				t.Fatalf("matched %d slots (%v), want %d", len(got), got, tt.want)
			}
		})
	}
}

func TestApplyCheck(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)

	t.Run("SlotsFoundMarksMatchingPendingRequests", func(t *testing.T) {
		t.Parallel()
		in, out := pendingRequest(), pendingRequest()
		out.Centre = "lyon"
		res := domain.CheckResult{Outcome: domain.OutcomeSlotsFound, Slots: []domain.Slot{slot("paris", "tourism", "2030-07-05")}}
		changed, matched := domain.ApplyCheck([]domain.Request{in, out}, res, now, time.UTC)
		if len(changed) != 2 || len(matched) != 1 || matched[0].ID != in.ID {
			t.Fatalf("changed %d, matched %v", len(changed), matched)
		}
		if matched[0].Status != domain.StatusSlotFound || len(matched[0].MatchedSlots) != 1 {
			t.Fatalf("matched request = %+v", matched[0])
		}
		for _, r := range changed {
			if r.CheckCount != 1 || !r.LastCheckedAt.Equal(now) {
				t.Fatalf("check not counted on %+v", r)
			}
		}
		if changed[1].Status != domain.StatusPending {
			t.Fatalf("unmatched request became %s", changed[1].Status)
		}
	})

	t.Run("NoSlotOutcomeOnlyCountsTheCheck", func(t *testing.T) {
		t.Parallel()
		changed, matched := domain.ApplyCheck([]domain.Request{pendingRequest()}, domain.CheckResult{Outcome: domain.OutcomeNoSlot}, now, time.UTC)
		if len(matched) != 0 || changed[0].Status != domain.StatusPending || changed[0].CheckCount != 1 {
			t.Fatalf("changed %+v matched %v", changed, matched)
		}
	})

	t.Run("RequestWhoseWindowEndedSinceTheClaimIsUnchanged", func(t *testing.T) {
		t.Parallel()
		r := pendingRequest() // latest 2030-07-10
		afterMidnight := time.Date(2030, 7, 11, 0, 0, 1, 0, time.UTC)
		res := domain.CheckResult{Outcome: domain.OutcomeSlotsFound, Slots: []domain.Slot{slot("paris", "tourism", "2030-07-10")}}
		changed, matched := domain.ApplyCheck([]domain.Request{r}, res, afterMidnight, time.UTC)
		if len(changed) != 0 || len(matched) != 0 {
			t.Fatalf("changed %+v matched %+v, want nothing", changed, matched)
		}
		// On its last day it still matches.
		if _, matched := domain.ApplyCheck([]domain.Request{r}, res, afterMidnight.Add(-2*time.Second), time.UTC); len(matched) != 1 {
			t.Fatalf("on its last day: matched %+v", matched)
		}
	})

	t.Run("AlreadySlotFoundRequestIsUnchanged", func(t *testing.T) {
		t.Parallel()
		r := pendingRequest()
		r.Status = domain.StatusSlotFound
		r.MatchedSlots = []domain.Slot{slot("paris", "tourism", "2030-07-02")}
		r.CheckCount = 3
		res := domain.CheckResult{Outcome: domain.OutcomeSlotsFound, Slots: []domain.Slot{slot("paris", "tourism", "2030-07-05")}}
		changed, matched := domain.ApplyCheck([]domain.Request{r}, res, now, time.UTC)
		if len(changed) != 0 || len(matched) != 0 {
			t.Fatalf("changed %v matched %v, want nothing", changed, matched)
		}
	})
}

func TestExpiredOn(t *testing.T) {
	t.Parallel()
	r := pendingRequest() // latest 2030-07-10
	for _, tt := range []struct {
		name   string
		today  string
		status domain.Status
		want   bool
	}{
		{"PendingOnLatestDateIsNotExpired", "2030-07-10", domain.StatusPending, false},
		{"PendingDayAfterLatestDateIsExpired", "2030-07-11", domain.StatusPending, true},
		{"SlotFoundNeverExpires", "2030-08-01", domain.StatusSlotFound, false},
		{"CancelledNeverExpires", "2030-08-01", domain.StatusCancelled, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := r
			r.Status = tt.status
			if got := r.ExpiredOn(day(tt.today)); got != tt.want {
				t.Fatalf("ExpiredOn(%s) = %v, want %v", tt.today, got, tt.want)
			}
		})
	}
	if got := domain.Today(time.Date(2030, 7, 10, 23, 59, 59, 0, time.UTC), time.UTC); !got.Equal(day("2030-07-10")) {
		t.Fatalf("Today = %v", got)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	t.Run("PendingBecomesCancelled", func(t *testing.T) {
		t.Parallel()
		r := pendingRequest()
		if changed, err := r.Cancel(now); !changed || err != nil || r.Status != domain.StatusCancelled {
			t.Fatalf("changed %v err %v status %s", changed, err, r.Status)
		}
	})
	t.Run("CancelledAgainChangesNothing", func(t *testing.T) {
		t.Parallel()
		r := pendingRequest()
		r.Status = domain.StatusCancelled
		if changed, err := r.Cancel(now); changed || err != nil {
			t.Fatalf("changed %v err %v", changed, err)
		}
	})
	t.Run("SlotFoundIsNotPending", func(t *testing.T) {
		t.Parallel()
		r := pendingRequest()
		r.Status = domain.StatusSlotFound
		var se *domain.StatusError
		if _, err := r.Cancel(now); !errors.As(err, &se) || se.Status != domain.StatusSlotFound || se.Need != domain.StatusPending {
			t.Fatalf("err = %v, want a StatusError (slot_found, needs pending)", err)
		}
	})
}

func TestNewRequest(t *testing.T) {
	t.Parallel()
	today := day("2030-06-01")
	valid := domain.NewRequestInput{
		ApplicantID: uuid.NewString(), MissionCode: "fra", Centre: "paris", VisaCategory: "tourism",
		EarliestDate: "2030-07-01", LatestDate: "2030-07-10",
	}
	for _, tt := range []struct {
		name   string
		change func(*domain.NewRequestInput)
		field  string
	}{
		{"Valid", func(*domain.NewRequestInput) {}, ""},
		{"OneDayWindowIsValid", func(in *domain.NewRequestInput) { in.EarliestDate = "2030-07-10" }, ""},
		{"LatestTodayIsValid", func(in *domain.NewRequestInput) { in.EarliestDate, in.LatestDate = "2030-05-01", "2030-06-01" }, ""},
		{"EarliestAfterLatest", func(in *domain.NewRequestInput) { in.EarliestDate = "2030-07-11" }, "earliest_date"},
		{"LatestInThePast", func(in *domain.NewRequestInput) { in.EarliestDate, in.LatestDate = "2030-05-01", "2030-05-31" }, "latest_date"},
		{"MalformedEarliest", func(in *domain.NewRequestInput) { in.EarliestDate = "2030-7-1" }, "earliest_date"},
		{"ImpossibleLatest", func(in *domain.NewRequestInput) { in.LatestDate = "2030-02-30" }, "latest_date"},
		{"UpperCaseMission", func(in *domain.NewRequestInput) { in.MissionCode = "FRA" }, "mission_code"},
		{"OneLetterMission", func(in *domain.NewRequestInput) { in.MissionCode = "f" }, "mission_code"},
		{"LongMission", func(in *domain.NewRequestInput) { in.MissionCode = "abcdefghijklmnopq" }, "mission_code"},
		{"EmptyCentre", func(in *domain.NewRequestInput) { in.Centre = "  " }, "centre"},
		{"EmptyCategory", func(in *domain.NewRequestInput) { in.VisaCategory = "" }, "visa_category"},
		{"MalformedApplicant", func(in *domain.NewRequestInput) { in.ApplicantID = "42" }, "applicant_id"},
		{"NULInCentre", func(in *domain.NewRequestInput) { in.Centre = "par\x00is" }, "centre"},
		{"InvalidUTF8InCategory", func(in *domain.NewRequestInput) { in.VisaCategory = "tour\xffism" }, "visa_category"},
		{"LatestTenYearsAheadIsValid", func(in *domain.NewRequestInput) { in.LatestDate = "2040-06-01" }, ""},
		{"LatestMoreThanTenYearsAhead", func(in *domain.NewRequestInput) { in.LatestDate = "2040-06-02" }, "latest_date"},
		{"EarliestInYearOne", func(in *domain.NewRequestInput) { in.EarliestDate = "0001-01-01" }, "earliest_date"},
		{"LongCentre", func(in *domain.NewRequestInput) { in.Centre = strings.Repeat("é", domain.MaxTextLen+1) }, "centre"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := valid
			tt.change(&in)
			p := violations(func(p *apirule.FieldErrors) { domain.NewRequest(p, in, today) })
			if tt.field == "" {
				if len(p) != 0 {
					t.Fatalf("problems %v, want none", p)
				}
				return
			}
			if _, ok := p[tt.field]; !ok || len(p) != 1 {
				t.Fatalf("problems %v, want exactly %s", p, tt.field)
			}
		})
	}
}

// TestTextPostgresCannotStoreIsAViolation: every free-text field refuses
// NUL bytes and invalid UTF-8 as a field violation (Postgres would refuse
// them as an internal error).
func TestTextPostgresCannotStoreIsAViolation(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"a\x00b", "a\xffb"} {
		checks := map[string]func(*apirule.FieldErrors){
			"full_name": func(p *apirule.FieldErrors) {
				domain.ApplicantFields{FullName: &bad}.Apply(p, &domain.Applicant{}, day("2030-06-01"))
			},
			"email": func(p *apirule.FieldErrors) {
				e := "ada" + bad + "@example.com"
				domain.ApplicantFields{Email: &e}.Apply(p, &domain.Applicant{}, day("2030-06-01"))
			},
			"checker_id": func(p *apirule.FieldErrors) { domain.CheckClaimInput(p, bad, 1, 0) },
			"detail": func(p *apirule.FieldErrors) {
				domain.NewCheckResult(p, domain.CheckResultInput{ClaimID: uuid.NewString(), Outcome: domain.OutcomeFailed, Detail: bad}, day("2030-06-01"))
			},
			"slots[0].centre": func(p *apirule.FieldErrors) {
				domain.NewCheckResult(p, domain.CheckResultInput{ClaimID: uuid.NewString(), Outcome: domain.OutcomeSlotsFound,
					Slots: []domain.SlotInput{{Centre: bad, VisaCategory: "tourism", Date: "2030-07-01"}}}, day("2030-06-01"))
			},
		}
		for field, check := range checks {
			if got := violations(check); len(got) != 1 || got[field] == "" {
				t.Errorf("%q in %s: violations %v, want exactly %s", bad, field, got, field)
			}
		}
	}
}

// TestSingleLineFieldsRefuseControlCharacters: names, centres, categories
// and ids are one line each (a notification or a log line shows them as
// such); a report's detail is free text and may hold line breaks.
func TestSingleLineFieldsRefuseControlCharacters(t *testing.T) {
	t.Parallel()
	today := day("2030-06-01")
	request := func(centre, category string) func(*apirule.FieldErrors) {
		return func(p *apirule.FieldErrors) {
			domain.NewRequest(p, domain.NewRequestInput{ApplicantID: uuid.NewString(), MissionCode: "fra", Centre: centre,
				VisaCategory: category, EarliestDate: "2030-07-01", LatestDate: "2030-07-10"}, today)
		}
	}
	report := func(centre, category, detail string) func(*apirule.FieldErrors) {
		return func(p *apirule.FieldErrors) {
			domain.NewCheckResult(p, domain.CheckResultInput{ClaimID: uuid.NewString(), Outcome: domain.OutcomeSlotsFound, Detail: detail,
				Slots: []domain.SlotInput{{Centre: centre, VisaCategory: category, Date: "2030-07-01"}}}, today)
		}
	}
	for _, bad := range []string{"Paris\nBcc: x", "a\rb", "a\tb", "a\x1b[31mb", "a\x7fb", "a\u0085b", "a\u2028b", "a\u2029b"} {
		checks := map[string]func(*apirule.FieldErrors){
			"full_name": func(p *apirule.FieldErrors) {
				domain.ApplicantFields{FullName: &bad}.Apply(p, &domain.Applicant{}, today)
			},
			"centre":        request(bad, "tourism"),
			"visa_category": request("paris", bad),
			"checker_id":    func(p *apirule.FieldErrors) { domain.CheckClaimInput(p, bad, 1, 0) },
		}
		for field, check := range checks {
			if got := violations(check); len(got) != 1 || got[field] == "" {
				t.Errorf("%q in %s: violations %v, want exactly %s", bad, field, got, field)
			}
		}
	}
	// A report's slot is named after the claim's request (the Checker
	// copies its names), and a request stored before the rule may hold a
	// tab: its mission's reports must still be taken.
	if got := violations(report("Lyon\tPart-Dieu", "tou\u2028rism", "")); len(got) != 0 {
		t.Errorf("a report naming a request stored before the single-line rule refused: %v", got)
	}
	// Ends are trimmed, as before; free text keeps its lines.
	if got := violations(request(" paris\n", "\ttourism")); len(got) != 0 {
		t.Errorf("white space at the ends refused: %v", got)
	}
	if got := violations(report("paris", "tourism", "line 1\nline 2\ttabbed")); len(got) != 0 {
		t.Errorf("a multi-line detail refused: %v", got)
	}
}

// TestSlotLifecycleTransitions: which status each lifecycle change takes,
// and what it leaves.
func TestSlotLifecycleTransitions(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	all := []domain.Status{domain.StatusPending, domain.StatusSlotFound, domain.StatusBooked, domain.StatusCancelled, domain.StatusExpired}
	for _, tc := range []struct {
		name   string
		change func(*domain.Request, time.Time) (bool, error)
		from   domain.Status // the one status it changes
		to     domain.Status
		same   domain.Status // the one status it leaves alone without error
	}{
		{"ConfirmBooked", (*domain.Request).ConfirmBooked, domain.StatusSlotFound, domain.StatusBooked, domain.StatusBooked},
		{"ResumeWatching", (*domain.Request).ResumeWatching, domain.StatusSlotFound, domain.StatusPending, domain.StatusPending},
	} {
		for _, st := range all {
			r := pendingRequest()
			r.Status = st
			changed, err := tc.change(&r, now)
			switch st {
			case tc.from:
				if !changed || err != nil || r.Status != tc.to || !r.UpdatedAt.Equal(now) {
					t.Errorf("%s from %s: changed %v, err %v, status %s", tc.name, st, changed, err, r.Status)
				}
			case tc.same:
				if changed || err != nil || r.Status != st {
					t.Errorf("%s from %s: changed %v, err %v, status %s; want nothing changed", tc.name, st, changed, err, r.Status)
				}
			default:
				var se *domain.StatusError
				if changed || !errors.As(err, &se) || !errors.Is(err, domain.ErrWrongStatus) || se.Status != st || se.Need != domain.StatusSlotFound || r.Status != st {
					t.Errorf("%s from %s: changed %v, err %v; want a StatusError", tc.name, st, changed, err)
				}
			}
		}
	}
}

// TestResumeWatchingRemembersTheMissedSlots: the matched slots become
// missed ones, each once however often it is missed, and MatchSlots
// leaves them out while another slot still matches.
func TestResumeWatchingRemembersTheMissedSlots(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	nine := domain.Slot{Centre: "paris", VisaCategory: "tourism", Date: day("2030-07-03"), Time: "09:00"}
	eleven := nine
	eleven.Time = "11:00"
	r := pendingRequest()
	r.Status, r.MatchedSlots = domain.StatusSlotFound, []domain.Slot{nine}
	if _, err := r.ResumeWatching(now); err != nil {
		t.Fatal(err)
	}
	if len(r.MatchedSlots) != 0 || len(r.MissedSlots) != 1 {
		t.Fatalf("after resume: matched %v, missed %v", r.MatchedSlots, r.MissedSlots)
	}
	spelt := domain.Slot{Centre: " PARIS ", VisaCategory: "Tourism", Date: nine.Date, Time: "09:00"}
	if got := domain.MatchSlots(r, []domain.Slot{spelt, eleven}); len(got) != 1 || got[0].Time != "11:00" {
		t.Fatalf("MatchSlots = %v, want the 11:00 slot only", got)
	}
	r.Status, r.MatchedSlots = domain.StatusSlotFound, []domain.Slot{spelt, eleven}
	if _, err := r.ResumeWatching(now); err != nil {
		t.Fatal(err)
	}
	if len(r.MissedSlots) != 2 {
		t.Fatalf("missed %v, want 09:00 and 11:00 once each", r.MissedSlots)
	}
}

// slotsOn is n slots of paris/tourism on date, at 08:00, 08:01, ... listed
// latest first.
func slotsOn(date string, n int) []domain.Slot {
	out := make([]domain.Slot, n)
	for i := range out {
		m := n - 1 - i
		out[i] = domain.Slot{Centre: "paris", VisaCategory: "tourism", Date: day(date), Time: fmt.Sprintf("%02d:%02d", 8+m/60, m%60)}
	}
	return out
}

func TestSlotsOneRequestKeepsAreCapped(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)

	// More slots stay open than a request keeps: each resume announces
	// the next ones, and none twice.
	t.Run("SlotsThatStayOpenAreEachAnnouncedOnce", func(t *testing.T) {
		t.Parallel()
		open := slotsOn("2030-07-05", 45)
		res := domain.CheckResult{Outcome: domain.OutcomeSlotsFound, Slots: open}
		r := pendingRequest()
		announced := map[string]int{}
		for round := range 5 {
			_, matched := domain.ApplyCheck([]domain.Request{r}, res, now, time.UTC)
			if len(matched) == 0 {
				break
			}
			r = matched[0]
			for _, s := range r.MatchedSlots {
				if announced[s.Time]++; announced[s.Time] > 1 {
					t.Fatalf("round %d: slot %s announced again", round, s.Time)
				}
			}
			if _, err := r.ResumeWatching(now); err != nil {
				t.Fatal(err)
			}
		}
		if len(announced) != len(open) {
			t.Fatalf("%d of the %d open slots announced", len(announced), len(open))
		}
	})

	t.Run("ApplyCheckKeepsTheEarliestAndCountsThemAll", func(t *testing.T) {
		t.Parallel()
		slots := append(slotsOn("2030-07-09", 30), slotsOn("2030-07-02", 30)...)
		res := domain.CheckResult{Outcome: domain.OutcomeSlotsFound, Slots: slots}
		_, matched := domain.ApplyCheck([]domain.Request{pendingRequest()}, res, now, time.UTC)
		if len(matched) != 1 {
			t.Fatalf("matched %d requests", len(matched))
		}
		r := matched[0]
		if r.MatchedSlotCount != 60 || len(r.MatchedSlots) != domain.MaxSlotsPerRequest {
			t.Fatalf("count %d, kept %d; want 60 and %d", r.MatchedSlotCount, len(r.MatchedSlots), domain.MaxSlotsPerRequest)
		}
		for i, s := range r.MatchedSlots {
			if want := fmt.Sprintf("08:%02d", i); !s.Date.Equal(day("2030-07-02")) || s.Time != want {
				t.Fatalf("kept[%d] = %s %s, want 2030-07-02 %s", i, s.Date.Format(domain.DateLayout), s.Time, want)
			}
		}
	})

	t.Run("ResumeWatchingKeepsTheLastMissedAndDropsPassedOnes", func(t *testing.T) {
		t.Parallel()
		r := pendingRequest()
		r.Status, r.MatchedSlotCount = domain.StatusSlotFound, 25
		r.MatchedSlots = slotsOn("2030-07-05", domain.MaxSlotsPerRequest)
		// Missed before: 15 still to come, and 3 whose day is gone
		// everywhere (before 2030-05-31 in UTC, a day before today).
		r.MissedSlots = append(slotsOn("2030-05-30", 3), slotsOn("2030-07-03", 15)...)
		if _, err := r.ResumeWatching(now); err != nil {
			t.Fatal(err)
		}
		if r.MatchedSlots != nil || r.MatchedSlotCount != 0 || len(r.MissedSlots) != 15+domain.MaxSlotsPerRequest {
			t.Fatalf("matched %v (count %d), %d missed; want the 15 still to come and the 20 just matched", r.MatchedSlots, r.MatchedSlotCount, len(r.MissedSlots))
		}
		// An answer shows the slots just passed up.
		for _, s := range r.AnsweredMissedSlots() {
			if !s.Date.Equal(day("2030-07-05")) {
				t.Fatalf("an answer shows %s %s, want only the slots just matched", s.Date.Format(domain.DateLayout), s.Time)
			}
		}
		// The list is bounded, keeping the last passed up.
		r.Status, r.MatchedSlots = domain.StatusSlotFound, slotsOn("2030-07-07", 30)
		r.MissedSlots = slotsOn("2030-07-06", domain.MaxMissedSlots)
		if _, err := r.ResumeWatching(now); err != nil {
			t.Fatal(err)
		}
		if n := len(r.MissedSlots); n != domain.MaxMissedSlots || !r.MissedSlots[n-1].Date.Equal(day("2030-07-07")) {
			t.Fatalf("%d missed, the last %v; want %d ending with the slots just matched", n, r.MissedSlots[n-1], domain.MaxMissedSlots)
		}

		// Fewer just matched: older missed ones still to come stay, passed
		// ones go.
		r.Status, r.MatchedSlots = domain.StatusSlotFound, slotsOn("2030-07-06", 2)
		r.MissedSlots = append(slotsOn("2030-05-30", 3), slotsOn("2030-05-31", 1)...)
		if _, err := r.ResumeWatching(now); err != nil {
			t.Fatal(err)
		}
		if len(r.MissedSlots) != 3 || !r.MissedSlots[0].Date.Equal(day("2030-05-31")) {
			t.Fatalf("missed = %v, want 2030-05-31's (a zone may still be on it) and the two just matched", r.MissedSlots)
		}
	})
}

// BenchmarkMatchSlotsAgainstMissed: a report of apirule.MaxSlotsPerReport
// slots against a request that remembers MaxMissedSlots, as ApplyCheck
// runs it for each pending request of the claim under its row locks.
func BenchmarkMatchSlotsAgainstMissed(b *testing.B) {
	r := pendingRequest()
	r.EarliestDate, r.LatestDate = day("2030-07-01"), day("2030-12-31")
	var report []domain.Slot
	for d := range 100 {
		report = append(report, slotsOn(day("2030-07-01").AddDate(0, 0, d).Format(domain.DateLayout), 100)...)
	}
	r.MissedSlots = report[len(report)-domain.MaxMissedSlots:]
	b.ResetTimer()
	for b.Loop() {
		if got := domain.MatchSlots(r, report); len(got) != len(report)-domain.MaxMissedSlots {
			b.Fatalf("%d matched", len(got))
		}
	}
}

// TestApplyCheckOfTheLargestReportStaysSmall: the largest report (10,000
// slots, every one in the window) over the largest claim (1,000 requests
// asking for them) keeps the earliest 20 of each request and counts them
// all, in memory that stays small. Each request used to collect every slot
// that matched, sort them, and keep 20 of them in the collected array:
// about 0.7 GB held under the claim's row locks, and about 10 s of CPU,
// past the Checker's 10 s call timeout (the report rolled back, was sent
// again, and the claim lapsed), in a pod limited to 256 MiB. Not parallel:
// it reads the heap's counters.
func TestApplyCheckOfTheLargestReportStaysSmall(t *testing.T) {
	var slots []domain.Slot
	for d := range apirule.MaxSlotsPerReport / 100 {
		slots = append(slots, slotsOn(day("2030-07-01").AddDate(0, 0, d).Format(domain.DateLayout), 100)...)
	}
	reqs := make([]domain.Request, apirule.MaxRequestsPerClaim)
	for i := range reqs {
		reqs[i] = pendingRequest()
		reqs[i].EarliestDate, reqs[i].LatestDate = day("2030-07-01"), day("2030-12-31")
	}
	res := domain.CheckResult{Outcome: domain.OutcomeSlotsFound, Slots: slots}
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	changed, matched := domain.ApplyCheck(reqs, res, now, time.UTC)
	runtime.GC()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(changed)

	if len(matched) != len(reqs) {
		t.Fatalf("%d of %d requests matched", len(matched), len(reqs))
	}
	for _, r := range matched {
		if r.MatchedSlotCount != len(slots) || len(r.MatchedSlots) != domain.MaxSlotsPerRequest ||
			!r.MatchedSlots[0].Date.Equal(day("2030-07-01")) || r.MatchedSlots[0].Time != "08:00" ||
			r.MatchedSlots[domain.MaxSlotsPerRequest-1].Time != "08:19" {
			t.Fatalf("count %d, kept %d from %v; want %d, the earliest %d from 2030-07-01 08:00",
				r.MatchedSlotCount, len(r.MatchedSlots), r.MatchedSlots[0], len(slots), domain.MaxSlotsPerRequest)
		}
	}
	// What is kept is 1,000 × 20 slots (about 1.5 MB).
	t.Logf("allocated %d MiB, held %d MiB", allocated>>20, held>>20)
	if held > 16<<20 || allocated > 64<<20 {
		t.Fatalf("ApplyCheck allocated %d MiB and holds %d MiB; want at most 64 and 16", allocated>>20, held>>20)
	}
}

// TestCheckedSlots: a check keeps the earliest MaxSlotsPerRequest of the
// slots its requests matched, a slot two requests matched once.
func TestCheckedSlots(t *testing.T) {
	t.Parallel()
	a, b := pendingRequest(), pendingRequest()
	b.Centre = " PARIS"
	var reqs []domain.Request
	for i := range 25 {
		s := slot("paris", "tourism", fmt.Sprintf("2030-07-%02d", 1+i%10))
		s.Time = fmt.Sprintf("09:%02d", i)
		a.MatchedSlots = append(a.MatchedSlots, s)
	}
	b.MatchedSlots = []domain.Slot{{Centre: "Paris ", VisaCategory: "Tourism", Date: day("2030-07-01"), Time: "09:00"}} // a's first, spelt otherwise
	reqs = append(reqs, b, a)
	got := domain.CheckedSlots(reqs)
	if len(got) != domain.MaxSlotsPerRequest {
		t.Fatalf("%d slots, want %d", len(got), domain.MaxSlotsPerRequest)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Date.Before(got[i-1].Date) || got[i].Date.Equal(got[i-1].Date) && got[i].Time <= got[i-1].Time {
			t.Fatalf("not each once by date and time: %v", got)
		}
	}
	if last := got[len(got)-1]; !last.Date.Equal(day("2030-07-08")) || last.Time != "09:07" {
		t.Errorf("the last kept is %v, want July 8 09:07 (July 1-5 have 3 each, July 6-7 2: 19 before it)", last)
	}
	if domain.CheckedSlots(nil) != nil {
		t.Error("no matched request: want no slot")
	}
}

// TestCheckedSlotsOfAReportListingSlotsTwice: a report that lists each slot
// twice (a portal that shows a slot in two lists; nothing upstream drops
// duplicates) with 30 matching slots: the check keeps the earliest 20 of
// them, each once, as CheckedSlots says and as 00012 cuts the rows before
// it (DISTINCT, then LIMIT 20). CheckedSlots dedups only what each request
// kept (its earliest 20 entries, duplicates counted), so it keeps 10.
func TestCheckedSlotsOfAReportListingSlotsTwice(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	var slots []domain.Slot
	for i := range 30 {
		s := slot("paris", "tourism", fmt.Sprintf("2030-07-%02d", 1+i%10))
		s.Time = fmt.Sprintf("09:%02d", i)
		slots = append(slots, s, s)
	}
	_, matched := domain.ApplyCheck([]domain.Request{pendingRequest()},
		domain.CheckResult{Outcome: domain.OutcomeSlotsFound, Slots: slots}, now, time.UTC)
	if len(matched) != 1 {
		t.Fatalf("%d requests matched, want 1", len(matched))
	}
	if got := domain.CheckedSlots(matched); len(got) != domain.MaxSlotsPerRequest {
		t.Fatalf("the check keeps %d slots of the 30 distinct ones that matched, want the earliest %d: %v", len(got), domain.MaxSlotsPerRequest, got)
	}
}

// TestMatchedSlotCountOfAReportListingSlotsTwice: a report that lists each
// of 5 slots twice matches 5 slots. ApplyCheck keeps each once in
// MatchedSlots (7ae315b) but MatchedSlotCount still counts every entry
// (10), so every reader that shows "count - len(MatchedSlots)" more slots
// (slotctl requests list's "and N more", the Notifier's "and N more, on the
// portal", the webhook's slot_count) announces 5 slots that do not exist.
// Before 7ae315b the list held the duplicates too, and count and list agreed.
func TestMatchedSlotCountOfAReportListingSlotsTwice(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	var slots []domain.Slot
	for i := range 5 {
		s := slot("paris", "tourism", fmt.Sprintf("2030-07-%02d", 1+i))
		s.Time = "09:00"
		slots = append(slots, s, s)
	}
	_, matched := domain.ApplyCheck([]domain.Request{pendingRequest()},
		domain.CheckResult{Outcome: domain.OutcomeSlotsFound, Slots: slots}, now, time.UTC)
	if len(matched) != 1 {
		t.Fatalf("%d requests matched, want 1", len(matched))
	}
	r := matched[0]
	if more := r.MatchedSlotCount - len(r.MatchedSlots); more != 0 {
		t.Fatalf("MatchedSlotCount %d with %d MatchedSlots: readers announce %d more slots, but the report held only %d distinct",
			r.MatchedSlotCount, len(r.MatchedSlots), more, len(r.MatchedSlots))
	}
}
