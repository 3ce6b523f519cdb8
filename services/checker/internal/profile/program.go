package profile

import (
	"slices"
	"time"
)

// Program is what the driver runs: the flows, every step named, the
// markers they use, and the timezone of the portal's dates.
type Program struct {
	Flows    Flows
	Markers  Markers
	Location *time.Location
	// KeepSession: a check does not log out; the portal session is kept
	// for the account's next check (logout: keep_session), for at most
	// SessionMaxAge (0: the pool's default).
	KeepSession   bool
	SessionMaxAge time.Duration
	// KeepLocalStorage: the kept session has the local storage of the
	// page the check ended on too (session_local_storage).
	KeepLocalStorage bool
}

// The custom markers of a first-shape profile's flows.
const (
	LoginFormMarker = "login_form"
	SlotFormMarker  = "slot_form"
)

// Program returns the profile's flows, or for a profile in the first shape
// the flows that shape stands for: open the login page, fill and submit
// the form (bad_credentials looked for on its answer only), open the slot
// page, choose the centre and category, click submit, read the dated
// elements, log out. A login form on a page of the check flow means the
// portal ended the session. The profile must be valid.
func (p *Profile) Program() *Program {
	loc, err := p.Location()
	if err != nil {
		loc = time.UTC // Validate reported it
	}
	prog := &Program{Markers: p.Markers, Location: loc, KeepSession: p.Logout.Keep, SessionMaxAge: p.SessionMaxAge.D(),
		KeepLocalStorage: p.Logout.Keep && p.SessionLocalStorage}
	prog.Markers.Custom = make(map[string][]Marker, len(p.Markers.Custom)+2)
	for k, v := range p.Markers.Custom {
		prog.Markers.Custom[k] = v
	}
	if p.Flows != nil {
		prog.Flows = Flows{Login: cloneSteps(p.Flows.Login), Check: cloneSteps(p.Flows.Check), Logout: cloneSteps(p.Flows.Logout)}
		prog.Flows.DefaultNames()
		return prog
	}

	l, s := p.Login, p.Slots
	prog.Markers.Custom[LoginFormMarker] = []Marker{{CSS: l.Email}}
	prog.Markers.Custom[SlotFormMarker] = []Marker{{CSS: s.Centre}}
	prog.Markers.BadCredentials = scoped(p.Markers.BadCredentials, "login")
	prog.Markers.LoggedOut = append(scoped(p.Markers.LoggedOut, "check"), Marker{CSS: l.Email, On: "check"})
	prog.Flows.Login = []Step{
		{Name: "login_page", Goto: l.URL, Expect: LoginFormMarker},
		{Name: "login", Fill: &Fill{Selector: l.Email, Value: PhEmail}},
		{Name: "login", Fill: &Fill{Selector: l.Password, Value: PhPassword}},
		{Name: "login", Click: l.Submit, Expect: "logged_in"},
	}
	check := []Step{
		{Name: "slot_page", Goto: s.URL, Expect: SlotFormMarker},
		{Name: "slots", Select: &Select{Selector: s.Centre, Option: PhCentre}},
		{Name: "slots", Select: &Select{Selector: s.VisaCategory, Option: PhCategory}},
	}
	if s.Submit != "" {
		check = append(check, Step{Name: "slots", Click: s.Submit})
	}
	list := &ListExtract{Ready: s.Ready, Failed: s.Failed, Item: s.Item, Date: Field{Attr: s.DateAttr}}
	if s.TimeAttr != "" {
		list.Time = &Field{Attr: s.TimeAttr}
	}
	prog.Flows.Check = append(check, Step{Name: "slots", Extract: &Extract{List: list}})
	switch {
	case p.Logout.Keep:
	case p.Logout.URL != "":
		prog.Flows.Logout = []Step{{Name: "logout", Request: p.Logout.URL}}
	default:
		prog.Flows.Logout = []Step{{Name: "logout", Click: p.Logout.Selector, Expect: LoginFormMarker}}
	}
	return prog
}

// scoped returns copies of markers without an on of their own limited to
// a flow.
func scoped(ms []Marker, flow string) []Marker {
	out := slices.Clone(ms)
	for i := range out {
		if out[i].On == "" {
			out[i].On = flow
		}
	}
	return out
}

func cloneSteps(steps []Step) []Step {
	out := slices.Clone(steps)
	for i := range out {
		if b := out[i].Branch; b != nil {
			cp := *b
			cp.Then, cp.Else = cloneSteps(b.Then), cloneSteps(b.Else)
			out[i].Branch = &cp
		}
	}
	return out
}

// Applies reports whether a marker applies on a step of a flow: its on
// names the flow or the step, or it has no on and its kind applies there
// (defaultFlow "" means everywhere).
func (m Marker) Applies(flow, step, defaultFlow string) bool {
	if m.On != "" {
		return m.On == flow || m.On == step
	}
	return defaultFlow == "" || defaultFlow == flow
}
