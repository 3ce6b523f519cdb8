package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The admin API needs no browser: tests and the demo drive the portal with
// plain JSON.
//
//	GET    /admin/state                       the whole Config
//	PUT    /admin/state                       replace the Config
//	POST   /admin/reset                       forget config, sessions, logins, request log, stats
//	GET    /admin/accounts                    accounts
//	POST   /admin/accounts                    add or replace one account or a JSON array of them
//	PUT    /admin/accounts/{email}            {"password": ..., "behaviour"?: ...} add or replace
//	DELETE /admin/accounts/{email}
//	PUT    /admin/accounts/{email}/behaviour  Behaviour of one account; DELETE makes it normal
//	PUT    /admin/behaviour                   global Behaviour; DELETE makes it normal
//	PUT    /admin/missions/{code}             {"name", "centres", "visa_categories"}
//	PUT    /admin/slots                       {"mission", "centre", "visa_category", "slots": [{"date", "time"}]}
//	GET    /admin/logins                      every login attempt (?email= to filter)
//	DELETE /admin/logins                      clear the login record
//	GET    /admin/sessions                    sessions logged in now
//	GET    /admin/requests                    the request log: portal requests served, [{"at", "method", "path"}]
//	DELETE /admin/requests                    clear the request log
//	GET    /admin/stats                       portal requests served and time spent
//	GET    /admin/portal                      {"family", "timezone", "session_lifetime"}
//	PUT    /admin/portal                      {"family"?: "vfs", "timezone"?: "Europe/London", "session_lifetime"?: "30m"}:
//	                                          the fields given change, the others stay (FAMILIES.md)
//
// A Behaviour is {"kind": "blocked", "delay_ms": 2000, "only": "slots_api"}:
// kind one of reject_password, blocked, too_many_requests, captcha,
// error_500, maintenance, unknown, logged_out (empty: normal); only one of login,
// dashboard, slots, slots_api (empty: everywhere).
func (s *Sim) adminRoutes() {
	s.admin.HandleFunc("GET /admin/portal", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.look())
	})
	s.admin.HandleFunc("PUT /admin/portal", s.adminPutPortal)
	s.admin.HandleFunc("/admin/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{"no such admin endpoint"})
	})
	s.admin.HandleFunc("GET /admin/state", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.State())
	})
	s.admin.HandleFunc("PUT /admin/state", func(w http.ResponseWriter, r *http.Request) {
		var cfg Config
		if !decode(w, r, &cfg) {
			return
		}
		if err := s.SetState(cfg); err != nil {
			badRequest(w, err)
			return
		}
		writeJSON(w, http.StatusOK, s.State())
	})
	s.admin.HandleFunc("POST /admin/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	s.admin.HandleFunc("GET /admin/accounts", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.State().Accounts)
	})
	s.admin.HandleFunc("POST /admin/accounts", s.adminPostAccounts)
	s.admin.HandleFunc("PUT /admin/accounts/{email}", s.adminPutAccount)
	s.admin.HandleFunc("DELETE /admin/accounts/{email}", func(w http.ResponseWriter, r *http.Request) {
		if !s.DeleteAccount(r.PathValue("email")) {
			writeJSON(w, http.StatusNotFound, apiError{"no such account"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.admin.HandleFunc("PUT /admin/accounts/{email}/behaviour", func(w http.ResponseWriter, r *http.Request) {
		s.adminSetBehaviour(w, r, r.PathValue("email"), true)
	})
	s.admin.HandleFunc("DELETE /admin/accounts/{email}/behaviour", func(w http.ResponseWriter, r *http.Request) {
		s.adminSetBehaviour(w, r, r.PathValue("email"), false)
	})
	s.admin.HandleFunc("PUT /admin/behaviour", func(w http.ResponseWriter, r *http.Request) {
		s.adminSetBehaviour(w, r, "", true)
	})
	s.admin.HandleFunc("DELETE /admin/behaviour", func(w http.ResponseWriter, r *http.Request) {
		s.adminSetBehaviour(w, r, "", false)
	})
	s.admin.HandleFunc("PUT /admin/missions/{code}", func(w http.ResponseWriter, r *http.Request) {
		var m Mission
		if !decode(w, r, &m) {
			return
		}
		m.Code = r.PathValue("code")
		if m.Name == "" {
			m.Name = m.Code
		}
		if err := s.PutMission(m); err != nil {
			badRequest(w, err)
			return
		}
		got, _ := s.mission(m.Code)
		writeJSON(w, http.StatusOK, got)
	})
	s.admin.HandleFunc("PUT /admin/slots", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Mission      string `json:"mission"`
			Centre       string `json:"centre"`
			VisaCategory string `json:"visa_category"`
			Slots        []Slot `json:"slots"`
		}
		if !decode(w, r, &req) {
			return
		}
		if err := s.SetSlots(req.Mission, req.Centre, req.VisaCategory, req.Slots); err != nil {
			badRequest(w, err)
			return
		}
		got, _ := s.mission(req.Mission)
		writeJSON(w, http.StatusOK, got)
	})
	s.admin.HandleFunc("GET /admin/logins", func(w http.ResponseWriter, r *http.Request) {
		logins := s.Logins()
		if email := r.URL.Query().Get("email"); email != "" {
			kept := logins[:0]
			for _, l := range logins {
				if normEmail(l.Email) == normEmail(email) {
					kept = append(kept, l)
				}
			}
			logins = kept
		}
		if logins == nil {
			logins = []LoginAttempt{}
		}
		writeJSON(w, http.StatusOK, logins)
	})
	s.admin.HandleFunc("DELETE /admin/logins", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		s.logins = nil
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	s.admin.HandleFunc("GET /admin/requests", func(w http.ResponseWriter, _ *http.Request) {
		reqs := s.Requests()
		if reqs == nil {
			reqs = []PortalRequest{}
		}
		writeJSON(w, http.StatusOK, reqs)
	})
	s.admin.HandleFunc("DELETE /admin/requests", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearRequests()
		w.WriteHeader(http.StatusNoContent)
	})
	s.admin.HandleFunc("GET /admin/sessions", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Sessions())
	})
	s.admin.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
}

