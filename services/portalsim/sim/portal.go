package sim

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	sessionCookie = "psim_session"
	// formCookie carries the login form's token (double-submit): a client
	// that posts the form without loading the page first is refused, as
	// real portals do.
	formCookie = "psim_form"
)

func (s *Sim) routes() {
	s.mux.HandleFunc("GET /{$}", s.handleRoot)
	s.mux.HandleFunc("GET /login", s.handleLoginPage)
	s.mux.HandleFunc("POST /login", s.handleLogin)
	s.mux.HandleFunc("GET /logout", s.handleLogout)
	s.mux.HandleFunc("POST /logout", s.handleLogout)
	s.mux.HandleFunc("GET /dashboard", s.handleDashboard)
	s.mux.HandleFunc("GET /missions/{code}/slots", s.handleSlotPage)
	s.mux.HandleFunc("GET /api/missions/{code}/slots", s.handleSlotAPI)
	s.mux.Handle("GET /static/", cacheFor(time.Hour, http.FileServerFS(webFS)))
	s.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s.adminRoutes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.renderMessage(w, http.StatusNotFound, notFoundPage)
	})
}

// measure counts the time spent on portal requests, so the benchmark can
// tell the portal's own time from the checker's.
func (s *Sim) measure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/admin/") {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		next.ServeHTTP(w, r)
		s.busyNS.Add(int64(time.Since(start)))
		s.requests.Add(1)
	})
}

func (s *Sim) handleRoot(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.sessionEmail(r); ok {
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Sim) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if s.misbehave(w, r, "", LoginArea) {
		return
	}
	s.renderLogin(w, http.StatusOK, "", r.URL.Query().Has("bye"))
}

func (s *Sim) renderLogin(w http.ResponseWriter, status int, loginError string, loggedOut bool) {
	token := randomToken()
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: token, Path: "/login", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	s.render(w, status, "login", pageData{
		Title: "Sign in", Page: "login", FormToken: token, Error: loginError, LoggedOut: loggedOut,
	})
}

func (s *Sim) handleLogin(w http.ResponseWriter, r *http.Request) {
	email := strings.TrimSpace(r.PostFormValue("email"))
	password := r.PostFormValue("password")
	attempt := LoginAttempt{Email: email, At: s.now().UTC()}
	if prior, ok := s.sessionEmail(r); ok {
		attempt.PriorSession = prior
	}
	record := func(res LoginResult) {
		attempt.Result = res
		s.recordLogin(attempt)
	}

	if c, err := r.Cookie(formCookie); err != nil || c.Value == "" || c.Value != r.PostFormValue("form_token") {
		record(LoginBadForm)
		s.renderMessage(w, http.StatusBadRequest, formExpiredPage)
		return
	}
	b := s.behaviourFor(email, LoginArea)
	if !s.wait(r, b.Delay()) {
		record(LoginAborted)
		return
	}
	if b.Kind != Normal && b.Kind != RejectPassword {
		record(loginResultOf[b.Kind])
		s.renderBehaviour(w, b.Kind)
		return
	}

	acct, known := s.account(email)
	switch {
	case !known:
		record(LoginUnknownAccount)
		s.renderLogin(w, http.StatusOK, "Invalid email or password.", false)
	case b.Kind == RejectPassword:
		record(LoginRejected)
		s.renderLogin(w, http.StatusOK, "Invalid email or password.", false)
	case acct.Password != password:
		record(LoginBadPassword)
		s.renderLogin(w, http.StatusOK, "Invalid email or password.", false)
	default:
		record(LoginOK)
		id := s.newSession(acct.Email)
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
	}
}

var loginResultOf = map[Kind]LoginResult{
	Blocked:         LoginBlocked,
	TooManyRequests: LoginTooManyRequests,
	Captcha:         LoginCaptcha,
	ServerError:     LoginServerError,
	Maintenance:     LoginMaintenance,
	Unknown:         LoginUnknownPage,
}

func (s *Sim) handleLogout(w http.ResponseWriter, r *http.Request) {
	s.endSession(r)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/login?bye=1", http.StatusSeeOther)
}

func (s *Sim) handleDashboard(w http.ResponseWriter, r *http.Request) {
	email, ok := s.sessionEmail(r)
	if s.misbehave(w, r, email, Dashboard) {
		return
	}
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "dashboard", pageData{Title: "Dashboard", Page: "dashboard", Email: email, Missions: s.missions()})
}

