package sim

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// The vfs family: one single-page app per mission under /{mission}/
// (FAMILIES.md). Every page URL serves the same shell; its script draws
// the sign-in form, the dashboard and the booking form, and talks to a JSON
// API under /api/{mission}/. The booking form's three dropdowns (centre,
// category, sub-category) each fill from the API after the previous choice,
// and the last choice fetches the earliest free date, shown as a message.
func (s *Sim) vfsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		ms := s.missions()
		if len(ms) == 0 {
			s.render(w, http.StatusNotFound, "vfs/wall", familyPage{Title: "Page not found", Wall: notFoundWall})
			return
		}
		http.Redirect(w, r, "/"+ms[0].Code+"/login", http.StatusSeeOther)
	})
	for view, area := range map[string]Area{"login": LoginArea, "dashboard": Dashboard, "application-detail": SlotPage, "logout": Everywhere} {
		mux.HandleFunc("GET /{mission}/"+view, func(w http.ResponseWriter, r *http.Request) { s.vfsShell(w, r, area) })
	}
	mux.HandleFunc("POST /api/{mission}/login", s.vfsLogin)
	mux.HandleFunc("POST /api/logout", func(w http.ResponseWriter, r *http.Request) {
		s.endSessionCookie(w, r)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/{mission}/dashboard", func(w http.ResponseWriter, r *http.Request) {
		email, m, ok := s.vfsAPI(w, r, Dashboard)
		if ok {
			writeJSON(w, http.StatusOK, map[string]string{"email": email, "missionName": m.Name})
		}
	})
	mux.HandleFunc("GET /api/{mission}/centres", func(w http.ResponseWriter, r *http.Request) {
		if _, m, ok := s.vfsAPI(w, r, SlotPage); ok {
			out := []vfsOption{}
			for _, c := range m.Centres {
				out = append(out, vfsOption{centreCode(m, c), c})
			}
			writeJSON(w, http.StatusOK, out)
		}
	})
	mux.HandleFunc("GET /api/{mission}/categories", func(w http.ResponseWriter, r *http.Request) {
		if _, m, ok := s.vfsAPI(w, r, SlotAPI); ok {
			if _, known := centreByCode(m, r.URL.Query().Get("centre")); !known {
				writeJSON(w, http.StatusBadRequest, familyAPIError{apiErrorBody{Code: "invalid_centre", Description: "Unknown centre."}})
				return
			}
			out := []vfsOption{}
			for _, c := range m.VisaCategories {
				out = append(out, vfsOption{c, c})
			}
			writeJSON(w, http.StatusOK, out)
		}
	})
	mux.HandleFunc("GET /api/{mission}/subcategories", func(w http.ResponseWriter, r *http.Request) {
		if _, m, ok := s.vfsAPI(w, r, SlotAPI); ok {
			q := r.URL.Query()
			_, known := centreByCode(m, q.Get("centre"))
			if !known || !slices.Contains(m.VisaCategories, q.Get("category")) {
				writeJSON(w, http.StatusBadRequest, familyAPIError{apiErrorBody{Code: "invalid_category", Description: "Unknown centre or category."}})
				return
			}
			writeJSON(w, http.StatusOK, vfsSubcategories(q.Get("category")))
		}
	})
	mux.HandleFunc("POST /api/{mission}/earliest", s.vfsEarliest)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		s.render(w, http.StatusNotFound, "vfs/wall", familyPage{Title: "Page not found", Wall: notFoundWall})
	})
}

// xsrfCookie is the vfs app's double-submit token: the shell sets it, the
// script sends it back in the X-XSRF-TOKEN header.
const xsrfCookie = "XSRF-TOKEN"

type vfsOption struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// vfsSubcategories are the same two for every category; the sub-category
// does not change which slots are free.
func vfsSubcategories(category string) []vfsOption {
	return []vfsOption{{category + "-std", "Standard"}, {category + "-prm", "Premium Lounge"}}
}

func (s *Sim) vfsShell(w http.ResponseWriter, r *http.Request, area Area) {
	email, _, done := s.enter(w, r, area, asPage)
	if done {
		return
	}
	m, ok := s.mission(r.PathValue("mission"))
	if !ok {
		s.render(w, http.StatusNotFound, "vfs/wall", familyPage{Title: "Page not found", Wall: notFoundWall})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: xsrfCookie, Value: randomToken(), Path: "/", SameSite: http.SameSiteLaxMode})
	s.render(w, http.StatusOK, "vfs/app", familyPage{Title: "Visa Application", Email: email, Mission: m})
}

