package sim

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Config is everything the simulator serves: the JSON of PORTALSIM_CONFIG,
// of PUT /admin/state and of GET /admin/state. Passwords are in clear text on
// purpose: this is a fake portal with fake accounts, and a dumped state must
// load back unchanged.
type Config struct {
	Accounts []Account `json:"accounts"`
	Missions []Mission `json:"missions"`
	// Behaviour applies to every portal request, whoever makes it.
	Behaviour Behaviour `json:"behaviour"`
	// Family is the portal the simulator looks like (FAMILIES.md): classic
	// (the default, when empty), vfs, tls or ais. The accounts, slots and
	// behaviours are the same whatever the family.
	Family Family `json:"family,omitempty"`
	// Timezone is the IANA name of the portal's zone (empty: UTC). The
	// portal's "today" is in it: it offers no slot dated before today, and
	// the tls calendar opens on today's month.
	Timezone string `json:"timezone,omitempty"`
	// SessionLifetime is how long a login lasts, a Go duration such as
	// "30m": a session older than it is logged out, and its next page
	// answers as to a visitor who is not signed in (as LoggedOut does).
	// Empty or "0s": sessions last until logout or restart.
	SessionLifetime string `json:"session_lifetime,omitempty"`
}

// sessionLifetime is SessionLifetime parsed (0 when empty; Validate has
// checked it).
func (c Config) sessionLifetime() time.Duration {
	d, _ := time.ParseDuration(c.SessionLifetime)
	return d
}

func validLifetime(s string) error {
	if s == "" {
		return nil
	}
	if d, err := time.ParseDuration(s); err != nil || d < 0 {
		return fmt.Errorf("session_lifetime %q: want a duration such as 30m, 0s for none", s)
	}
	return nil
}

// Account is a portal login.
type Account struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// Passport is the applicant's passport number, which the dashboard
	// shows as real portals show whose application it is: personal data on
	// a page, for tests of what a checker keeps of the pages it sees.
	Passport string `json:"passport,omitempty"`
	// Behaviour applies to this account's login and to every request of its
	// sessions.
	Behaviour Behaviour `json:"behaviour"`
}

// Mission is one destination country's appointment calendar.
type Mission struct {
	Code           string   `json:"code"`
	Name           string   `json:"name"`
	Centres        []string `json:"centres"`
	VisaCategories []string `json:"visa_categories"`
	Slots          []Slot   `json:"slots"`
}

// Slot is one free appointment.
type Slot struct {
	Centre       string `json:"centre"`
	VisaCategory string `json:"visa_category"`
	// Date is YYYY-MM-DD.
	Date string `json:"date"`
	// Time is HH:MM, or empty when the portal shows only the day.
	Time string `json:"time,omitempty"`
}

// Kind is what the portal does instead of its normal answer.
type Kind string

// The kinds of behaviour. The empty kind is the normal portal.
const (
	Normal          Kind = ""
	RejectPassword  Kind = "reject_password"   // the login form says the password is wrong
	Blocked         Kind = "blocked"           // "this account is blocked" page, 403
	TooManyRequests Kind = "too_many_requests" // rate-limit page, 429
	Captcha         Kind = "captcha"           // a CAPTCHA challenge page, 200
	ServerError     Kind = "error_500"         // a bare 500 page
	Maintenance     Kind = "maintenance"       // "down for maintenance" page, 503
	Unknown         Kind = "unknown"           // a page no profile knows, 200
	// LoggedOut ends the session when a page or API of its area is asked
	// for, which then answers as to a visitor who is not signed in: the
	// portal logged the account out mid-check. It does not affect the login.
	LoggedOut Kind = "logged_out"
)

var kinds = []Kind{Normal, RejectPassword, Blocked, TooManyRequests, Captcha, ServerError, Maintenance, Unknown, LoggedOut}

// Area is a part of the portal a behaviour can be limited to.
type Area string

// The areas.
const (
	Everywhere Area = ""
	LoginArea  Area = "login"     // the login page and form
	Dashboard  Area = "dashboard" // the page after login
	SlotPage   Area = "slots"     // the slot page of a mission
	SlotAPI    Area = "slots_api" // the JSON the slot page's script fetches
)

