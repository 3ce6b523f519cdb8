// Package sim is a fake visa-appointment portal: a login form that sets a
// session cookie, a dashboard, a slot page per mission whose dates are
// fetched by JavaScript after the page loads, and a JSON admin API under
// /admin/ that sets accounts, slots and misbehaviours (blocked, rate limited,
// CAPTCHA, slow, 500, logged out...) and records every login attempt.
//
// That is the classic family. The same Sim can look like three other kinds
// of portal (Family: vfs, tls, ais; FAMILIES.md), each with its own pages,
// URLs and JSON, over the same accounts, slots and behaviours. Dates are in
// the portal's timezone (Config.Timezone).
//
// It exists so the Checker's browser driver can be tested end to end against
// something only a real browser can use, and so the demo has a portal. A Sim
// is an http.Handler: tests start it in-process with httptest, the
// portalsim binary serves it on :8090.
package sim

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// LoginResult is what the portal did with a login attempt.
type LoginResult string

// The login results recorded in LoginAttempt.Result.
const (
	LoginOK              LoginResult = "ok"
	LoginBadPassword     LoginResult = "bad_password"
	LoginUnknownAccount  LoginResult = "unknown_account"
	LoginRejected        LoginResult = "rejected_password" // the reject_password behaviour
	LoginBlocked         LoginResult = "blocked"
	LoginTooManyRequests LoginResult = "too_many_requests"
	LoginCaptcha         LoginResult = "captcha"
	LoginServerError     LoginResult = "error_500"
	LoginMaintenance     LoginResult = "maintenance"
	LoginUnknownPage     LoginResult = "unknown"
	LoginBadForm         LoginResult = "bad_form" // missing or stale form token
	LoginAborted         LoginResult = "aborted"  // the client left during a delay
)

// LoginAttempt is one POST of the login form.
type LoginAttempt struct {
	Email  string      `json:"email"`
	At     time.Time   `json:"at"`
	Result LoginResult `json:"result"`
	// PriorSession is the account of a session cookie the browser already
	// sent with the login form. A checker that isolates its accounts never
	// sends one.
	PriorSession string `json:"prior_session,omitempty"`
}

// Stats is how much work the simulator did serving portal requests (not
// /admin/): the benchmark subtracts it from a check's time to get the
// checker's own overhead.
type Stats struct {
	Requests int64         `json:"requests"`
	Busy     time.Duration `json:"busy_ns"`
}

type session struct {
	email   string
	created time.Time
}

// Sim is the simulated portal. It is safe for concurrent use.
type Sim struct {
	admin   *http.ServeMux
	portals map[Family]*http.ServeMux // each family's pages
	handler http.Handler
	pages   pages
	// clock is time.Now unless a test set another (SetClock).
	clock atomic.Pointer[func() time.Time]

	mu       sync.Mutex
	cfg      Config
	sessions map[string]session
	logins   []LoginAttempt

	// reqLog is the request log: the portal requests served, oldest
	// first, at most maxRequestLog (the oldest go first).
	reqLog []PortalRequest

	requests atomic.Int64
	busyNS   atomic.Int64
}

