package sim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The ais family: one site per mission under /{mission}/niv/ (FAMILIES.md).
// A sign-in form with a CSRF token in a meta tag and a policy checkbox; a
// group page with one applicant group per visa category, each with a
// "Continue" link to its schedule; a schedule page whose script reads the
// free days and times from two JSON endpoints, which answer 404 unless
// asked with X-Requested-With: XMLHttpRequest.
func (s *Sim) aisRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		ms := s.missions()
		if len(ms) == 0 {
			s.render(w, http.StatusNotFound, "ais/wall", familyPage{Title: "Page not found", Wall: notFoundWall})
			return
		}
		http.Redirect(w, r, "/"+ms[0].Code+"/niv/users/sign_in", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{mission}/niv/users/sign_in", func(w http.ResponseWriter, r *http.Request) {
		if _, _, done := s.enter(w, r, LoginArea, asPage); done {
			return
		}
		m, ok := s.mission(r.PathValue("mission"))
		if !ok {
			s.render(w, http.StatusNotFound, "ais/wall", familyPage{Title: "Page not found", Wall: notFoundWall})
			return
		}
		s.aisSignIn(w, r, m, http.StatusOK, "")
	})
	mux.HandleFunc("POST /{mission}/niv/users/sign_in", s.aisSignInPost)
	mux.HandleFunc("GET /{mission}/niv/users/sign_out", func(w http.ResponseWriter, r *http.Request) {
		s.endSessionCookie(w, r)
		http.Redirect(w, r, "/"+r.PathValue("mission")+"/niv/users/sign_in", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{mission}/niv/groups/{group}", s.aisGroup)
	mux.HandleFunc("GET /{mission}/niv/schedule/{schedule}/appointment", s.aisAppointment)
	mux.HandleFunc("GET /{mission}/niv/schedule/{schedule}/appointment/days/{facility}", s.aisDays)
	mux.HandleFunc("GET /{mission}/niv/schedule/{schedule}/appointment/times/{facility}", s.aisTimes)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		s.render(w, http.StatusNotFound, "ais/wall", familyPage{Title: "Page not found", Wall: notFoundWall})
	})
}

func aisSignInPath(m Mission) string { return "/" + m.Code + "/niv/users/sign_in" }

func (s *Sim) aisSignIn(w http.ResponseWriter, _ *http.Request, m Mission, status int, loginError string) {
	d := familyPage{Title: "Sign in", Mission: m, FormToken: s.formToken(w, aisSignInPath(m)), Error: loginError}
	s.render(w, status, "ais/sign_in", d)
}

func (s *Sim) aisSignInPost(w http.ResponseWriter, r *http.Request) {
	m, found := s.mission(r.PathValue("mission"))
	if !found {
		s.render(w, http.StatusNotFound, "ais/wall", familyPage{Title: "Page not found", Wall: notFoundWall})
		return
	}
	c, err := r.Cookie(formCookie)
	tokenOK := err == nil && c.Value != "" && c.Value == r.PostFormValue("authenticity_token")
	policy := r.PostFormValue("policy_confirmed") == "1"
	acct, res, done := s.checkLogin(w, r, r.PostFormValue("user[email]"), r.PostFormValue("user[password]"), tokenOK && policy, asPage)
	switch {
	case done:
	case res == LoginBadForm && !tokenOK:
		s.render(w, http.StatusUnprocessableEntity, "ais/wall", familyPage{Title: "The change you wanted was rejected", Wall: wallPage{
			Heading: "The change you wanted was rejected", Text: "Maybe you tried to change something you did not have access to. Reload the page and try again."}})
	case res == LoginBadForm:
		s.aisSignIn(w, r, m, http.StatusOK, "You must accept the privacy policy and the terms of use before you continue.")
	case res != LoginOK:
		s.aisSignIn(w, r, m, http.StatusOK, "Invalid email or password.")
	default:
		s.startSession(w, acct.Email)
		http.Redirect(w, r, "/"+m.Code+"/niv/groups/"+strconv.Itoa(stableID(acct.Email)), http.StatusSeeOther)
	}
}

// aisSchedule is one applicant group's schedule: an account's visa
// category in a mission.
type aisSchedule struct {
	ID       int
	Category string
}

func aisSchedules(email string, m Mission) []aisSchedule {
	out := make([]aisSchedule, len(m.VisaCategories))
	for i, c := range m.VisaCategories {
		out[i] = aisSchedule{ID: stableID(email, m.Code, c), Category: c}
	}
	return out
}

