// Package profile describes a portal to the browser driver: its flows (the
// steps that log in, read the slots of one centre and visa category, and
// log out), which page markers mean logged in, bad credentials, blocked,
// rate limited, CAPTCHA or maintenance, and the portal's timezone. A
// profile is a YAML or JSON file (PORTAL_PROFILE_FILE); the one for
// portalsim is embedded and is the default, so the driver holds no
// portal-specific code.
//
// A profile without flows is read in the first shape profiles had (login
// form, slot page with two selects, a list of dated elements): Program
// turns it into the flows that shape stands for.
package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/slotwatch/slotwatch/services/checker/profiles"
)

// Profile is one portal.
type Profile struct {
	Name string `json:"name"`
	// BaseURL is prepended to every relative URL below.
	BaseURL string `json:"base_url"`
	// Timezone is the IANA name of the portal's timezone: the dates it
	// shows are read in it. Default UTC.
	Timezone string `json:"timezone,omitempty"`
	// Missions holds per-mission values: the portal's own ids of centres
	// and visa categories ({centre.id}, {visa_category.id}) and any other
	// value ({mission.KEY}).
	Missions map[string]Mission `json:"missions,omitempty"`
	// Flows are the steps of a check. Without them, the first shape's
	// Login, Logout and Slots say what to do.
	Flows    *Flows   `json:"flows,omitempty"`
	Login    Login    `json:"login,omitzero"`
	Logout   Logout   `json:"logout,omitzero"`
	Markers  Markers  `json:"markers"`
	Slots    Slots    `json:"slots,omitzero"`
	Timeouts Timeouts `json:"timeouts"`
	// BackgroundTabs says the portal works in a background tab: a page
	// that knows it is hidden (document.visibilityState) and gets no
	// animation frames (requestAnimationFrame waits), which Chromium does
	// not render. That saves about a fifth of a check's CPU. Leave it
	// false for a portal whose pages wait for animation frames or stop
	// loading while hidden.
	BackgroundTabs bool `json:"background_tabs"`
	// AllowedOrigins are origins ("https://login.portal.example") other
	// than base_url's that the profile's URLs may point at. Every URL of
	// the profile must be http(s) and on base_url's origin or one of these,
	// so that a profile cannot send the account's session anywhere else.
	AllowedOrigins []string `json:"allowed_origins"`
	// SessionMaxAge is how long the pool may hand the portal session a
	// check kept (logout: keep_session) to the next check of the account;
	// 0 leaves it to the pool (POOL_SESSION_MAX_AGE, which also caps it).
	SessionMaxAge Duration `json:"session_max_age,omitempty"`
	// SessionLocalStorage: the kept session holds the local storage of
	// the portal's origin as well as its cookies (with keep_session).
	SessionLocalStorage bool `json:"session_local_storage,omitempty"`
}

// KeepSession is what logout says when the check keeps the portal session
// for the account's next check instead of logging out.
const KeepSession = "keep_session"

// Login is the login form. Submitting it must load a new page.
type Login struct {
	URL      string `json:"url"`
	Email    string `json:"email"`    // CSS selector of the email field
	Password string `json:"password"` // CSS selector of the password field
	Submit   string `json:"submit"`   // CSS selector of the button to click
}

// Logout is how to end the portal session: request URL (a GET from the
// page, with the session's cookies; no page is rendered for the answer),
// or click Selector.
//
// The string "keep_session" (KeepSession) instead says that a check does
// not log out: the portal session is kept for the account's next check.
type Logout struct {
	URL      string `json:"url"`
	Selector string `json:"selector"`
	// Keep is set by logout: keep_session.
	Keep bool `json:"-"`
}

// UnmarshalJSON accepts "keep_session" as well as {url, selector}.
func (l *Logout) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != KeepSession {
			return fmt.Errorf("logout: want %q or {url, selector}, not %q", KeepSession, s)
		}
		*l = Logout{Keep: true}
		return nil
	}
	type plain Logout
	var p plain
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("logout: want %q or {url, selector}: %w", KeepSession, err)
	}
	*l = Logout(p)
	return nil
}