// PortalRequest is one portal request served (not /admin/): the load a
// checker puts on the portal, read from the portal's side.
type PortalRequest struct {
	// At is when the request arrived.
	At     time.Time `json:"at"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
}

// maxRequestLog bounds the request log; a benchmark clears it per phase.
const maxRequestLog = 100_000

// New returns a simulator serving cfg.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("portalsim config: %w", err)
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Sim{
		admin:    http.NewServeMux(),
		portals:  map[Family]*http.ServeMux{},
		pages:    p,
		cfg:      cloneConfig(cfg),
		sessions: map[string]session{},
	}
	s.SetClock(time.Now)
	s.adminRoutes()
	for f, register := range map[Family]func(*http.ServeMux){
		Classic: s.classicRoutes, VFS: s.vfsRoutes, TLS: s.tlsRoutes, AIS: s.aisRoutes,
	} {
		mux := http.NewServeMux()
		register(mux)
		s.portals[f] = mux
	}
	s.handler = s.measure(s.dispatch())
	return s, nil
}

// ServeHTTP serves the portal and the admin API.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// State returns a copy of the current configuration.
func (s *Sim) State() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneConfig(s.cfg)
}

// SetState replaces the configuration. Sessions of accounts that remain stay
// valid; the login record is kept.
func (s *Sim) SetState(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cloneConfig(cfg)
	return nil
}

// Reset forgets everything: configuration, sessions, login record, request
// log and stats.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = Config{}
	s.sessions = map[string]session{}
	s.logins = nil
	s.reqLog = nil
	s.requests.Store(0)
	s.busyNS.Store(0)
}

// PutAccount adds the account or replaces the one with the same email.
func (s *Sim) PutAccount(a Account) error {
	if err := a.validate(); err != nil {
		return err
	}
	return s.PutAccounts([]Account{a})
}

// PutAccounts is PutAccount of each, all or none: an invalid account
// (accounts[i]: why) leaves the accounts as they were.
func (s *Sim) PutAccounts(as []Account) error {
	for i, a := range as {
		if err := a.validate(); err != nil {
			return fmt.Errorf("accounts[%d]: %w", i, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range as {
		if i := s.accountIndex(a.Email); i >= 0 {
			s.cfg.Accounts[i] = a
		} else {
			s.cfg.Accounts = append(s.cfg.Accounts, a)
		}
	}
	return nil
}

// DeleteAccount removes the account and ends its sessions; false when there
// was none.
func (s *Sim) DeleteAccount(email string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.accountIndex(email)
	if i < 0 {
		return false
	}
	s.cfg.Accounts = slices.Delete(s.cfg.Accounts, i, i+1)
	for id, sess := range s.sessions {
		if normEmail(sess.email) == normEmail(email) {
			delete(s.sessions, id)
		}
	}
	return true
}

// ErrNoAccount is returned when a behaviour names an account that does not
// exist.
var ErrNoAccount = errors.New("no such account")

// SetBehaviour sets the behaviour of one account, or the global one when
// email is empty. The zero Behaviour makes the portal normal again.
func (s *Sim) SetBehaviour(email string, b Behaviour) error {
	if err := b.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if email == "" {
		s.cfg.Behaviour = b
		return nil
	}
	i := s.accountIndex(email)
	if i < 0 {
		return fmt.Errorf("account %q: %w", email, ErrNoAccount)
	}
	s.cfg.Accounts[i].Behaviour = b
	return nil
}

// PutMission adds or replaces a mission's name, centres and visa categories,
// keeping its slots (a slot whose centre or category is no longer offered
// stays stored but is never shown).
func (s *Sim) PutMission(m Mission) error {
	if m.Code == "" {
		return fmt.Errorf("mission code is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m.Centres = slices.Clone(m.Centres)
	m.VisaCategories = slices.Clone(m.VisaCategories)
	if i := s.missionIndex(m.Code); i >= 0 {
		m.Slots = s.cfg.Missions[i].Slots
		s.cfg.Missions[i] = m
	} else {
		m.Slots = nil
		s.cfg.Missions = append(s.cfg.Missions, m)
	}
	return nil
}

// SetSlots replaces the free slots of one mission, centre and visa category.
// The mission, centre and category are added when missing, so a test can
// make a slot appear with one call. The Centre and VisaCategory of each slot
// are taken from the arguments.
func (s *Sim) SetSlots(mission, centre, category string, slots []Slot) error {
	if mission == "" || centre == "" || category == "" {
		return fmt.Errorf("mission, centre and visa_category are required")
	}
	next := make([]Slot, len(slots))
	for i, sl := range slots {
		sl.Centre, sl.VisaCategory = centre, category
		if err := sl.validate(); err != nil {
			return fmt.Errorf("slots[%d]: %w", i, err)
		}
		next[i] = sl
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.missionIndex(mission)
	if i < 0 {
		s.cfg.Missions = append(s.cfg.Missions, Mission{Code: mission, Name: mission})
		i = len(s.cfg.Missions) - 1
	}
	m := &s.cfg.Missions[i]
	if !slices.Contains(m.Centres, centre) {
		m.Centres = append(m.Centres, centre)
	}
	if !slices.Contains(m.VisaCategories, category) {
		m.VisaCategories = append(m.VisaCategories, category)
	}
	m.Slots = slices.DeleteFunc(m.Slots, func(sl Slot) bool {
		return sl.Centre == centre && sl.VisaCategory == category
	})
	m.Slots = append(m.Slots, next...)
	return nil
}

// Logins returns every login attempt, oldest first.
func (s *Sim) Logins() []LoginAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.logins)
}

// Requests returns the request log, oldest first.
func (s *Sim) Requests() []PortalRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqLog)
}

// ClearRequests empties the request log.
func (s *Sim) ClearRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqLog = nil
}

func (s *Sim) logRequest(r PortalRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqLog) >= maxRequestLog {
		s.reqLog = slices.Delete(s.reqLog, 0, len(s.reqLog)-maxRequestLog+1)
	}
	s.reqLog = append(s.reqLog, r)
}

// Session is a portal session that is logged in now.
type Session struct {
	Email   string    `json:"email"`
	Created time.Time `json:"created"`
}

// Sessions returns the sessions logged in now (not past the session
// lifetime), oldest first: a checker that logs out leaves none behind.
func (s *Sim) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		if s.expired(sess) {
			continue
		}
		out = append(out, Session{Email: sess.email, Created: sess.created})
	}
	slices.SortFunc(out, func(a, b Session) int { return a.Created.Compare(b.Created) })
	return out
}

// Stats returns the work done serving portal requests since the start or the
// last Reset.
func (s *Sim) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Busy: time.Duration(s.busyNS.Load())}
}

func (s *Sim) accountIndex(email string) int {
	return slices.IndexFunc(s.cfg.Accounts, func(a Account) bool { return normEmail(a.Email) == normEmail(email) })
}

func (s *Sim) missionIndex(code string) int {
	return slices.IndexFunc(s.cfg.Missions, func(m Mission) bool { return m.Code == code })
}

// behaviourFor combines the global behaviour with the account's (email may
// be empty: no account known yet), keeping only those that apply to area.
func (s *Sim) behaviourFor(email string, area Area) Behaviour {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b Behaviour
	applies := func(x Behaviour) bool { return x.Only == Everywhere || x.Only == area }
	if g := s.cfg.Behaviour; applies(g) {
		b.Kind, b.DelayMS = g.Kind, g.DelayMS
	}
	if email == "" {
		return b
	}
	if i := s.accountIndex(email); i >= 0 {
		if ab := s.cfg.Accounts[i].Behaviour; applies(ab) {
			if ab.Kind != Normal {
				b.Kind = ab.Kind
			}
			b.DelayMS += ab.DelayMS
		}
	}
	return b
}

func (s *Sim) mission(code string) (Mission, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.missionIndex(code)
	if i < 0 {
		return Mission{}, false
	}
	return cloneMission(s.cfg.Missions[i]), true
}

func (s *Sim) missions() []Mission {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Mission, len(s.cfg.Missions))
	for i, m := range s.cfg.Missions {
		out[i] = cloneMission(m)
	}
	return out
}

func (s *Sim) recordLogin(a LoginAttempt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logins = append(s.logins, a)
}

func (s *Sim) newSession(email string) string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	id := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[id] = session{email: email, created: s.now().UTC()}
	return id
}

// sessionEmail is the account of the request's session cookie, if the
// session exists and its account still does.
func (s *Sim) sessionEmail(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[c.Value]
	if !ok || s.accountIndex(sess.email) < 0 {
		return "", false
	}
	if s.expired(sess) {
		delete(s.sessions, c.Value)
		return "", false
	}
	return sess.email, true
}

// expired says whether a session is older than the session lifetime
// (s.mu held).
func (s *Sim) expired(sess session) bool {
	life := s.cfg.sessionLifetime()
	return life > 0 && s.now().Sub(sess.created) >= life
}

// SetSessionLifetime sets how long a login lasts (Config.SessionLifetime;
// 0: until logout). It applies to the sessions open now too.
func (s *Sim) SetSessionLifetime(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("session lifetime %s: must not be negative", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.SessionLifetime = ""
	if d > 0 {
		s.cfg.SessionLifetime = d.String()
	}
	return nil
}

// SetClock replaces the simulator's clock (time.Now): tests move it to
// age sessions.
func (s *Sim) SetClock(now func() time.Time) { s.clock.Store(&now) }

func (s *Sim) now() time.Time { return (*s.clock.Load())() }

func (s *Sim) endSession(r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, c.Value)
}

func cloneConfig(c Config) Config {
	out := Config{Behaviour: c.Behaviour, Accounts: slices.Clone(c.Accounts), Family: c.Family, Timezone: c.Timezone,
		SessionLifetime: c.SessionLifetime}
	if out.Accounts == nil {
		out.Accounts = []Account{}
	}
	out.Missions = make([]Mission, len(c.Missions))
	for i, m := range c.Missions {
		out.Missions[i] = cloneMission(m)
	}
	return out
}

func cloneMission(m Mission) Mission {
	m.Centres = slices.Clone(m.Centres)
	m.VisaCategories = slices.Clone(m.VisaCategories)
	m.Slots = slices.Clone(m.Slots)
	return m
}
