package sim

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Family is a kind of portal the simulator can look like. Each family has
// its own pages, URLs and texts (FAMILIES.md); the accounts, missions,
// slots, behaviours, login record and sessions are shared, so a test can
// add a slot and see it in any family.
type Family string

// The families.
const (
	Classic Family = ""    // the login form, dashboard and slot page portalsim always had
	VFS     Family = "vfs" // a single-page app with dependent dropdowns and an "earliest slot" message
	TLS     Family = "tls" // server-rendered pages and a month calendar with time buttons
	AIS     Family = "ais" // server pages and JSON endpoints of days and times
)

var families = []Family{Classic, VFS, TLS, AIS}

// ParseFamily reads a family name as the -family flag and the admin API
// take it: "classic" (or empty), "vfs", "tls" or "ais".
func ParseFamily(name string) (Family, error) {
	f := Family(strings.ToLower(strings.TrimSpace(name)))
	if f == "classic" {
		f = Classic
	}
	if !slices.Contains(families, f) {
		return "", fmt.Errorf("family %q: want one of %s", name, familyNames())
	}
	return f, nil
}

// UnmarshalText reads a family's name in JSON: "classic" is the empty
// family too.
func (f *Family) UnmarshalText(b []byte) error {
	parsed, err := ParseFamily(string(b))
	if err != nil {
		return err
	}
	*f = parsed
	return nil
}

// String is the family's name; the classic family is "classic".
func (f Family) String() string {
	if f == Classic {
		return "classic"
	}
	return string(f)
}

func familyNames() string {
	names := make([]string, len(families))
	for i, f := range families {
		names[i] = f.String()
	}
	return strings.Join(names, ", ")
}