// MarshalJSON writes keep_session back as the string.
func (l Logout) MarshalJSON() ([]byte, error) {
	if l.Keep {
		return json.Marshal(KeepSession)
	}
	type plain Logout
	return json.Marshal(plain(l))
}

// Markers say what a page is. A page matches a kind when any of its
// markers matches.
type Markers struct {
	LoggedIn       []Marker `json:"logged_in"`
	BadCredentials []Marker `json:"bad_credentials"`
	Blocked        []Marker `json:"blocked"`
	RateLimited    []Marker `json:"rate_limited"`
	Captcha        []Marker `json:"captcha"`
	Maintenance    []Marker `json:"maintenance"`
	// LoggedOut means the portal dropped the session mid-check.
	LoggedOut []Marker `json:"logged_out"`
	// Custom markers are named by the profile, for a step's expect, a
	// wait or a branch ("slot_form", "cookie_banner").
	Custom map[string][]Marker `json:"custom,omitempty"`
}

// Marker matches an element (CSS), a text on the page (Text), a
// case-insensitive regular expression over the visible text (Regexp), or
// an element whose text contains the text or matches the expression (CSS
// with one of them). In a file, a plain string is a CSS selector.
type Marker struct {
	CSS    string `json:"css,omitempty"`
	Text   string `json:"text,omitempty"`
	Regexp string `json:"regexp,omitempty"`
	// On limits the marker to a flow ("login") or a step of one
	// ("check.slot_page"); empty means everywhere its kind applies.
	On string `json:"on,omitempty"`
}

// UnmarshalJSON accepts "selector" as well as {css: ..., text: ...}.
func (m *Marker) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = Marker{CSS: s}
		return nil
	}
	// YAML 1.1, which the file is read with, takes the key on for the
	// boolean true: a marker's "true" key is its on.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err == nil {
		if v, ok := raw["true"]; ok {
			if _, dup := raw["on"]; !dup {
				delete(raw, "true")
				raw["on"] = v
				b, _ = json.Marshal(raw)
			}
		}
	}
	type plain Marker
	var p plain
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("marker: want a CSS selector or {css, text, regexp, on}: %w", err)
	}
	*m = Marker(p)
	return nil
}

// IsZero reports whether the marker is unset.
func (m Marker) IsZero() bool { return m.CSS == "" && m.Text == "" && m.Regexp == "" }

// Slots is the slot page of a mission.
type Slots struct {
	// URL has the placeholder {mission}, replaced by the mission code.
	URL          string `json:"url"`
	Centre       string `json:"centre"`        // CSS selector of the centre <select>
	VisaCategory string `json:"visa_category"` // CSS selector of the category <select>
	// Submit is clicked after both are chosen, if the page needs it.
	Submit string `json:"submit"`
	// Ready matches once the dates are loaded, with or without slots.
	Ready Marker `json:"ready"`
	// Failed matches when the page says loading the dates went wrong.
	Failed Marker `json:"failed"`
	// Item selects one element per free slot; DateAttr (YYYY-MM-DD) and
	// TimeAttr (HH:MM, optional) are its attributes.
	Item     string `json:"item"`
	DateAttr string `json:"date_attr"`
	TimeAttr string `json:"time_attr"`
}

// Timeouts bound every step of a check.
type Timeouts struct {
	// Page bounds one navigation, from its start until the page has
	// loaded: the login page, the login submit, the slot page.
	Page Duration `json:"page"`
	// Slots bounds the wait for the JavaScript-loaded dates.
	Slots Duration `json:"slots"`
	// Logout bounds the logout, which is a courtesy and never changes the
	// outcome.
	Logout Duration `json:"logout"`
	// Settle is how long to look for a marker once a page has loaded,
	// before calling the page unknown.
	Settle Duration `json:"settle"`
}

// MaxSessionMaxAge is the longest session_max_age: the pool takes no
// longer one.
const MaxSessionMaxAge = 30 * 24 * time.Hour

// Duration is a time.Duration written as a Go duration string ("15s").
type Duration time.Duration

