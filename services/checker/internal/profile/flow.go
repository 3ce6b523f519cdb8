package profile

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // a profile's timezone must load in a distroless image too
)

// Flows are the named step lists of a check: Login once, Check once per
// centre and visa category of the claim, Logout once after the result.
type Flows struct {
	Login  []Step `json:"login"`
	Check  []Step `json:"check"`
	Logout []Step `json:"logout,omitempty"`
}

// Step is one thing the driver does on the portal. Exactly one of the
// kinds (goto, fill, click, select, wait, extract, request, branch) is set.
type Step struct {
	// Name names the step in results, metrics and markers' on; default
	// "<flow>.<n>" (1-based).
	Name string `json:"name,omitempty"`
	// Timeout bounds the step; default timeouts.page for goto and a click
	// that loads a page, timeouts.slots for wait and extract.
	Timeout Duration `json:"timeout,omitempty"`
	// Goto opens a URL (placeholders allowed) and classifies the page.
	Goto string `json:"goto,omitempty"`
	// Fill types a value into a field.
	Fill *Fill `json:"fill,omitempty"`
	// Click clicks the first element matching a CSS selector. With
	// Expect, the click loads a new page, which is classified.
	Click string `json:"click,omitempty"`
	// Select chooses an option of a <select>.
	Select *Select `json:"select,omitempty"`
	// Wait waits for a selector, a text, a marker or a quiet network.
	Wait *Wait `json:"wait,omitempty"`
	// Extract reads the slots (the check flow).
	Extract *Extract `json:"extract,omitempty"`
	// Request fetches a URL from the page with the session's cookies,
	// rendering nothing (a logout URL).
	Request string `json:"request,omitempty"`
	// Branch runs Then when a marker matches the page now, else Else.
	Branch *Branch `json:"branch,omitempty"`
	// As keeps, for the steps after it, as {page.AS}: the chosen option's
	// value of a select (an id the portal gives on the page), or the path
	// and query of the page a goto or click loaded (a page to come back to).
	As string `json:"as,omitempty"`
	// Within limits a click to the first element matching this marker
	// (css with text or regexp): "the Continue link of the card that
	// says tourism".
	Within *Marker `json:"within,omitempty"`
	// Expect names the marker (a kind such as logged_in, or a custom one)
	// that the page a goto or click loads must show: any other page ends
	// the check with what that page is.
	Expect string `json:"expect,omitempty"`
}

// Fill is a field and the value typed into it.
type Fill struct {
	Selector string `json:"selector"`
	Value    string `json:"value"`
}

// Select chooses the option whose value is Option, or whose visible label
// is Option ignoring case and runs of spaces. A select without the option
// means the portal does not offer the query (its other steps are skipped).
// With the step's timeout set, the option is waited for (options that a
// script loads after an earlier choice).
type Select struct {
	Selector string `json:"selector"`
	Option   string `json:"option"`
}

// Wait waits until one of its conditions holds; trouble markers end it.
type Wait struct {
	Selector    string `json:"selector,omitempty"`
	Text        string `json:"text,omitempty"`
	Marker      string `json:"marker,omitempty"`
	NetworkIdle bool   `json:"network_idle,omitempty"`
}

// Branch chooses steps by a marker of the page as it is now.
type Branch struct {
	If   string `json:"if"`
	Then []Step `json:"then,omitempty"`
	Else []Step `json:"else,omitempty"`
}

// Extract reads the free slots one of three ways.
type Extract struct {
	List    *ListExtract    `json:"list,omitempty"`
	Message *MessageExtract `json:"message,omitempty"`
	JSON    *JSONExtract    `json:"json,omitempty"`
}

// ListExtract reads one element per slot, once Ready matches.
type ListExtract struct {
	Ready  Marker `json:"ready"`
	Failed Marker `json:"failed,omitzero"`
	Item   string `json:"item"`
	Date   Field  `json:"date"`
	Time   *Field `json:"time,omitempty"`
	// Next is the link to the next page of slots (a calendar's next
	// month): while it shows, it is clicked and that page read too, up to
	// Pages pages (default 12).
	Next  *Marker `json:"next,omitempty"`
	Pages int     `json:"pages,omitempty"`
	// None, when set, is the portal's own word that no page has a free
	// slot (a "no appointment at the moment" popup): once ready, a page
	// showing it ends the list with no slot, without the next pages.
	None Marker `json:"none,omitzero"`
}

