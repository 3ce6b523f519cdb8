package sim

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The tls family: server-rendered pages (FAMILIES.md). A home page links to
// the login form; after it, a group page offers each mission's centres and
// visa types; its form opens a calendar of one month, whose "Next month"
// link pages on, and whose free days hold one button per time.
func (s *Sim) tlsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		email, _, done := s.enter(w, r, LoginArea, asPage)
		if done {
			return
		}
		s.render(w, http.StatusOK, "tls/home", familyPage{Title: "Welcome", Email: email})
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		if _, _, done := s.enter(w, r, LoginArea, asPage); done {
			return
		}
		s.tlsLoginForm(w, http.StatusOK, "", r.URL.Query().Get("error") == "session_expired")
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(formCookie)
		formOK := err == nil && c.Value != "" && c.Value == r.PostFormValue("csrf_token")
		acct, res, done := s.checkLogin(w, r, r.PostFormValue("username"), r.PostFormValue("password"), formOK, asPage)
		switch {
		case done:
		case res == LoginBadForm:
			s.tlsLoginForm(w, http.StatusBadRequest, "Your login form expired. Please try again.", false)
		case res != LoginOK:
			s.tlsLoginForm(w, http.StatusOK, "Invalid username or password.", false)
		default:
			s.startSession(w, acct.Email)
			http.Redirect(w, r, "/groups", http.StatusSeeOther)
		}
	})
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		s.endSessionCookie(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /groups", s.tlsGroups)
	mux.HandleFunc("GET /appointment/{mission}", s.tlsCalendar)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		s.render(w, http.StatusNotFound, "tls/wall", familyPage{Title: "Page not found", Wall: notFoundWall})
	})
}

// notFoundWall is the page of an unknown URL, mission or centre in the
// vfs, tls and ais families.
var notFoundWall = wallPage{Status: http.StatusNotFound, Code: "not_found", Heading: "Page not found",
	Text: "The page you are looking for does not exist."}

func (s *Sim) tlsLoginForm(w http.ResponseWriter, status int, loginError string, expired bool) {
	d := familyPage{Title: "Log in", FormToken: s.formToken(w, "/login"), Error: loginError}
	if expired {
		d.Notice = "Your session has expired, please log in again."
	}
	s.render(w, status, "tls/login", d)
}

// formToken sets the login form's token cookie for path and returns it.
func (s *Sim) formToken(w http.ResponseWriter, path string) string {
	token := randomToken()
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: token, Path: path, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return token
}

type tlsGroup struct {
	Mission Mission
	Centres []option
}

type option struct{ Value, Label string }

func (s *Sim) tlsGroups(w http.ResponseWriter, r *http.Request) {
	email, ok := s.enterPage(w, r, Dashboard, "/login")
	if !ok {
		return
	}
	var groups []tlsGroup
	for _, m := range s.missions() {
		g := tlsGroup{Mission: m}
		for _, c := range m.Centres {
			g.Centres = append(g.Centres, option{centreCode(m, c), c})
		}
		groups = append(groups, g)
	}
	s.render(w, http.StatusOK, "tls/groups", familyPage{Title: "My application", Email: email,
		Data: map[string]any{"Groups": groups, "Reference": stableID(email)}})
}

// tlsMonths is how far the calendar pages on: this month and the next 11.
const tlsMonths = 12

type tlsDay struct {
	Day   int
	Class string // "available", "full", "past", or "" outside the month
	Slots []Slot
}

type tlsCalendar struct {
	Centre, Category string
	Month            string // "March 2027"
	Prev, Next       string // URLs, empty at either end
	Weeks            [][]tlsDay
	None             bool // no free day in any month: the "no appointment" popup
}

// tlsCalendar is the month page. Its first month (no month parameter) is
// the slot page area; the months reached by "Next month" are the slot API
// area, since they are what a checker fetches again and again.
func (s *Sim) tlsCalendar(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	area := SlotPage
	if q.Has("month") {
		area = SlotAPI
	}
	email, ok := s.enterPage(w, r, area, "/login?error=session_expired")
	if !ok {
		return
	}
	m, found := s.mission(r.PathValue("mission"))
	centre, centreOK := centreByCode(m, q.Get("location"))
	category, categoryOK := "", false
	for _, c := range m.VisaCategories {
		if strings.EqualFold(c, q.Get("visa_type")) {
			category, categoryOK = c, true
		}
	}
	if !found || !centreOK || !categoryOK {
		s.render(w, http.StatusNotFound, "tls/wall", familyPage{Title: "Page not found", Email: email, Wall: notFoundWall})
		return
	}

	today, _ := time.Parse(time.DateOnly, s.today())
	first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
	month := first
	if t, err := time.Parse("2006-01", q.Get("month")); err == nil && !t.Before(first) && t.Before(first.AddDate(0, tlsMonths, 0)) {
		month = t
	}
	offered := s.offered(m, centre, category)
	byDate := map[string][]Slot{}
	for _, sl := range offered {
		byDate[sl.Date] = append(byDate[sl.Date], sl)
	}
	link := func(t time.Time) string {
		v := url.Values{"location": {q.Get("location")}, "visa_type": {q.Get("visa_type")}, "month": {t.Format("2006-01")}}
		return "/appointment/" + url.PathEscape(m.Code) + "?" + v.Encode()
	}
	cal := tlsCalendar{Centre: centre, Category: category, Month: month.Format("January 2006"), None: len(offered) == 0}
	if month.After(first) {
		cal.Prev = link(month.AddDate(0, -1, 0))
	}
	if next := month.AddDate(0, 1, 0); next.Before(first.AddDate(0, tlsMonths, 0)) {
		cal.Next = link(next)
	}
	var week []tlsDay
	for range (int(month.Weekday()) + 6) % 7 { // weeks start on Monday
		week = append(week, tlsDay{})
	}
	for d := month; d.Month() == month.Month(); d = d.AddDate(0, 0, 1) {
		day := tlsDay{Day: d.Day(), Class: "full"}
		switch date := d.Format(time.DateOnly); {
		case d.Before(today):
			day.Class = "past"
		case len(byDate[date]) > 0:
			day.Class, day.Slots = "available", byDate[date]
		}
		week = append(week, day)
		if len(week) == 7 {
			cal.Weeks = append(cal.Weeks, week)
			week = nil
		}
	}
	if len(week) > 0 {
		for len(week) < 7 {
			week = append(week, tlsDay{})
		}
		cal.Weeks = append(cal.Weeks, week)
	}
	s.render(w, http.StatusOK, "tls/calendar", familyPage{Title: "Book your appointment", Email: email, Mission: m, Data: cal})
}