var areas = []Area{Everywhere, LoginArea, Dashboard, SlotPage, SlotAPI}

// Behaviour makes the portal misbehave. The account's kind wins over the
// global kind; the delays add up.
type Behaviour struct {
	Kind Kind `json:"kind,omitempty"`
	// DelayMS delays every answer it applies to, before anything else.
	DelayMS int `json:"delay_ms,omitempty"`
	// Only limits the behaviour to one area, for example a rate limit on
	// the slot API after a normal login.
	Only Area `json:"only,omitempty"`
}

// Delay is DelayMS as a duration.
func (b Behaviour) Delay() time.Duration { return time.Duration(b.DelayMS) * time.Millisecond }

func (b Behaviour) validate() error {
	if !slices.Contains(kinds, b.Kind) {
		names := make([]string, 0, len(kinds))
		for _, k := range kinds[1:] {
			names = append(names, string(k))
		}
		return fmt.Errorf("behaviour kind %q: want one of %s, or empty for normal", b.Kind, strings.Join(names, ", "))
	}
	if !slices.Contains(areas, b.Only) {
		names := make([]string, 0, len(areas))
		for _, a := range areas[1:] {
			names = append(names, string(a))
		}
		return fmt.Errorf("behaviour only %q: want one of %s, or empty for everywhere", b.Only, strings.Join(names, ", "))
	}
	if b.DelayMS < 0 {
		return fmt.Errorf("behaviour delay_ms %d: must not be negative", b.DelayMS)
	}
	return nil
}

// Validate reports every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.Behaviour.validate(); err != nil {
		errs = append(errs, fmt.Errorf("global: %w", err))
	}
	seen := map[string]bool{}
	for i, a := range c.Accounts {
		if err := a.validate(); err != nil {
			errs = append(errs, fmt.Errorf("accounts[%d]: %w", i, err))
		}
		if seen[normEmail(a.Email)] {
			errs = append(errs, fmt.Errorf("accounts[%d]: email %q appears twice", i, a.Email))
		}
		seen[normEmail(a.Email)] = true
	}
	if !slices.Contains(families, c.Family) {
		errs = append(errs, fmt.Errorf("family %q: want one of %s, or empty for classic", c.Family, familyNames()))
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("timezone %q: want an IANA zone name such as Europe/London", c.Timezone))
	}
	if err := validLifetime(c.SessionLifetime); err != nil {
		errs = append(errs, err)
	}
	codes := map[string]bool{}
	for i, m := range c.Missions {
		if m.Code == "" {
			errs = append(errs, fmt.Errorf("missions[%d]: code is empty", i))
		}
		if codes[m.Code] {
			errs = append(errs, fmt.Errorf("missions[%d]: code %q appears twice", i, m.Code))
		}
		codes[m.Code] = true
		for j, s := range m.Slots {
			if err := s.validate(); err != nil {
				errs = append(errs, fmt.Errorf("missions[%d].slots[%d]: %w", i, j, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (a Account) validate() error {
	if a.Email == "" {
		return errors.New("email is empty")
	}
	return a.Behaviour.validate()
}

func (s Slot) validate() error {
	if s.Centre == "" || s.VisaCategory == "" {
		return errors.New("centre and visa_category are required")
	}
	if _, err := time.Parse(time.DateOnly, s.Date); err != nil {
		return fmt.Errorf("date %q: want YYYY-MM-DD", s.Date)
	}
	if s.Time != "" {
		if _, err := time.Parse("15:04", s.Time); err != nil {
			return fmt.Errorf("time %q: want HH:MM", s.Time)
		}
	}
	return nil
}

// normEmail is the key accounts are found by: portals treat emails as
// case-insensitive.
func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// LoadConfigFile reads a Config from a JSON file (PORTALSIM_CONFIG), with
// the same strictness as the admin API.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read portalsim config: %w", err)
	}
	var cfg Config
	if err := strictUnmarshal(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("portalsim config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("portalsim config %s: %w", path, err)
	}
	return cfg, nil
}