// vfsAPI is the common start of the API endpoints after login: the
// behaviour of area, the session and the mission.
func (s *Sim) vfsAPI(w http.ResponseWriter, r *http.Request, area Area) (string, Mission, bool) {
	email, ok, done := s.enter(w, r, area, asJSON)
	if done {
		return "", Mission{}, false
	}
	if !ok {
		writeJSON(w, http.StatusUnauthorized, familyAPIError{apiErrorBody{Code: "session_expired", Title: "Session expired",
			Description: "Your session has expired or is not valid. Please sign in again."}})
		return "", Mission{}, false
	}
	m, found := s.mission(r.PathValue("mission"))
	if !found {
		writeJSON(w, http.StatusNotFound, familyAPIError{apiErrorBody{Code: "not_found", Description: "Unknown mission."}})
		return "", Mission{}, false
	}
	return email, m, true
}

func (s *Sim) vfsLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Consent  bool   `json:"consent"`
	}
	c, err := r.Cookie(xsrfCookie)
	tokenOK := err == nil && c.Value != "" && c.Value == r.Header.Get("X-XSRF-TOKEN")
	if err := strictUnmarshal(readBody(r), &req); err != nil {
		tokenOK = false
	}
	acct, res, done := s.checkLogin(w, r, req.Username, req.Password, tokenOK && req.Consent, asJSON)
	switch {
	case done:
	case res == LoginBadForm && !tokenOK:
		writeJSON(w, http.StatusForbidden, familyAPIError{apiErrorBody{Code: "invalid_request", Title: "Session expired",
			Description: "Your session has expired or is not valid. Please reload the page."}})
	case res == LoginBadForm:
		writeJSON(w, http.StatusBadRequest, familyAPIError{apiErrorBody{Code: "consent_required", Description: "Please accept the terms and conditions."}})
	case res != LoginOK:
		writeJSON(w, http.StatusUnauthorized, familyAPIError{apiErrorBody{Code: "invalid_credentials", Description: "Your email or password is incorrect."}})
	default:
		s.startSession(w, acct.Email)
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	}
}

// vfsEarliestAnswer is the earliest-date answer: a date as MM/DD/YYYY
// HH:MM:SS and an error of null when a slot is free; a null date, an empty
// list and error 1035 when none is.
type vfsEarliestAnswer struct {
	EarliestDate      *string           `json:"earliestDate"`
	EarliestSlotLists []vfsApplicantDay `json:"earliestSlotLists"`
	Error             *vfsNoSlot        `json:"error"`
}

type vfsApplicantDay struct {
	Applicant string `json:"applicant"`
	Date      string `json:"date"`
}

type vfsNoSlot struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
}

func (s *Sim) vfsEarliest(w http.ResponseWriter, r *http.Request) {
	_, m, ok := s.vfsAPI(w, r, SlotAPI)
	if !ok {
		return
	}
	var req struct {
		Centre      string `json:"centre"`
		Category    string `json:"category"`
		Subcategory string `json:"subcategory"`
	}
	centre, known := "", false
	if err := strictUnmarshal(readBody(r), &req); err == nil {
		centre, known = centreByCode(m, req.Centre)
	}
	if !known || !slices.Contains(m.VisaCategories, req.Category) || !strings.HasPrefix(req.Subcategory, req.Category+"-") {
		writeJSON(w, http.StatusBadRequest, familyAPIError{apiErrorBody{Code: "invalid_request", Description: "Choose a centre, a category and a sub-category."}})
		return
	}
	ans := vfsEarliestAnswer{EarliestSlotLists: []vfsApplicantDay{}}
	if offered := s.offered(m, centre, req.Category); len(offered) > 0 {
		d, _ := time.Parse(time.DateOnly, offered[0].Date)
		date := d.Format("01/02/2006 15:04:05")
		ans.EarliestDate = &date
		ans.EarliestSlotLists = append(ans.EarliestSlotLists, vfsApplicantDay{Applicant: "1", Date: date})
	} else {
		ans.Error = &vfsNoSlot{Code: 1035, Description: "No slots available"}
	}
	writeJSON(w, http.StatusOK, ans)
}