func (s *Sim) aisGroup(w http.ResponseWriter, r *http.Request) {
	email, ok := s.enterPage(w, r, Dashboard, "/"+r.PathValue("mission")+"/niv/users/sign_in")
	if !ok {
		return
	}
	m, found := s.mission(r.PathValue("mission"))
	if !found || r.PathValue("group") != strconv.Itoa(stableID(email)) {
		s.render(w, http.StatusNotFound, "ais/wall", familyPage{Title: "Page not found", Email: email, Wall: notFoundWall})
		return
	}
	s.render(w, http.StatusOK, "ais/groups", familyPage{Title: "Groups", Email: email, Mission: m, Data: aisSchedules(email, m)})
}

// aisScheduleOf finds the schedule of the path among the signed-in
// account's.
func aisScheduleOf(r *http.Request, email string, m Mission) (aisSchedule, bool) {
	i := slices.IndexFunc(aisSchedules(email, m), func(sc aisSchedule) bool { return strconv.Itoa(sc.ID) == r.PathValue("schedule") })
	if i < 0 {
		return aisSchedule{}, false
	}
	return aisSchedules(email, m)[i], true
}

func (s *Sim) aisAppointment(w http.ResponseWriter, r *http.Request) {
	email, ok := s.enterPage(w, r, SlotPage, "/"+r.PathValue("mission")+"/niv/users/sign_in")
	if !ok {
		return
	}
	m, found := s.mission(r.PathValue("mission"))
	sc, scheduled := aisScheduleOf(r, email, m)
	if !found || !scheduled {
		s.render(w, http.StatusNotFound, "ais/wall", familyPage{Title: "Page not found", Email: email, Wall: notFoundWall})
		return
	}
	var facilities []option
	for _, c := range m.Centres {
		facilities = append(facilities, option{strconv.Itoa(facilityID(m, c)), c})
	}
	s.render(w, http.StatusOK, "ais/appointment", familyPage{Title: "Schedule appointments", Email: email, Mission: m,
		Data: map[string]any{"Schedule": sc, "Facilities": facilities}})
}

// aisDay is one element of the days endpoint's answer.
type aisDay struct {
	Date        string `json:"date"`
	BusinessDay bool   `json:"business_day"`
}

// aisTimesAnswer is the times endpoint's answer.
type aisTimesAnswer struct {
	AvailableTimes []string `json:"available_times"`
	BusinessTimes  []string `json:"business_times"`
}

// aisJSON is the common start of the two JSON endpoints: it answers (and
// returns ok false) unless the request is a signed-in script's, for a
// schedule and facility of its account.
func (s *Sim) aisJSON(w http.ResponseWriter, r *http.Request) (slots []Slot, ok bool) {
	if r.Header.Get("X-Requested-With") != "XMLHttpRequest" {
		s.render(w, http.StatusNotFound, "ais/wall", familyPage{Title: "Page not found", Wall: notFoundWall})
		return nil, false
	}
	email, signedIn, done := s.enter(w, r, SlotAPI, asJSON)
	if done {
		return nil, false
	}
	if !signedIn {
		writeJSON(w, http.StatusUnauthorized, apiError{"You need to sign in before you continue."})
		return nil, false
	}
	m, _ := s.mission(r.PathValue("mission"))
	sc, scheduled := aisScheduleOf(r, email, m)
	facility, isJSON := strings.CutSuffix(r.PathValue("facility"), ".json")
	i := slices.IndexFunc(m.Centres, func(c string) bool { return strconv.Itoa(facilityID(m, c)) == facility })
	if !scheduled || !isJSON || i < 0 {
		writeJSON(w, http.StatusNotFound, apiError{"Not found"})
		return nil, false
	}
	return s.offered(m, m.Centres[i], sc.Category), true
}

func (s *Sim) aisDays(w http.ResponseWriter, r *http.Request) {
	slots, ok := s.aisJSON(w, r)
	if !ok {
		return
	}
	days := []aisDay{}
	for _, sl := range slots {
		if len(days) == 0 || days[len(days)-1].Date != sl.Date {
			days = append(days, aisDay{Date: sl.Date, BusinessDay: true})
		}
	}
	writeJSON(w, http.StatusOK, days)
}

func (s *Sim) aisTimes(w http.ResponseWriter, r *http.Request) {
	slots, ok := s.aisJSON(w, r)
	if !ok {
		return
	}
	date := r.URL.Query().Get("date")
	ans := aisTimesAnswer{AvailableTimes: []string{}, BusinessTimes: []string{}}
	if _, err := time.Parse(time.DateOnly, date); err == nil {
		for _, sl := range slots {
			if sl.Date == date && sl.Time != "" {
				ans.AvailableTimes = append(ans.AvailableTimes, sl.Time)
			}
		}
		ans.BusinessTimes = ans.AvailableTimes
	}
	writeJSON(w, http.StatusOK, ans)
}