// UnmarshalJSON parses "15s"-style strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"15s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Defaults for timeouts a profile leaves out.
var defaultTimeouts = Timeouts{
	Page:   Duration(15 * time.Second),
	Slots:  Duration(15 * time.Second),
	Logout: Duration(5 * time.Second),
	Settle: Duration(2 * time.Second),
}

// Default returns the embedded portalsim profile.
func Default() *Profile {
	p, err := Parse(profiles.Portalsim)
	if err != nil {
		panic(fmt.Sprintf("embedded portalsim profile: %v", err)) // caught by the package tests
	}
	return p
}

// Load reads a profile file, YAML or JSON. An empty path means the
// embedded portalsim profile.
func Load(path string) (*Profile, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read portal profile: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("portal profile %s: %w", path, err)
	}
	return p, nil
}

// FromEnv loads the shipped profile PORTAL_PROFILE names, or the file
// PORTAL_PROFILE_FILE (default: the embedded portalsim profile), and
// applies PORTAL_BASE_URL when set.
func FromEnv(lookup func(string) (string, bool)) (*Profile, error) {
	path, _ := lookup("PORTAL_PROFILE_FILE")
	name, _ := lookup("PORTAL_PROFILE")
	var (
		p   *Profile
		err error
	)
	switch {
	case name != "" && path != "":
		return nil, errors.New("PORTAL_PROFILE and PORTAL_PROFILE_FILE are both set: choose a shipped profile or a file")
	case name != "":
		data, ok := profiles.Get(name)
		if !ok {
			return nil, fmt.Errorf("PORTAL_PROFILE=%q: no such shipped profile (want one of %s)", name, strings.Join(profiles.Names(), ", "))
		}
		if p, err = Parse(data); err != nil {
			return nil, fmt.Errorf("shipped profile %s: %w", name, err)
		}
	default:
		if p, err = Load(path); err != nil {
			return nil, err
		}
	}
	if base, ok := lookup("PORTAL_BASE_URL"); ok && base != "" {
		if p, err = p.WithBaseURL(base); err != nil {
			return nil, fmt.Errorf("PORTAL_BASE_URL: %w", err)
		}
	}
	return p, nil
}