// Field is a value of a slot element: an attribute of it (Attr), or its
// text, of the element itself or of a descendant (CSS), parsed with a Go
// time layout (default 2006-01-02 for a date, 15:04 for a time).
type Field struct {
	CSS    string `json:"css,omitempty"`
	Attr   string `json:"attr,omitempty"`
	Layout string `json:"layout,omitempty"`
	// Regexp, when set, takes the value from its first group; no match
	// is no value (a time: none; a date: unreadable).
	Regexp string `json:"regexp,omitempty"`
}

// MessageExtract reads the slots from a text: every match of Regexp
// (case-insensitive; its first group is the date, in Layout) is a slot,
// and None is the text that says there is none.
type MessageExtract struct {
	// CSS is the element holding the text; default the whole page.
	CSS    string `json:"css,omitempty"`
	Regexp string `json:"regexp"`
	Layout string `json:"layout"`
	None   string `json:"none"`
	Failed Marker `json:"failed,omitzero"`
}

// JSONExtract fetches URL from the logged-in page and reads the dates at
// Path: keys separated by dots, every element of an array on the way
// ("date" over [{"date": ...}], "days.date" over {"days": [...]}).
type JSONExtract struct {
	URL    string `json:"url"`
	Path   string `json:"path"`
	Layout string `json:"layout,omitempty"`
}

// The step kinds, as written in a profile.
var stepKinds = []string{"goto", "fill", "click", "select", "wait", "extract", "request", "branch"}

// Kind is the step's kind, "" when none or several are set.
func (s *Step) Kind() string {
	var kinds []string
	add := func(set bool, k string) {
		if set {
			kinds = append(kinds, k)
		}
	}
	add(s.Goto != "", "goto")
	add(s.Fill != nil, "fill")
	add(s.Click != "", "click")
	add(s.Select != nil, "select")
	add(s.Wait != nil, "wait")
	add(s.Extract != nil, "extract")
	add(s.Request != "", "request")
	add(s.Branch != nil, "branch")
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// Loads reports whether the step loads a new page, which is classified.
func (s *Step) Loads() bool { return s.Goto != "" || (s.Click != "" && s.Expect != "") }

// Mission is a portal's own values for one mission.
type Mission struct {
	Centres        map[string]string `json:"centres,omitempty"`
	VisaCategories map[string]string `json:"visa_categories,omitempty"`
	Values         map[string]string `json:"values,omitempty"`
}

// Location is the profile's timezone.
func (p *Profile) Location() (*time.Location, error) {
	if p.Timezone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil || p.Timezone == "Local" {
		return nil, fmt.Errorf("timezone %q: want an IANA name such as Europe/London", p.Timezone)
	}
	return loc, nil
}

// PlaceholderRE finds {name} placeholders; a name starts with a letter,
// so that a regexp's {2} or {2,4} is no placeholder.
var PlaceholderRE = regexp.MustCompile(`\{[A-Za-z_][A-Za-z0-9_.]*\}`)

// Placeholders a flow may use; {mission.KEY} is checked against Missions.
const (
	PhEmail        = "{account.email}"
	PhPassword     = "{account.password}"
	PhMission      = "{mission}"
	PhCentre       = "{centre}"
	PhCategory     = "{visa_category}"
	PhCentreID     = "{centre.id}"
	PhCategoryID   = "{visa_category.id}"
	missionValueOf = "{mission."
	pageValueOf    = "{page."
)

// where says what a placeholder appears in, for the rules of placeholders.
type where struct {
	flow string
	fill bool // the value of a fill
}

// checkPlaceholders names the placeholders of s that do not exist, or may
// not be used where s is.
func (p *Profile) checkPlaceholders(field, s string, w where) []error {
	var errs []error
	for _, ph := range PlaceholderRE.FindAllString(s, -1) {
		switch {
		case ph == PhPassword && !w.fill:
			errs = append(errs, fmt.Errorf("%s: %s may only be the value of a fill, never in a URL, selector or text", field, ph))
		case ph == PhEmail || ph == PhPassword || ph == PhMission:
		case ph == PhCentre || ph == PhCategory || ph == PhCentreID || ph == PhCategoryID:
			if w.flow != "check" {
				errs = append(errs, fmt.Errorf("%s: %s exists in the check flow only", field, ph))
			}
		case strings.HasPrefix(ph, pageValueOf):
			key := strings.TrimSuffix(strings.TrimPrefix(ph, pageValueOf), "}")
			if !p.savesPageValue(key) {
				errs = append(errs, fmt.Errorf("%s: %s: no select keeps a value as %s", field, ph, key))
			}
		case strings.HasPrefix(ph, missionValueOf):
			key := strings.TrimSuffix(strings.TrimPrefix(ph, missionValueOf), "}")
			if !p.hasMissionValue(key) {
				errs = append(errs, fmt.Errorf("%s: %s: no mission defines values.%s", field, ph, key))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: unknown placeholder %s (want %s)", field, ph, strings.Join(
				[]string{PhEmail, PhPassword, PhMission, PhCentre, PhCategory, PhCentreID, PhCategoryID, "{mission.KEY}", "{page.AS}"}, ", ")))
		}
	}
	return errs
}

