package sim

import (
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

// routes registers the classic family's pages on mux.
func (s *Sim) classicRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.handleRoot)
	mux.HandleFunc("GET /login", s.handleLoginPage)
	mux.HandleFunc("POST /login", s.handleLogin)
	mux.HandleFunc("GET /logout", s.handleLogout)
	mux.HandleFunc("POST /logout", s.handleLogout)
	mux.HandleFunc("GET /dashboard", s.handleDashboard)
	mux.HandleFunc("GET /missions/{code}/slots", s.handleSlotPage)
	mux.HandleFunc("GET /api/missions/{code}/slots", s.handleSlotAPI)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.renderMessage(w, http.StatusNotFound, notFoundPage)
	})
}

// dispatch sends /admin/ to the admin API, /static/ to the files every
// family's pages use, and everything else to the current family's pages.
func (s *Sim) dispatch() http.Handler {
	static := cacheFor(time.Hour, http.FileServerFS(webFS))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/admin/"):
			s.admin.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/static/") && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			static.ServeHTTP(w, r)
		case r.URL.Path == "/favicon.ico":
			w.WriteHeader(http.StatusNoContent)
		default:
			s.portals[s.family()].ServeHTTP(w, r)
		}
	})
}

// measure counts the time spent on portal requests, so the benchmark can
// tell the portal's own time from the checker's, and keeps the request log.
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
		s.logRequest(PortalRequest{At: start.UTC(), Method: r.Method, Path: r.URL.Path})
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
	if _, _, done := s.enter(w, r, LoginArea, asPage); done {
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
	c, err := r.Cookie(formCookie)
	formOK := err == nil && c.Value != "" && c.Value == r.PostFormValue("form_token")
	acct, res, done := s.checkLogin(w, r, r.PostFormValue("email"), r.PostFormValue("password"), formOK, asPage)
	switch {
	case done:
	case res == LoginBadForm:
		s.renderMessage(w, http.StatusBadRequest, formExpiredPage)
	case res != LoginOK:
		s.renderLogin(w, http.StatusOK, "Invalid email or password.", false)
	default:
		s.startSession(w, acct.Email)
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
	}
}

// checkLogin judges one login attempt of any family and records it.
// formOK says whether the request carried the family's form token (or
// whatever else its form requires). done means it answered the request
// (a misbehaviour, or the client left during a delay); otherwise the
// caller shows res: LoginOK, LoginBadForm, or a wrong password.
func (s *Sim) checkLogin(w http.ResponseWriter, r *http.Request, email, password string, formOK bool, style answerStyle) (acct Account, res LoginResult, done bool) {
	email = strings.TrimSpace(email)
	attempt := LoginAttempt{Email: email, At: s.now().UTC()}
	if prior, ok := s.sessionEmail(r); ok {
		attempt.PriorSession = prior
	}
	record := func(res LoginResult) {
		attempt.Result = res
		s.recordLogin(attempt)
	}
	if !formOK {
		record(LoginBadForm)
		return Account{}, LoginBadForm, false
	}
	b := s.behaviourFor(email, LoginArea)
	if !s.wait(r, b.Delay()) {
		record(LoginAborted)
		return Account{}, LoginAborted, true
	}
	if res, ok := loginResultOf[b.Kind]; ok {
		record(res)
		s.wall(w, b.Kind, style)
		return Account{}, res, true
	}
	acct, known := s.account(email)
	switch {
	case !known:
		res = LoginUnknownAccount
	case b.Kind == RejectPassword:
		res = LoginRejected
	case acct.Password != password:
		res = LoginBadPassword
	default:
		res = LoginOK
	}
	record(res)
	return acct, res, false
}

// startSession signs the browser in as email.
func (s *Sim) startSession(w http.ResponseWriter, email string) {
	id := s.newSession(email)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// endSessionCookie signs the browser out.
func (s *Sim) endSessionCookie(w http.ResponseWriter, r *http.Request) {
	s.endSession(r)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
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
	s.endSessionCookie(w, r)
	http.Redirect(w, r, "/login?bye=1", http.StatusSeeOther)
}

func (s *Sim) handleDashboard(w http.ResponseWriter, r *http.Request) {
	email, ok := s.enterPage(w, r, Dashboard, "/login")
	if !ok {
		return
	}
	acct, _ := s.account(email)
	s.render(w, http.StatusOK, "dashboard", pageData{Title: "Dashboard", Page: "dashboard", Email: email, Passport: acct.Passport, Missions: s.missions()})
}

func (s *Sim) handleSlotPage(w http.ResponseWriter, r *http.Request) {
	email, ok := s.enterPage(w, r, SlotPage, "/login")
	if !ok {
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
	_, ok, done := s.enter(w, r, SlotAPI, asJSON)
	if done {
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
	for _, sl := range s.offered(m, centre, category) {
		resp.Slots = append(resp.Slots, slotTime{Date: sl.Date, Time: sl.Time})
	}
	writeJSON(w, http.StatusOK, resp)
}

type apiError struct {
	Error string `json:"error"`
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