// Parse reads a YAML or JSON profile (JSON is YAML), rejects unknown
// fields, fills default timeouts and validates it.
func Parse(data []byte) (*Profile, error) {
	var p Profile
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	p.Timeouts.fillDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// WithBaseURL returns a copy of the profile pointing at another base URL,
// such as a portalsim started on a random port.
func (p *Profile) WithBaseURL(base string) (*Profile, error) {
	if err := checkBaseURL(base); err != nil {
		return nil, err
	}
	cp := *p
	cp.BaseURL = strings.TrimRight(base, "/")
	if err := errors.Join(cp.checkURLs()...); err != nil {
		return nil, fmt.Errorf("with base_url %s: %w", cp.BaseURL, err)
	}
	return &cp, nil
}

// URL resolves a profile URL against the base URL.
func (p *Profile) URL(ref string) string {
	base, err := url.Parse(p.BaseURL)
	if err != nil {
		return ref // Validate rejected such a base URL already
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return base.ResolveReference(r).String()
}

// SlotURL is the slot page of a mission.
func (p *Profile) SlotURL(mission string) string {
	return p.URL(strings.ReplaceAll(p.Slots.URL, "{mission}", url.PathEscape(mission)))
}

func (t *Timeouts) fillDefaults() {
	for _, f := range []struct{ got, def *Duration }{
		{&t.Page, &defaultTimeouts.Page},
		{&t.Slots, &defaultTimeouts.Slots},
		{&t.Logout, &defaultTimeouts.Logout},
		{&t.Settle, &defaultTimeouts.Settle},
	} {
		if *f.got == 0 {
			*f.got = *f.def
		}
	}
}

// Validate reports every problem at once, each named by its field path.
func (p *Profile) Validate() error {
	var errs []error
	if err := checkBaseURL(p.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if _, err := p.Location(); err != nil {
		errs = append(errs, err)
	}
	if p.Flows != nil {
		errs = append(errs, p.validateFlows()...)
	} else {
		errs = append(errs, p.validateFirstShape()...)
	}
	errs = append(errs, p.checkURLs()...)
	for _, t := range []struct {
		field string
		d     Duration
	}{{"timeouts.page", p.Timeouts.Page}, {"timeouts.slots", p.Timeouts.Slots}, {"timeouts.logout", p.Timeouts.Logout}, {"timeouts.settle", p.Timeouts.Settle}} {
		if t.d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", t.field))
		}
	}
	if p.SessionLocalStorage && !p.Logout.Keep {
		errs = append(errs, errors.New("session_local_storage: only with logout: keep_session"))
	}
	if p.SessionMaxAge < 0 || p.SessionMaxAge.D() > MaxSessionMaxAge {
		errs = append(errs, fmt.Errorf("session_max_age %s: want between 0 (the pool's default) and %s", p.SessionMaxAge.D(), MaxSessionMaxAge))
	}
	return errors.Join(errs...)
}

// validateFirstShape checks a profile without flows.
func (p *Profile) validateFirstShape() []error {
	var errs []error
	need := func(field, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s is required", field))
		}
	}
	need("login.url", p.Login.URL)
	need("login.email", p.Login.Email)
	need("login.password", p.Login.Password)
	need("login.submit", p.Login.Submit)
	if p.Logout.URL == "" && p.Logout.Selector == "" && !p.Logout.Keep {
		errs = append(errs, errors.New("logout: set url or selector, or keep_session"))
	}
	if len(p.Markers.LoggedIn) == 0 {
		errs = append(errs, errors.New("markers.logged_in needs at least one marker"))
	}
	if len(p.Markers.BadCredentials) == 0 {
		errs = append(errs, errors.New("markers.bad_credentials needs at least one marker"))
	}
	errs = append(errs, p.validateMarkers()...)
	need("slots.url", p.Slots.URL)
	if p.Slots.URL != "" && !strings.Contains(p.Slots.URL, "{mission}") {
		errs = append(errs, fmt.Errorf("slots.url %q has no {mission} placeholder", p.Slots.URL))
	}
	need("slots.centre", p.Slots.Centre)
	need("slots.visa_category", p.Slots.VisaCategory)
	if p.Slots.Ready.IsZero() {
		errs = append(errs, errors.New("slots.ready is required: the marker of loaded dates"))
	}
	need("slots.item", p.Slots.Item)
	need("slots.date_attr", p.Slots.DateAttr)
	return errs
}

// missionSentinel stands for a placeholder while a URL is checked.
const missionSentinel = "slotwatch-mission-placeholder"

// checkURLs checks that every URL of the profile, resolved against the base
// URL, is http(s) on the base URL's origin or an allowed one, and that the
// allowed origins are origins.
func (p *Profile) checkURLs() []error {
	var errs []error
	base, err := url.Parse(p.BaseURL)
	if err != nil || checkBaseURL(p.BaseURL) != nil {
		return nil // reported by Validate
	}
	allowed := map[string]bool{origin(base): true}
	for i, o := range p.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			strings.TrimRight(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("allowed_origins[%d] %q: want an origin such as https://portal.example (scheme, host, port; no path)", i, o))
			continue
		}
		allowed[origin(u)] = true
	}
	for _, f := range p.urlFields() {
		if f.ref == "" {
			continue // required ones are reported by Validate
		}
		r, err := url.Parse(PlaceholderRE.ReplaceAllString(f.ref, missionSentinel))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", f.field, f.ref, err))
			continue
		}
		u := base.ResolveReference(r)
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("%s %q: want an http(s) URL", f.field, f.ref))
		case strings.Contains(u.Host, missionSentinel) || u.User != nil:
			errs = append(errs, fmt.Errorf("%s %q: placeholders such as {mission} may only be in the path or query", f.field, f.ref))
		case !allowed[origin(u)]:
			errs = append(errs, fmt.Errorf("%s %q: origin %s is not base_url's (%s); list it in allowed_origins if the portal really lives there",
				f.field, f.ref, origin(u), origin(base)))
		}
	}
	return errs
}

// origin is scheme://host:port, lower case, with the scheme's default port
// explicit, so that equal origins compare equal.
func origin(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func checkBaseURL(base string) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base_url %q: want an absolute http(s) URL", base)
	}
	return nil
}