func (p *Profile) savesPageValue(key string) bool {
	if p.Flows == nil {
		return false
	}
	found := false
	f := Flows{Login: p.Flows.Login, Check: p.Flows.Check, Logout: p.Flows.Logout}
	f.walk(func(s *Step) { found = found || s.As == key })
	return found
}

func (p *Profile) hasMissionValue(key string) bool {
	for _, m := range p.Missions {
		if _, ok := m.Values[key]; ok {
			return true
		}
	}
	return false
}

// markerKinds are the built-in kinds a step may expect or wait for.
var markerKinds = []string{"logged_in", "bad_credentials", "blocked", "rate_limited", "captcha", "maintenance", "logged_out"}

// MarkersNamed returns the markers of a kind or custom name, and whether
// the name exists.
func (m *Markers) MarkersNamed(name string) ([]Marker, bool) {
	switch name {
	case "logged_in":
		return m.LoggedIn, true
	case "bad_credentials":
		return m.BadCredentials, true
	case "blocked":
		return m.Blocked, true
	case "rate_limited":
		return m.RateLimited, true
	case "captcha":
		return m.Captcha, true
	case "maintenance":
		return m.Maintenance, true
	case "logged_out":
		return m.LoggedOut, true
	}
	ms, ok := m.Custom[name]
	return ms, ok
}