func (s *Sim) handleSlotPage(w http.ResponseWriter, r *http.Request) {
	email, ok := s.sessionEmail(r)
	if s.misbehave(w, r, email, SlotPage) {
		return
	}
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	m, found := s.mission(r.PathValue("code"))
	if !found {
		s.renderMessage(w, http.StatusNotFound, notFoundPage)
		return
	}
	s.render(w, http.StatusOK, "slots", pageData{Title: "Book an appointment", Page: "slots", Email: email, Mission: m})
}

// slotsResponse is the JSON the slot page's script fetches.
type slotsResponse struct {
	Mission      string     `json:"mission"`
	Centre       string     `json:"centre"`
	VisaCategory string     `json:"visa_category"`
	Slots        []slotTime `json:"slots"`
}

type slotTime struct {
	Date string `json:"date"`
	Time string `json:"time,omitempty"`
}

func (s *Sim) handleSlotAPI(w http.ResponseWriter, r *http.Request) {
	email, ok := s.sessionEmail(r)
	if s.misbehave(w, r, email, SlotAPI) {
		return
	}
	if !ok {
		writeJSON(w, http.StatusUnauthorized, apiError{"session_expired"})
		return
	}
	m, found := s.mission(r.PathValue("code"))
	if !found {
		writeJSON(w, http.StatusNotFound, apiError{"unknown_mission"})
		return
	}
	q := r.URL.Query()
	centre, category := q.Get("centre"), q.Get("visa_category")
	if !slices.Contains(m.Centres, centre) || !slices.Contains(m.VisaCategories, category) {
		writeJSON(w, http.StatusBadRequest, apiError{"unknown_centre_or_category"})
		return
	}
	resp := slotsResponse{Mission: m.Code, Centre: centre, VisaCategory: category, Slots: []slotTime{}}
	for _, sl := range m.Slots {
		if sl.Centre == centre && sl.VisaCategory == category {
			resp.Slots = append(resp.Slots, slotTime{Date: sl.Date, Time: sl.Time})
		}
	}
	slices.SortFunc(resp.Slots, func(a, b slotTime) int {
		return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.Time, b.Time))
	})
	writeJSON(w, http.StatusOK, resp)
}

type apiError struct {
	Error string `json:"error"`
}

// misbehave applies the behaviour for email (empty before login) in area
// and reports whether it answered the request. The reject_password kind
// only affects the login form, so it is ignored here.
func (s *Sim) misbehave(w http.ResponseWriter, r *http.Request, email string, area Area) bool {
	b := s.behaviourFor(email, area)
	if !s.wait(r, b.Delay()) {
		return true
	}
	if b.Kind == Normal || b.Kind == RejectPassword {
		return false
	}
	if area == SlotAPI {
		s.apiBehaviour(w, b.Kind)
	} else {
		s.renderBehaviour(w, b.Kind)
	}
	return true
}

// wait sleeps for d unless the client goes away first; false means it went.
func (s *Sim) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Sim) renderBehaviour(w http.ResponseWriter, k Kind) {
	switch k {
	case Blocked:
		s.renderMessage(w, http.StatusForbidden, blockedPage)
	case TooManyRequests:
		w.Header().Set("Retry-After", "600")
		s.renderMessage(w, http.StatusTooManyRequests, rateLimitedPage)
	case Captcha:
		s.renderMessage(w, http.StatusOK, captchaPage)
	case Maintenance:
		w.Header().Set("Retry-After", "1800")
		s.renderMessage(w, http.StatusServiceUnavailable, maintenancePage)
	case Unknown:
		s.render(w, http.StatusOK, "unknown", pageData{Title: "Welcome", Page: "unknown"})
	default: // ServerError: a crashed backend shows no portal page at all.
		http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
	}
}

func (s *Sim) apiBehaviour(w http.ResponseWriter, k Kind) {
	switch k {
	case Blocked:
		writeJSON(w, http.StatusForbidden, apiError{"account_blocked"})
	case TooManyRequests:
		w.Header().Set("Retry-After", "600")
		writeJSON(w, http.StatusTooManyRequests, apiError{"too_many_requests"})
	case Captcha:
		writeJSON(w, http.StatusForbidden, apiError{"captcha_required"})
	case Maintenance:
		writeJSON(w, http.StatusServiceUnavailable, apiError{"maintenance"})
	case Unknown:
		// Not JSON at all: the page's script cannot make sense of it.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html><body>Moved</body></html>"))
	default:
		http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
	}
}

func (s *Sim) account(email string) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.accountIndex(email)
	if i < 0 {
		return Account{}, false
	}
	return s.cfg.Accounts[i], true
}

// cacheFor lets browsers keep static assets, as real portals do: without
// it (embedded files have no modification time) every page would fetch
// them again.
func cacheFor(d time.Duration, h http.Handler) http.Handler {
	v := fmt.Sprintf("public, max-age=%d", int(d.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", v)
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