// SetPortal switches the portal to another family and timezone (an IANA
// name; empty is UTC). Sessions stay valid: a browser that was signed in is
// still signed in, on the new family's pages.
func (s *Sim) SetPortal(f Family, timezone string) error {
	if !slices.Contains(families, f) {
		return fmt.Errorf("family %q: want one of %s", f, familyNames())
	}
	if _, err := time.LoadLocation(timezone); err != nil {
		return fmt.Errorf("timezone %q: want an IANA zone name such as Europe/London", timezone)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Family, s.cfg.Timezone = f, timezone
	return nil
}

// ChangePortal changes the fields that are not nil: the family (a name
// ParseFamily takes), the timezone (an IANA name; empty is UTC) and the
// session lifetime (a Go duration; "0s" for none). The others keep their
// value; a bad one changes none of them.
func (s *Sim) ChangePortal(family, timezone, sessionLifetime *string) error {
	var f Family
	if family != nil {
		var err error
		if f, err = ParseFamily(*family); err != nil {
			return err
		}
	}
	if timezone != nil {
		if _, err := time.LoadLocation(*timezone); err != nil {
			return fmt.Errorf("timezone %q: want an IANA zone name such as Europe/London", *timezone)
		}
	}
	var life time.Duration
	if sessionLifetime != nil {
		if err := validLifetime(*sessionLifetime); err != nil {
			return err
		}
		life, _ = time.ParseDuration(cmp.Or(*sessionLifetime, "0s"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if family != nil {
		s.cfg.Family = f
	}
	if timezone != nil {
		s.cfg.Timezone = *timezone
	}
	if sessionLifetime != nil {
		s.cfg.SessionLifetime = ""
		if life > 0 {
			s.cfg.SessionLifetime = life.String()
		}
	}
	return nil
}

func (s *Sim) family() Family {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Family
}

// today is the portal's date now, in its timezone.
func (s *Sim) today() string {
	s.mu.Lock()
	tz := s.cfg.Timezone
	s.mu.Unlock()
	loc, err := time.LoadLocation(tz)
	if err != nil { // Validate refused it; keep serving in UTC.
		loc = time.UTC
	}
	return s.now().In(loc).Format(time.DateOnly)
}

// offered is what the portal shows of m's slots for one centre and visa
// category: those not before the portal's today, by date and time.
func (s *Sim) offered(m Mission, centre, category string) []Slot {
	today := s.today()
	var out []Slot
	for _, sl := range m.Slots {
		if sl.Centre == centre && sl.VisaCategory == category && sl.Date >= today {
			out = append(out, sl)
		}
	}
	slices.SortFunc(out, func(a, b Slot) int {
		return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.Time, b.Time))
	})
	return out
}

// centreCode is the portal's own id of a mission's centre, as the vfs and
// tls families put in option values: the mission and the centre's first
// letters, upper case, with the centre's position when two would collide
// ("FRALON", "FRAMAN").
func centreCode(m Mission, centre string) string {
	mine := codeOf(m.Code, centre)
	for _, c := range m.Centres {
		if c != centre && codeOf(m.Code, c) == mine {
			return fmt.Sprintf("%s%d", mine, slices.Index(m.Centres, centre)+1)
		}
	}
	return mine
}

func codeOf(mission, centre string) string {
	letters := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, centre)
	return strings.ToUpper(mission + letters[:min(3, len(letters))])
}

// centreByCode finds the centre whose code is code.
func centreByCode(m Mission, code string) (string, bool) {
	for _, c := range m.Centres {
		if centreCode(m, c) == code {
			return c, true
		}
	}
	return "", false
}

// facilityID is the ais family's numeric id of a mission's centre: 100
// plus its position among the mission's centres (London first: 101).
func facilityID(m Mission, centre string) int { return 101 + slices.Index(m.Centres, centre) }

// stableID is a number from 10000000 to 99999999 that always comes out the
// same for the same parts: the ais family's group and schedule ids.
func stableID(parts ...string) int {
	h := fnv.New32a()
	for _, p := range parts {
		_, _ = h.Write([]byte(normEmail(p) + "\x00"))
	}
	return 10000000 + int(h.Sum32()%90000000)
}

// enter applies the behaviour of area to a request of the current family's
// pages (style says whether it is a page or a JSON API) and reports the
// signed-in account. done means the behaviour answered the request. The
// logged_out kind ends the session first, so the handler answers as to a
// visitor who is not signed in.
func (s *Sim) enter(w http.ResponseWriter, r *http.Request, area Area, style answerStyle) (email string, ok, done bool) {
	email, ok = s.sessionEmail(r)
	b := s.behaviourFor(email, area)
	if !s.wait(r, b.Delay()) {
		return "", false, true
	}
	switch b.Kind {
	case Normal, RejectPassword:
		return email, ok, false
	case LoggedOut:
		if area != LoginArea {
			s.endSession(r)
			return "", false, false
		}
		return email, ok, false
	}
	s.wall(w, b.Kind, style)
	return email, ok, true
}

// enterPage is enter for a page that only a signed-in account may see: a
// visitor who is not signed in is sent to signIn. ok means the handler goes
// on to answer as the returned account.
func (s *Sim) enterPage(w http.ResponseWriter, r *http.Request, area Area, signIn string) (email string, ok bool) {
	email, signedIn, done := s.enter(w, r, area, asPage)
	if done {
		return "", false
	}
	if !signedIn {
		http.Redirect(w, r, signIn, http.StatusSeeOther)
		return "", false
	}
	return email, true
}

// answerStyle is how a family answers a request: with a page, or with JSON
// to a script.
type answerStyle int

const (
	asPage answerStyle = iota
	asJSON
)

// wall answers with the family's page (or JSON) for a misbehaviour kind.
func (s *Sim) wall(w http.ResponseWriter, k Kind, style answerStyle) {
	f := s.family()
	if f == Classic {
		if style == asJSON {
			s.apiBehaviour(w, k)
		} else {
			s.renderBehaviour(w, k)
		}
		return
	}
	if k == ServerError { // a crashed backend shows no portal page at all
		http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
		return
	}
	wl := wallOf(f, k)
	switch k {
	case TooManyRequests:
		w.Header().Set("Retry-After", "600")
	case Maintenance:
		w.Header().Set("Retry-After", "1800")
	}
	if style == asJSON {
		if k == Unknown { // not JSON at all: the page's script cannot use it
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("<html><body>Moved</body></html>"))
			return
		}
		status := wl.Status
		if k == Captcha { // a script cannot show a challenge it was not asked for: it is an error
			status = http.StatusForbidden
		}
		writeJSON(w, status, familyAPIError{Error: apiErrorBody{Code: wl.Code, Title: wl.Heading, Description: wl.Text}})
		return
	}
	s.render(w, wl.Status, f.String()+"/wall", familyPage{Title: wl.Heading, Wall: wl})
}

// familyAPIError is the JSON error body of the vfs and ais families' APIs.
type familyAPIError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code        string `json:"code"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description"`
}