// validateMarkers checks every marker: set, its regexp valid, its on
// naming a flow.
func (p *Profile) validateMarkers() []error {
	var errs []error
	ons := map[string]bool{"login": true, "check": true, "logout": true}
	if p.Flows == nil {
		for _, n := range []string{"login_page", "slot_page", "slots"} {
			ons[n] = true
		}
	} else {
		named := Flows{Login: cloneSteps(p.Flows.Login), Check: cloneSteps(p.Flows.Check), Logout: cloneSteps(p.Flows.Logout)}
		named.DefaultNames()
		named.walk(func(s *Step) { ons[s.Name] = true })
	}
	check := func(field string, ms []Marker) {
		for i, mk := range ms {
			f := fmt.Sprintf("%s[%d]", field, i)
			if mk.IsZero() {
				errs = append(errs, fmt.Errorf("%s is empty: set css, text, regexp or css with one of them", f))
			}
			if mk.Text != "" && mk.Regexp != "" {
				errs = append(errs, fmt.Errorf("%s: set text or regexp, not both", f))
			}
			if mk.Regexp != "" {
				if _, err := regexp.Compile(mk.Regexp); err != nil {
					errs = append(errs, fmt.Errorf("%s: regexp %q: %v", f, mk.Regexp, err))
				}
			}
			if mk.On != "" && !ons[mk.On] {
				errs = append(errs, fmt.Errorf("%s: on %q: want a flow (login, check, logout) or the name of a step", f, mk.On))
			}
		}
	}
	for _, k := range markerKinds {
		ms, _ := p.Markers.MarkersNamed(k)
		check("markers."+k, ms)
	}
	for _, name := range sortedKeys(p.Markers.Custom) {
		if slices.Contains(markerKinds, name) {
			errs = append(errs, fmt.Errorf("markers.custom.%s: the name is a built-in kind", name))
		}
		check("markers.custom."+name, p.Markers.Custom[name])
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// validateFlows checks a profile with flows.
func (p *Profile) validateFlows() []error {
	var errs []error
	if p.Login.URL != "" || p.Login.Email != "" || p.Logout.URL != "" || p.Logout.Selector != "" || p.Slots.URL != "" || p.Slots.Item != "" {
		errs = append(errs, errors.New("flows: a profile with flows has no login, logout or slots sections (those are the first shape's; logout: keep_session is the one logout it takes)"))
	}
	errs = append(errs, p.validateMarkers()...)
	if len(p.Flows.Login) == 0 {
		errs = append(errs, errors.New("flows.login needs at least one step"))
	}
	if len(p.Flows.Check) == 0 {
		errs = append(errs, errors.New("flows.check needs at least one step"))
	}
	names := map[string]string{}
	for _, fl := range []struct {
		name  string
		steps []Step
	}{{"login", p.Flows.Login}, {"check", p.Flows.Check}, {"logout", p.Flows.Logout}} {
		errs = append(errs, p.validateSteps("flows."+fl.name, fl.name, fl.steps, names)...)
	}
	if len(p.Flows.Check) > 0 && !hasExtract(p.Flows.Check) {
		errs = append(errs, errors.New("flows.check has no extract step: it would never read a slot"))
	}
	for _, code := range sortedKeys(p.Missions) {
		if strings.TrimSpace(code) == "" {
			errs = append(errs, errors.New("missions: a mission code is empty"))
		}
	}
	return errs
}

func hasExtract(steps []Step) bool {
	for _, s := range steps {
		if s.Extract != nil || (s.Branch != nil && (hasExtract(s.Branch.Then) || hasExtract(s.Branch.Else))) {
			return true
		}
	}
	return false
}

// StepName is the step's name, or its default from its place.
func StepName(s *Step, path string) string {
	if s.Name != "" {
		return s.Name
	}
	return path
}

// DefaultNames gives every unnamed step of the flows its default name:
// "<flow>.<n>", and "<parent>.then.<n>" / "<parent>.else.<n>" in a branch.
func (f *Flows) DefaultNames() {
	for _, fl := range []struct {
		name  string
		steps []Step
	}{{"login", f.Login}, {"check", f.Check}, {"logout", f.Logout}} {
		nameSteps(fl.name, fl.steps)
	}
}

// walk calls fn on every step, those of branches too.
func (f *Flows) walk(fn func(*Step)) {
	var rec func([]Step)
	rec = func(steps []Step) {
		for i := range steps {
			fn(&steps[i])
			if b := steps[i].Branch; b != nil {
				rec(b.Then)
				rec(b.Else)
			}
		}
	}
	rec(f.Login)
	rec(f.Check)
	rec(f.Logout)
}

func nameSteps(prefix string, steps []Step) {
	for i := range steps {
		s := &steps[i]
		if s.Name == "" {
			s.Name = fmt.Sprintf("%s.%d", prefix, i+1)
		}
		if s.Branch != nil {
			nameSteps(s.Name+".then", s.Branch.Then)
			nameSteps(s.Name+".else", s.Branch.Else)
		}
	}
}

var stepNameRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)

func (p *Profile) validateSteps(field, flow string, steps []Step, names map[string]string) []error {
	var errs []error
	for i := range steps {
		s := &steps[i]
		f := fmt.Sprintf("%s[%d]", field, i)
		add := func(err error) {
			if err != nil {
				errs = append(errs, err)
			}
		}
		if s.Name != "" {
			if !stepNameRE.MatchString(s.Name) {
				add(fmt.Errorf("%s.name %q: want lower case letters, digits, _ . - (at most 63)", f, s.Name))
			}
			if prev, ok := names[s.Name]; ok && prev != f {
				add(fmt.Errorf("%s.name %q: also the name of %s", f, s.Name, prev))
			}
			names[s.Name] = f
		}
		if s.Timeout < 0 {
			add(fmt.Errorf("%s.timeout must be positive", f))
		}
		kind := s.Kind()
		if kind == "" {
			add(fmt.Errorf("%s: set exactly one of %s", f, strings.Join(stepKinds, ", ")))
			continue
		}
		ph := func(sub, v string, fill bool) {
			errs = append(errs, p.checkPlaceholders(f+"."+sub, v, where{flow: flow, fill: fill})...)
		}
		if s.As != "" && (kind != "select" && !s.Loads() || !stepNameRE.MatchString(s.As)) {
			add(fmt.Errorf("%s.as %q: a select, or a goto or click with expect, keeps a value under a lower case name", f, s.As))
		}
		if s.Within != nil && kind != "click" {
			add(fmt.Errorf("%s.within: only a click looks within an element", f))
		}
		if s.Expect != "" {
			if kind != "goto" && kind != "click" {
				add(fmt.Errorf("%s.expect: only a goto or a click loads a page to expect", f))
			}
			add(p.checkMarkerName(f+".expect", s.Expect))
		} else if kind == "goto" {
			add(fmt.Errorf("%s: a goto needs expect, the marker of the page it opens", f))
		}
		switch kind {
		case "goto":
			ph("goto", s.Goto, false)
		case "request":
			ph("request", s.Request, false)
		case "click":
			ph("click", s.Click, false)
			if s.Within != nil {
				if s.Within.CSS == "" || (s.Within.Text == "" && s.Within.Regexp == "") {
					add(fmt.Errorf("%s.within: set css and text (or regexp)", f))
				}
				ph("within.text", s.Within.Text, false)
				ph("within.regexp", s.Within.Regexp, false)
				if _, err := regexp.Compile(s.Within.Regexp); err != nil {
					add(fmt.Errorf("%s.within.regexp %q: %v", f, s.Within.Regexp, err))
				}
			}
		case "fill":
			if s.Fill.Selector == "" {
				add(fmt.Errorf("%s.fill.selector is required", f))
			}
			ph("fill.selector", s.Fill.Selector, false)
			ph("fill.value", s.Fill.Value, true)
		case "select":
			if s.Select.Selector == "" || s.Select.Option == "" {
				add(fmt.Errorf("%s.select: selector and option are required", f))
			}
			ph("select.selector", s.Select.Selector, false)
			ph("select.option", s.Select.Option, false)

		case "wait":
			w := s.Wait
			n := 0
			for _, set := range []bool{w.Selector != "", w.Text != "", w.Marker != "", w.NetworkIdle} {
				if set {
					n++
				}
			}
			if n != 1 {
				add(fmt.Errorf("%s.wait: set one of selector, text, marker, network_idle", f))
			}
			if w.Marker != "" {
				add(p.checkMarkerName(f+".wait.marker", w.Marker))
			}
			ph("wait.text", w.Text, false)
			ph("wait.selector", w.Selector, false)
		case "branch":
			add(p.checkMarkerName(f+".branch.if", s.Branch.If))
			if len(s.Branch.Then) == 0 && len(s.Branch.Else) == 0 {
				add(fmt.Errorf("%s.branch: then and else are both empty", f))
			}
			errs = append(errs, p.validateSteps(f+".branch.then", flow, s.Branch.Then, names)...)
			errs = append(errs, p.validateSteps(f+".branch.else", flow, s.Branch.Else, names)...)
		case "extract":
			if flow != "check" {
				add(fmt.Errorf("%s: extract belongs in the check flow", f))
			}
			errs = append(errs, p.validateExtract(f+".extract", s.Extract)...)
		}
	}
	return errs
}

// checkGroupRegexp checks an optional regexp whose first group is a value.
func checkGroupRegexp(field, expr string) []error {
	if expr == "" {
		return nil
	}
	re, err := regexp.Compile(expr)
	switch {
	case err != nil:
		return []error{fmt.Errorf("%s %q: %v", field, expr, err)}
	case re.NumSubexp() < 1:
		return []error{fmt.Errorf("%s %q: its first group must capture the value", field, expr)}
	}
	return nil
}

func (p *Profile) checkMarkerName(field, name string) error {
	if _, ok := p.Markers.MarkersNamed(name); !ok {
		return fmt.Errorf("%s: no marker named %q (a kind such as logged_in, or one of markers.custom)", field, name)
	}
	return nil
}

func (p *Profile) validateExtract(f string, e *Extract) []error {
	var errs []error
	n := 0
	for _, set := range []bool{e.List != nil, e.Message != nil, e.JSON != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return []error{fmt.Errorf("%s: set one of list, message, json", f)}
	}
	ph := func(sub, v string) {
		errs = append(errs, p.checkPlaceholders(f+"."+sub, v, where{flow: "check"})...)
	}
	switch {
	case e.List != nil:
		l := e.List
		if l.Ready.IsZero() {
			errs = append(errs, fmt.Errorf("%s.list.ready is required: the marker of loaded dates", f))
		}
		if l.Item == "" {
			errs = append(errs, fmt.Errorf("%s.list.item is required", f))
		}
		ph("list.item", l.Item)
		if err := checkLayout(f+".list.date.layout", l.Date.Layout, true); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, checkGroupRegexp(f+".list.date.regexp", l.Date.Regexp)...)
		if l.Time != nil {
			if err := checkLayout(f+".list.time.layout", l.Time.Layout, false); err != nil {
				errs = append(errs, err)
			}
			errs = append(errs, checkGroupRegexp(f+".list.time.regexp", l.Time.Regexp)...)
		}
		if l.Next != nil && (l.Next.IsZero() || l.Next.CSS == "") {
			errs = append(errs, fmt.Errorf("%s.list.next: set css (and text or regexp)", f))
		}
		if l.Pages < 0 || l.Pages > 60 {
			errs = append(errs, fmt.Errorf("%s.list.pages: want 1 to 60", f))
		}
	case e.Message != nil:
		m := e.Message
		re, err := regexp.Compile(m.Regexp)
		switch {
		case m.Regexp == "":
			errs = append(errs, fmt.Errorf("%s.message.regexp is required", f))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.message.regexp %q: %v", f, m.Regexp, err))
		case re.NumSubexp() < 1:
			errs = append(errs, fmt.Errorf("%s.message.regexp %q: its first group must capture the date", f, m.Regexp))
		}
		if m.None == "" {
			errs = append(errs, fmt.Errorf("%s.message.none is required: the text that says there is no slot", f))
		}
		if err := checkLayout(f+".message.layout", m.Layout, true); err != nil {
			errs = append(errs, err)
		}
		ph("message.regexp", m.Regexp)
	case e.JSON != nil:
		j := e.JSON
		if j.URL == "" || j.Path == "" {
			errs = append(errs, fmt.Errorf("%s.json: url and path are required", f))
		}
		ph("json.url", j.URL)
		if err := checkLayout(f+".json.layout", j.Layout, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// layoutProbe is a moment whose every element differs, so that a layout
// that loses the date (or the time) does not read it back.
var layoutProbe = time.Date(2027, time.November, 23, 17, 48, 0, 0, time.UTC)

// checkLayout checks that a Go time layout writes and reads back a date
// (or, for a time layout, the hour and minute). Empty is the default.
func checkLayout(field, layout string, date bool) error {
	if layout == "" {
		return nil
	}
	got, err := time.Parse(layout, layoutProbe.Format(layout))
	switch {
	case err != nil:
		return fmt.Errorf("%s %q: not a Go time layout: %v", field, layout, err)
	case date && (got.Year() != layoutProbe.Year() || got.YearDay() != layoutProbe.YearDay()):
		return fmt.Errorf("%s %q: does not hold a whole date (write it with 2006, 01 or Jan, 02)", field, layout)
	case !date && (got.Hour() != layoutProbe.Hour() || got.Minute() != layoutProbe.Minute()):
		return fmt.Errorf("%s %q: does not hold an hour and minute (write it with 15:04)", field, layout)
	}
	return nil
}

// urlFields are every URL of the profile, named by their field.
func (p *Profile) urlFields() []struct{ field, ref string } {
	out := []struct{ field, ref string }{
		{"login.url", p.Login.URL},
		{"logout.url", p.Logout.URL},
		{"slots.url", p.Slots.URL},
	}
	if p.Flows == nil {
		return out
	}
	var walk func(field string, steps []Step)
	walk = func(field string, steps []Step) {
		for i, s := range steps {
			f := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case s.Goto != "":
				out = append(out, struct{ field, ref string }{f + ".goto", s.Goto})
			case s.Request != "":
				out = append(out, struct{ field, ref string }{f + ".request", s.Request})
			case s.Extract != nil && s.Extract.JSON != nil:
				out = append(out, struct{ field, ref string }{f + ".extract.json.url", s.Extract.JSON.URL})
			case s.Branch != nil:
				walk(f+".branch.then", s.Branch.Then)
				walk(f+".branch.else", s.Branch.Else)
			}
		}
	}
	walk("flows.login", p.Flows.Login)
	walk("flows.check", p.Flows.Check)
	walk("flows.logout", p.Flows.Logout)
	return out
}