// portalLook is the answer of /admin/portal: the family, the timezone and
// the session lifetime (a Go duration; "0s" for none).
type portalLook struct {
	Family          string  `json:"family"`
	Timezone        string  `json:"timezone,omitempty"`
	SessionLifetime *string `json:"session_lifetime,omitempty"`
}

// portalChange is the body of PUT /admin/portal: the fields it gives
// change, the others keep their value (as a PUT of an account keeps the
// behaviour it leaves out); "classic", "UTC" and "0s" set the defaults.
type portalChange struct {
	Family          *string `json:"family"`
	Timezone        *string `json:"timezone"`
	SessionLifetime *string `json:"session_lifetime"`
}

func (s *Sim) look() portalLook {
	st := s.State()
	life := cmp.Or(st.SessionLifetime, "0s")
	return portalLook{Family: st.Family.String(), Timezone: cmp.Or(st.Timezone, "UTC"), SessionLifetime: &life}
}

func (s *Sim) adminPutPortal(w http.ResponseWriter, r *http.Request) {
	var req portalChange
	if !decode(w, r, &req) {
		return
	}
	if err := s.ChangePortal(req.Family, req.Timezone, req.SessionLifetime); err != nil {
		badRequest(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.look())
}

func (s *Sim) adminPostAccounts(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		badRequest(w, err)
		return
	}
	var accounts []Account
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		err = strictUnmarshal(trimmed, &accounts)
	} else {
		var a Account
		err = strictUnmarshal(trimmed, &a)
		accounts = []Account{a}
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	if err := s.PutAccounts(accounts); err != nil {
		badRequest(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.State().Accounts)
}

func (s *Sim) adminPutAccount(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password  string     `json:"password"`
		Behaviour *Behaviour `json:"behaviour"`
	}
	if !decode(w, r, &req) {
		return
	}
	a, _ := s.account(r.PathValue("email"))
	a.Email = r.PathValue("email")
	a.Password = req.Password
	if req.Behaviour != nil {
		a.Behaviour = *req.Behaviour
	}
	if err := s.PutAccount(a); err != nil {
		badRequest(w, err)
		return
	}
	got, _ := s.account(a.Email)
	writeJSON(w, http.StatusOK, got)
}

func (s *Sim) adminSetBehaviour(w http.ResponseWriter, r *http.Request, email string, hasBody bool) {
	var b Behaviour
	if hasBody && !decode(w, r, &b) {
		return
	}
	err := s.SetBehaviour(email, b)
	switch {
	case errors.Is(err, ErrNoAccount):
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
	case err != nil:
		badRequest(w, err)
	default:
		writeJSON(w, http.StatusOK, b)
	}
}

// decode reads a JSON body strictly: an unknown field is a typo the caller
// wants to hear about (delay instead of delay_ms), not something to ignore.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := strictUnmarshal(readBody(r), v); err != nil {
		badRequest(w, err)
		return false
	}
	return true
}

// readBody reads at most 1 MiB of the request's body; a body cut short
// fails to decode, which is the answer it deserves.
func readBody(r *http.Request) []byte {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	return body
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	return nil
}

func badRequest(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, apiError{strings.TrimSpace(err.Error())})
}
