package portal

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chromedp/chromedp"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
)

// The step engine: it runs the profile's flows (profile.Program) on the
// tab, with the machinery of check.go and page.go for every page it loads.

// flowEnd is how a run of steps ended.
type flowEnd int

const (
	flowDone       flowEnd = iota // every step ran
	flowNotOffered                // the portal does not offer the query: skip it
	flowStop                      // the check ended (c.res says how)
)

// run restores the account's session state, if it has one, and runs the
// check flow straight away; only when a page of it says the portal logged
// the session out (logged_out markers) does it log in, and runs the check
// flow again, in the same check. Without a session state it logs in first.
// When the account may not log in (its login budget is spent), a dead
// session ends the check with ReasonLoginBudget instead.
func (c *check) run(queries []Query) {
	prog := c.d.prog
	c.saved = map[string]string{}
	restored := false
	if len(c.acct.Session) > 0 {
		if err := c.restoreSession(c.acct.Session); err != nil {
			// A state that does not restore is no session: log in.
			c.d.log.Info("session state not restored; logging in", "account", c.acct, "mission", c.mission, "err", err)
		} else {
			restored = true
		}
	}
	if !restored && c.acct.NoLogin {
		c.res.SessionEnded = len(c.acct.Session) > 0 // a state that does not restore is dead
		c.res.Outcome, c.res.Reason = Error, ReasonLoginBudget
		c.res.Detail = "the account has no usable session, and its login budget is spent: not logging in"
		return
	}
	// Nothing was sent to the portal so far (restoring a session is the
	// browser's business); the first step of a flow sends something.
	if !c.confirm() {
		return
	}
	if restored {
		if c.checkFlow(queries); c.res.Reason != ReasonLoggedOut {
			c.res.SessionReused, c.res.LoggedIn = true, true
			return
		}
		c.res.SessionEnded = true
		if c.acct.NoLogin {
			c.res.Outcome, c.res.Reason = Error, ReasonLoginBudget
			c.res.Detail = "the portal had logged the session out, and the account's login budget is spent: not logging in"
			return
		}
		// Log in and check again; the slots read so far are read again,
		// and the new session replaces the dead one. Until it does (the
		// login may fail), the dead one is still over.
		c.res = Result{SessionEnded: true}
		c.saved = map[string]string{}
	}
	c.flow = "login"
	c.res.Login = true
	if c.steps(prog.Flows.Login) != flowDone {
		return
	}
	c.res.LoggedIn = true
	c.checkFlow(queries)
}

// confirm asks the check's gate whether it may go to the portal; false
// ends the check called off.
func (c *check) confirm() bool {
	if c.gate == nil {
		return true
	}
	err := c.gate(c.ctx)
	if err == nil {
		return true
	}
	c.res.Outcome, c.res.Reason = Error, ReasonCalledOff
	c.res.Detail = fmt.Sprintf("called off before opening the portal: %v", err)
	return false
}

// checkFlow runs the check flow for every query, then says what was found.
func (c *check) checkFlow(queries []Query) {
	prog := c.d.prog
	c.flow = "check"
	for _, q := range queries {
		c.query = q
		qr := QueryResult{Query: q, Offered: true}
		before := len(c.res.Slots)
		end := c.steps(prog.Flows.Check)
		switch end {
		case flowNotOffered:
			qr.Offered = false
		case flowDone:
			qr.Checked, qr.Slots = true, len(c.res.Slots)-before
		}
		c.res.Queries = append(c.res.Queries, qr)
		if end == flowStop {
			return
		}
	}
	c.res.Step = "done"
	c.res.Outcome = NoSlot
	if len(c.res.Slots) > 0 {
		c.res.Outcome = Success
	}
	c.res.Detail = fmt.Sprintf("%d free slots", len(c.res.Slots))
	for _, q := range c.res.Queries {
		if !q.Offered {
			c.res.Detail += fmt.Sprintf("; the slot page offers no %q / %q", q.Centre, q.VisaCategory)
		}
	}
}

// logout runs the logout flow on the tab's context after the result has
// been returned (see CheckMission). It is a courtesy to the portal: the
// browser context is discarded anyway, so a failure is logged, not
// reported.
func (c *check) logout(tabCtx context.Context) {
	ctx, cancel := context.WithTimeout(tabCtx, c.d.prof.Timeouts.Logout.D())
	defer cancel()
	lc := &check{d: c.d, ctx: ctx, acct: c.acct, mission: c.mission, flow: "logout", courtesy: true}
	if lc.steps(c.d.prog.Flows.Logout) != flowDone {
		c.d.log.Info("logout failed", "account", c.acct, "mission", c.mission, "step", lc.res.Step,
			"err", redactDetail(lc.res.Detail, c.acct.Password))
	}
}

func (c *check) steps(steps []profile.Step) flowEnd {
	for i := range steps {
		s := &steps[i]
		start, before := time.Now(), len(c.res.Slots)
		c.seen = ""
		end := c.step(s)
		if c.d.trace != nil {
			c.traceStep(s, time.Since(start), c.res.Slots[before:], end)
		}
		if end != flowDone {
			return end
		}
	}
	return flowDone
}

// traceStep tells Config.Trace of a step, with the page as it is after
// it saved in the trace folder.
func (c *check) traceStep(s *profile.Step, took time.Duration, slots []Slot, end flowEnd) {
	tr := StepTrace{Flow: c.flow, Step: s.Name, Kind: s.Kind(), Took: took, Page: c.seen, Slots: slices.Clone(slots)}
	switch end {
	case flowNotOffered:
		tr.End = "not offered"
	case flowStop:
		tr.End = fmt.Sprintf("%s/%s: %s", c.res.Outcome, c.res.Reason, redactDetail(c.res.Detail, c.acct.Password))
	}
	base := filepath.Join(c.d.traceDir, fmt.Sprintf("%02d-%s-%s", c.d.traced.Add(1), c.flow, safeName(s.Name)))
	if html, err := within(c, 5*time.Second, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.outerHTML : ""`)); err == nil {
		if os.WriteFile(base+".html", []byte(redactSecret(html, c.acct.Password)), 0o600) == nil {
			tr.HTML = base + ".html"
		}
	}
	if png, err := within(c, 5*time.Second, c.screenshot); err == nil {
		if os.WriteFile(base+".png", png, 0o600) == nil {
			tr.Screenshot = base + ".png"
		}
	}
	c.d.trace(tr)
}

// timeout is a step's own, or def.
func timeout(s *profile.Step, def profile.Duration) time.Duration {
	if s.Timeout > 0 {
		return s.Timeout.D()
	}
	return def.D()
}

func (c *check) step(s *profile.Step) flowEnd {
	p := c.d.prof
	c.res.Step = s.Name
	switch s.Kind() {
	case "goto":
		u, ok := c.expandURL(s.Goto)
		if !ok {
			return flowNotOffered
		}
		loadBy, err := c.navigate(u, timeout(s, p.Timeouts.Page))
		if err != nil {
			c.failNav(err)
			return flowStop
		}
		return c.expectPage(s, loadBy)
	case "click":
		sel, ok := c.expand(s.Click, nil)
		if !ok {
			return flowNotOffered
		}
		act := click(sel)
		if s.Within != nil {
			// A regexp's values are quoted: "B1/B2" or "A.1" match as
			// written.
			w, okRegexp := *s.Within, false
			w.Text, ok = c.expand(w.Text, nil)
			if w.Regexp, okRegexp = c.expand(w.Regexp, regexp.QuoteMeta); !ok || !okRegexp {
				return flowNotOffered
			}
			act = clickWithin(sel, w)
		}
		if s.Expect == "" {
			return c.act(s, act)
		}
		ctx, cancel := context.WithTimeout(c.ctx, timeout(s, p.Timeouts.Page))
		defer cancel()
		if err := c.load(ctx, act); err != nil {
			c.failNav(fmt.Errorf("click %s: %w", sel, err))
			return flowStop
		}
		loadBy, _ := ctx.Deadline()
		return c.expectPage(s, loadBy)
	case "fill":
		sel, ok1 := c.expand(s.Fill.Selector, nil)
		val, ok2 := c.expand(s.Fill.Value, nil)
		if !ok1 || !ok2 {
			return flowNotOffered
		}
		return c.act(s, fill(sel, val))
	case "request":
		u, ok := c.expandURL(s.Request)
		if !ok {
			return flowNotOffered
		}
		return c.request(s, u)
	case "select":
		return c.selectOption(s)
	case "wait":
		return c.wait(s)
	case "branch":
		return c.branch(s)
	case "extract":
		return c.extract(s)
	}
	c.res.Outcome, c.res.Reason, c.res.Detail = Error, ReasonProfile, fmt.Sprintf("%s: not a step", s.Name)
	return flowStop
}

// request sends a request step's fetch from the page. A fetch that is
// rejected got no answer (a network error; the rejection's message is not
// read): the portal could not be reached at that step.
func (c *check) request(s *profile.Step, u string) flowEnd {
	ctx, cancel := context.WithTimeout(c.ctx, timeout(s, c.d.prof.Timeouts.Page))
	defer cancel()
	answered, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
		`fetch(%s, {credentials: "include", redirect: "manual", cache: "no-store"}).then(function () { return true; }, function () { return false; })`,
		jsString(u)), awaitPromise))
	if err == nil && !answered {
		err = &chromedp.LoadError{}
	}
	if err != nil {
		c.failNav(err)
		return flowStop
	}
	return flowDone
}

// act runs an action that loads no page, bounded by the page timeout.
func (c *check) act(s *profile.Step, a chromedp.Action[chromedp.Void]) flowEnd {
	ctx, cancel := context.WithTimeout(c.ctx, timeout(s, c.d.prof.Timeouts.Page))
	defer cancel()
	if err := chromedp.Do(ctx, a); err != nil {
		c.failNav(err)
		return flowStop
	}
	return flowDone
}

// expand replaces the placeholders of v, each value passed through esc
// (nil: as it is). It is false when the mission or query has no value
// for a placeholder: the portal does not offer it.
func (c *check) expand(v string, esc func(string) string) (string, bool) {
	if !strings.Contains(v, "{") {
		return v, true
	}
	m := c.d.prof.Missions[c.mission]
	ok := true
	out := profile.PlaceholderRE.ReplaceAllStringFunc(v, func(ph string) string {
		var val string
		switch ph {
		case profile.PhEmail:
			val = c.acct.Email
		case profile.PhPassword:
			val = c.acct.Password
		case profile.PhMission:
			val = c.mission
		case profile.PhCentre:
			val = c.query.Centre
		case profile.PhCategory:
			val = c.query.VisaCategory
		case profile.PhCentreID:
			val, ok = lookup(m.Centres, c.query.Centre, ok)
		case profile.PhCategoryID:
			val, ok = lookup(m.VisaCategories, c.query.VisaCategory, ok)
		case "{page." + strings.TrimPrefix(ph, "{page."):
			// The portal's own value, as it gave it: not escaped again.
			v, found := c.saved[strings.TrimSuffix(strings.TrimPrefix(ph, "{page."), "}")]
			ok = ok && found
			return v
		default:
			key := strings.TrimSuffix(strings.TrimPrefix(ph, "{mission."), "}")
			val, ok = lookup(m.Values, key, ok)
		}
		if esc != nil {
			return esc(val)
		}
		return val
	})
	return out, ok
}

func lookup(m map[string]string, k string, ok bool) (string, bool) {
	v, found := m[k]
	return v, ok && found
}

// expandURL expands a URL of the profile, each value path-escaped, and
// resolves it against the base URL.
func (c *check) expandURL(ref string) (string, bool) {
	u, ok := c.expand(ref, url.PathEscape)
	return c.d.prof.URL(u), ok
}

// kinds are the markers that end a step wherever they show: the trouble
// kinds, then logged_out (by default in the check flow) and
// bad_credentials (by default in the login flow), each filtered by on.
func (c *check) kinds(step string) []matcher {
	m := c.d.prog.Markers
	out := []matcher{} // JSON [], never null, for the page script
	for _, k := range []struct {
		name, defaultFlow string
		markers           []profile.Marker
	}{
		{pageCaptcha, "", m.Captcha},
		{pageBlocked, "", m.Blocked},
		{pageRateLimited, "", m.RateLimited},
		{pageMaintenance, "", m.Maintenance},
		{pageLoggedOut, "check", m.LoggedOut},
		{pageBadCredentials, "login", m.BadCredentials},
	} {
		if ms := c.applying(k.markers, step, k.defaultFlow); len(ms) > 0 {
			out = append(out, matcher{k.name, ms})
		}
	}
	return out
}

func (c *check) applying(ms []profile.Marker, step, defaultFlow string) []profile.Marker {
	var out []profile.Marker
	for _, mk := range ms {
		if mk.Applies(c.flow, step, defaultFlow) {
			out = append(out, mk)
		}
	}
	return out
}

// named returns the markers of a name that apply on a step.
func (c *check) named(name, step string) []profile.Marker {
	ms, _ := c.d.prog.Markers.MarkersNamed(name)
	return c.applying(ms, step, "")
}

// expectPage classifies the page a step loaded: the step's expected
// marker lets the flow go on, any other page ends the check.
func (c *check) expectPage(s *profile.Step, loadBy time.Time) flowEnd {
	kinds := append(c.kinds(s.Name), matcher{s.Expect, c.named(s.Expect, s.Name)})
	pg, err := c.classify(kinds, loadBy)
	if err != nil {
		c.failNav(err)
		return flowStop
	}
	c.seen = pageKind(pg)
	c.d.pageSeen(s.Name, c.seen)
	if pg.Kind != s.Expect {
		c.endOn(pg.Kind, pg.Status)
		return flowStop
	}
	if s.Expect == pageLoggedIn {
		c.res.LoggedIn = true
	}
	if s.As != "" {
		u, err := within(c, 2*time.Second, chromedp.Location())
		p, perr := url.Parse(u)
		if err != nil || perr != nil {
			c.failNav(fmt.Errorf("%s: read the page's URL: %w", s.Name, errors.Join(err, perr)))
			return flowStop
		}
		c.saved[s.As] = p.RequestURI() // resolved against base_url when used
	}
	return flowDone
}

// selectOption chooses an option by value or label (see profile.Select),
// firing the events a user's choice fires.
func (c *check) selectOption(s *profile.Step) flowEnd {
	sel, ok1 := c.expand(s.Select.Selector, nil)
	want, ok2 := c.expand(s.Select.Option, nil)
	if !ok1 || !ok2 {
		return flowNotOffered
	}
	wait := s.Timeout.D() // waits for the option only when the profile says how long
	body := fmt.Sprintf(`var sel = %s, want = %s, kinds = %s, ms = %d;
function norm(s) { return String(s || "").replace(/\s+/g, " ").trim().toLowerCase(); }
function pick() {
  var k = __kind(kinds);
  if (k) { return {state: k}; }
  var el = document.querySelector(sel);
  if (!el) { return {state: "no element " + sel, more: true}; }
  var opts = Array.prototype.slice.call(el.options || []);
  var opt = opts.filter(function (o) { return o.value === want; })[0] ||
            opts.filter(function (o) { return norm(o.text) === norm(want); })[0];
  if (!opt) { return {state: "not_offered", more: true}; }
  el.value = opt.value;
  el.dispatchEvent(new Event("input", {bubbles: true}));
  el.dispatchEvent(new Event("change", {bubbles: true}));
  return {state: "ready", text: opt.value};
}
var last = pick();
if (!last.more || ms <= 0) { return last; }
return __wait(function () { var r = pick(); if (!r.more) { return r; } last = r; return null; }, ms).then(function (v) { return v || last; });`,
		jsString(sel), jsString(want), mustJSON(c.kinds(s.Name)), wait.Milliseconds())
	ctx, cancel := context.WithTimeout(c.ctx, wait+c.d.prof.Timeouts.Page.D())
	defer cancel()
	res, err := await(ctx, body)
	switch {
	case err != nil:
		c.failNav(fmt.Errorf("select %s: %w", sel, err))
		return flowStop
	case res.State == "ready":
		if s.As != "" {
			c.saved[s.As] = res.Text
		}
		return flowDone
	case res.State == "" || res.State == "not_offered":
		return flowNotOffered
	case strings.HasPrefix(res.State, "no element "): // the profile does not fit the page
		c.d.pageSeen(s.Name, "unknown")
		c.unknownPage(fmt.Sprintf("%s: %s", s.Name, res.State))
		return flowStop
	default:
		c.seen = res.State
		c.d.pageSeen(s.Name, res.State)
		c.endOn(res.State, 0)
		return flowStop
	}
}

// wait waits for the step's condition; a trouble marker ends it.
func (c *check) wait(s *profile.Step) flowEnd {
	w := s.Wait
	args := map[string]any{"kinds": c.kinds(s.Name), "idle": w.NetworkIdle}
	switch {
	case w.Selector != "":
		args["marker"] = []profile.Marker{{CSS: w.Selector}}
	case w.Text != "":
		t, _ := c.expand(w.Text, nil)
		args["marker"] = []profile.Marker{{Text: t}}
	case w.Marker != "":
		args["marker"] = c.named(w.Marker, s.Name)
	}
	return c.waitFor(s, args, `
  if (a.idle) {
    var n = performance.getEntriesByType("resource").length;
    if (document.readyState !== "complete" || n !== idleCount) { idleCount = n; idleSince = Date.now(); return null; }
    return Date.now() - idleSince >= 500 ? {state: "ready"} : null;
  }
  for (var i = 0; i < a.marker.length; i++) { if (__matches(a.marker[i])) { return {state: "ready"}; } }
  return null;`)
}

// waitFor waits in the page until the trouble kinds of args match, or
// the check (JavaScript with args as a, returning a lookResult or null)
// does. It ends the check on trouble, a timeout or a failed wait.
func (c *check) waitFor(s *profile.Step, args map[string]any, check string) flowEnd {
	_, end := c.waitResult(s, args, true, check)
	return end
}

// waitResult is waitFor, giving what the check resolved with. A wait
// step's timeout (unknownOnTimeout) means the page never became what the
// profile expects: an unknown page; an extract's is a timeout.
func (c *check) waitResult(s *profile.Step, args map[string]any, unknownOnTimeout bool, check string) (lookResult, flowEnd) {
	d := timeout(s, c.d.prof.Timeouts.Slots)
	body := fmt.Sprintf(`var a = %s, idleCount = -1, idleSince = 0;
return __wait(function () {
  var k = __kind(a.kinds);
  if (k) { return {state: k}; }
  if (a.failed && __matches(a.failed)) { return {state: "failed"}; }
%s
}, %d);`, mustJSON(args), check, d.Milliseconds())
	ctx, cancel := context.WithTimeout(c.ctx, d+2*time.Second)
	defer cancel()
	res, err := await(ctx, body)
	if err == nil && res.State == "" {
		err = fmt.Errorf("%s: waited %s: %w", s.Name, d, context.DeadlineExceeded)
	}
	c.seen = res.State
	switch {
	case err != nil && unknownOnTimeout && errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil:
		// What the page's script waits for, which the page does not say:
		// a slow answer is a timeout, a 429 it drew as its own error a
		// rate limit, a 403 a block, a 5xx a server error (statusKind);
		// else the page is not what the profile expects.
		switch inFlight, status := c.retry.scripts(); {
		case inFlight > 0:
			c.failNav(fmt.Errorf("%s: %d script requests of the page still unanswered after %s: %w", s.Name, inFlight, d, context.DeadlineExceeded))
		case statusKind(status) != "":
			c.seen = statusKind(status)
			c.d.pageSeen(s.Name, c.seen)
			c.endOn("", status)
		default:
			c.seen = "unknown"
			c.d.pageSeen(s.Name, c.seen)
			c.unknownPage(fmt.Sprintf("%s: the page did not show what the step waits for within %s", s.Name, d))
		}
		return res, flowStop
	case err != nil:
		c.failNav(err)
		return res, flowStop
	case res.State == "ready":
		return res, flowDone
	case res.State == "failed":
		c.res.Outcome, c.res.Reason = Error, ReasonSlotsFailed
		c.res.Detail = "the slot page says loading the dates failed"
		c.res.URL = c.location()
		c.saveArtifacts()
		return res, flowStop
	default:
		c.d.pageSeen(s.Name, res.State)
		c.endOn(res.State, 0)
		return res, flowStop
	}
}

// pageKind is the drift metric's kind of a classified page.
func pageKind(pg lookResult) string {
	switch {
	case pg.Kind != "":
		return pg.Kind
	case statusKind(pg.Status) != "":
		return statusKind(pg.Status)
	}
	return "unknown"
}

// branch runs Then when its marker matches the page now, else Else.
func (c *check) branch(s *profile.Step) flowEnd {
	body := fmt.Sprintf(`var ms = %s;
for (var i = 0; i < ms.length; i++) { if (__matches(ms[i])) { return {state: "then"}; } }
return {state: "else"};`, mustJSON(c.named(s.Branch.If, s.Name)))
	ctx, cancel := context.WithTimeout(c.ctx, c.d.prof.Timeouts.Page.D())
	defer cancel()
	res, err := await(ctx, body)
	if err != nil {
		c.failNav(fmt.Errorf("branch on %s: %w", s.Branch.If, err))
		return flowStop
	}
	branch := s.Branch.Else
	if res.State == "then" {
		branch = s.Branch.Then
	}
	end := c.steps(branch)
	c.seen = res.State // what the branch saw, not its last step
	return end
}

// extract reads the slots of the query one of the three ways.
func (c *check) extract(s *profile.Step) flowEnd {
	e := s.Extract
	kinds := c.kinds(s.Name)
	switch {
	case e.List != nil:
		return c.extractList(s, kinds)
	case e.Message != nil:
		return c.extractMessage(s, kinds)
	default:
		return c.extractJSON(s)
	}
}

// extractList reads one element per slot, page after page while the
// list has a next link.
func (c *check) extractList(s *profile.Step, kinds []matcher) flowEnd {
	l := s.Extract.List
	args := map[string]any{"kinds": kinds, "ready": l.Ready, "item": l.Item, "date": l.Date}
	if !l.Failed.IsZero() {
		args["failed"] = l.Failed
	}
	if !l.None.IsZero() {
		args["none"] = l.None
	}
	if l.Time != nil {
		args["time"] = *l.Time
	}
	pages := 1
	if l.Next != nil {
		args["next"] = *l.Next
		pages = cmp.Or(l.Pages, 12)
	}
	dateLayout, timeLayout := orDefault(l.Date.Layout, time.DateOnly), "15:04"
	var dateRE, timeRE *regexp.Regexp
	if l.Date.Regexp != "" {
		dateRE = regexp.MustCompile(l.Date.Regexp) // Validate compiled it
	}
	if l.Time != nil {
		timeLayout = orDefault(l.Time.Layout, timeLayout)
		if l.Time.Regexp != "" {
			timeRE = regexp.MustCompile(l.Time.Regexp)
		}
	}
	for page := 1; ; page++ {
		res, end := c.waitResult(s, args, false, `
  if (!__matches(a.ready)) { return null; }
  if (a.none && __matches(a.none)) { return {state: "ready", items: [], more: false}; }
  function field(e, f) {
    var el = f.css ? e.querySelector(f.css) : e;
    if (!el) { return ""; }
    return ((f.attr ? el.getAttribute(f.attr) : el.textContent) || "").trim();
  }
  var items = Array.prototype.map.call(document.querySelectorAll(a.item), function (e) {
    return {date: field(e, a.date), time: a.time ? field(e, a.time) : ""};
  });
  return {state: "ready", items: items, more: !!a.next && __matches(a.next)};`)
		if end != flowDone {
			return end
		}
		for _, it := range res.Items {
			if !c.addSlot(group(dateRE, it.Date), dateLayout, group(timeRE, it.Time), timeLayout) {
				return flowStop
			}
		}
		if !res.More || page >= pages {
			return flowDone
		}
		if c.nextPage(s, kinds, *l.Next, l.Ready) != flowDone {
			return flowStop
		}
	}
}

// nextPage clicks a list's next link and classifies the page it loads,
// which must show the list (ready).
func (c *check) nextPage(s *profile.Step, kinds []matcher, next, ready profile.Marker) flowEnd {
	ctx, cancel := context.WithTimeout(c.ctx, c.d.prof.Timeouts.Page.D())
	defer cancel()
	if err := c.load(ctx, clickWithin("", next)); err != nil {
		c.failNav(fmt.Errorf("%s: next page: %w", s.Name, err))
		return flowStop
	}
	loadBy, _ := ctx.Deadline()
	pg, err := c.classify(append(slices.Clone(kinds), matcher{"ready", []profile.Marker{ready}}), loadBy)
	if err != nil {
		c.failNav(fmt.Errorf("%s: next page: %w", s.Name, err))
		return flowStop
	}
	c.seen = pageKind(pg)
	c.d.pageSeen(s.Name, c.seen)
	if pg.Kind != "ready" {
		c.endOn(pg.Kind, pg.Status)
		return flowStop
	}
	return flowDone
}

// group is the first group of re's match in v, "" when none; v itself
// when re is nil.
func group(re *regexp.Regexp, v string) string {
	if re == nil {
		return v
	}
	if m := re.FindStringSubmatch(v); m != nil {
		return strings.TrimSpace(m[1])
	}
	return ""
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// extractMessage waits for the message's regexp or its none text, then
// reads every match.
func (c *check) extractMessage(s *profile.Step, kinds []matcher) flowEnd {
	m := s.Extract.Message
	re, _ := c.expand(m.Regexp, regexp.QuoteMeta)
	args := map[string]any{"kinds": kinds, "css": m.CSS, "re": re, "none": m.None}
	if !m.Failed.IsZero() {
		args["failed"] = m.Failed
	}
	res, end := c.waitResult(s, args, false, `
  var el = a.css ? document.querySelector(a.css) : document.body;
  if (!el) { return null; }
  var t = el.innerText || el.textContent || "";
  if (__has(t, {text: a.none}) || __has(t, {regexp: a.re})) { return {state: "ready", text: t}; }
  return null;`)
	if end != flowDone {
		return end
	}
	goRE, err := regexp.Compile("(?i)" + re)
	if err != nil { // Validate compiled it without the placeholders' values
		c.res.Outcome, c.res.Reason, c.res.Detail = Error, ReasonProfile, fmt.Sprintf("%s: regexp: %v", s.Name, err)
		return flowStop
	}
	matches := goRE.FindAllStringSubmatch(res.Text, -1)
	if len(matches) == 0 {
		if strings.Contains(strings.ToLower(res.Text), strings.ToLower(m.None)) {
			return flowDone
		}
		c.unreadable(fmt.Sprintf("%s: the text matches neither the regexp nor the none text", s.Name))
		return flowStop
	}
	for _, mt := range matches {
		if !c.addSlot(strings.TrimSpace(mt[1]), m.Layout, "", "") {
			return flowStop
		}
	}
	return flowDone
}

// extractJSON fetches the JSON from the page, with its cookies, and reads
// the dates at the path.
func (c *check) extractJSON(s *profile.Step) flowEnd {
	j := s.Extract.JSON
	u, ok := c.expand(j.URL, url.PathEscape)
	if !ok {
		return flowNotOffered
	}
	if ref, err := url.Parse(u); err != nil || ref.IsAbs() || strings.HasPrefix(u, "/") {
		u = c.d.prof.URL(u)
	} // else relative to the page the check is on, as the portal's own scripts ask it
	d := timeout(s, c.d.prof.Timeouts.Slots)
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	res, err := await(ctx, fmt.Sprintf(`return fetch(%s, {credentials: "include", cache: "no-store", headers: {Accept: "application/json", "X-Requested-With": "XMLHttpRequest"}}).then(function (r) {
  return r.text().then(function (t) { return {state: "fetched", status: r.status, retry: r.headers.get("Retry-After") || "", text: t}; });
}).then(null, function () { return {state: "unreachable"}; });`, jsString(u)))
	if err == nil && res.State == "unreachable" {
		// The fetch was rejected: no answer came (a network error; the
		// rejection's message is not read).
		err = &chromedp.LoadError{}
	}
	if err != nil {
		c.failNav(fmt.Errorf("%s: fetch %s: %w", s.Name, redactURL(u), err))
		return flowStop
	}
	c.retry.note(retryAfter(res.Retry, time.Now()))
	switch {
	case res.Status == http.StatusUnauthorized: // log in again
		c.endOn(pageLoggedOut, 0)
		return flowStop
	case res.Status == http.StatusForbidden: // a block or a challenge: a wall
		c.endOn(pageBlocked, 0)
		return flowStop
	case res.Status == http.StatusTooManyRequests:
		c.endOn(pageRateLimited, 0)
		return flowStop
	case res.Status == http.StatusServiceUnavailable:
		c.endOn(pageMaintenance, 0)
		return flowStop
	case res.Status >= 400:
		c.res.Outcome, c.res.Reason = Error, ReasonSlotsFailed
		c.res.Detail = fmt.Sprintf("%s: the dates' endpoint answered HTTP %d", s.Name, res.Status)
		c.res.URL = c.location()
		return flowStop
	}
	var doc any
	if err := json.Unmarshal([]byte(res.Text), &doc); err != nil {
		c.res.Outcome, c.res.Reason = Error, ReasonSlotsFailed
		// Not err: a syntax error quotes a character of the answer.
		c.res.Detail = fmt.Sprintf("%s: the dates' endpoint answered no JSON (%s)", s.Name, describeText(res.Text))
		c.res.URL = c.location()
		return flowStop
	}
	for _, v := range jsonPath(doc, strings.Split(j.Path, ".")) {
		str, isStr := v.(string)
		if !isStr {
			c.unreadable(fmt.Sprintf("%s: %s holds %s, not a date string", s.Name, j.Path, jsonKind(v)))
			return flowStop
		}
		if !c.addSlot(str, orDefault(j.Layout, time.DateOnly), "", "") {
			return flowStop
		}
	}
	return flowDone
}

// jsonPath returns the values at path in doc, every element of an array
// on the way.
func jsonPath(doc any, path []string) []any {
	if arr, ok := doc.([]any); ok {
		var out []any
		for _, e := range arr {
			out = append(out, jsonPath(e, path)...)
		}
		return out
	}
	if len(path) == 0 || path[0] == "" {
		return []any{doc}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	v, ok := obj[path[0]]
	if !ok {
		return nil
	}
	return jsonPath(v, path[1:])
}

// addSlot parses a slot's date (and time, if any) in the profile's
// timezone and adds it; a value that does not parse ends the check.
func (c *check) addSlot(date, dateLayout, clock, timeLayout string) bool {
	day, hm, err := parseSlot(date, dateLayout, clock, timeLayout, c.d.prog.Location)
	if err != nil {
		// What the page showed is described, not quoted: a cell that
		// holds no date may hold the applicant's data, and the detail goes
		// into check.json, to Requests and AccountPool, and into the logs.
		c.unreadable(fmt.Sprintf("a slot's date (%s) and time (%s) do not parse with the layouts %q and %q (check the extract's date and time)",
			describeText(date), describeText(clock), dateLayout, timeLayout))
		return false
	}
	c.res.Slots = append(c.res.Slots, Slot{Mission: c.mission, Centre: c.query.Centre, VisaCategory: c.query.VisaCategory,
		Date: day, Time: hm})
	return true
}

// parseSlot reads a slot's date with dateLayout and its time, if any,
// with timeLayout, in loc. It returns the day as YYYY-MM-DD and the time
// as HH:MM (empty when the page shows none), as Requests takes them.
func parseSlot(date, dateLayout, clock, timeLayout string, loc *time.Location) (day, hm string, err error) {
	t, err := time.ParseInLocation(dateLayout, date, loc)
	if err != nil {
		return "", "", err
	}
	t = t.In(loc)
	if t.Year() < 0 || t.Year() > 9999 { // an offset carried it past what YYYY can write
		return "", "", fmt.Errorf("date %q is in the year %d", date, t.Year())
	}
	switch {
	case clock != "":
		tt, err := time.ParseInLocation(timeLayout, clock, loc)
		if err != nil {
			return "", "", err
		}
		hm = tt.Format("15:04")
	case strings.Contains(dateLayout, "04"):
		hm = t.Format("15:04") // the layout holds the time too
	}
	return t.Format(time.DateOnly), hm, nil
}

// describeText tells the shape of s without quoting it: each letter an
// A, each digit a 9, spaces and ASCII punctuation as they are, anything
// else a *, at most 40 characters, and its length. A result's detail
// describes what a page showed that way, since the page may show an
// applicant's personal data (only the opt-in artifacts,
// CHECKER_ARTIFACTS_PAGES, keep the page itself), while the shape tells an
// operator which layout the page uses (07/12/2026 is "99/99/9999",
// 2026-12-07 "9999-99-99").
func describeText(s string) string {
	if s == "" {
		return "empty"
	}
	const most = 40
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n++; n > most {
			continue
		}
		switch {
		case unicode.IsLetter(r):
			b.WriteByte('A')
		case unicode.IsDigit(r):
			b.WriteByte('9')
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case r < utf8.RuneSelf && unicode.IsPunct(r):
			b.WriteRune(r) // separators: / - . : , and the like
		default:
			b.WriteByte('*')
		}
	}
	if n > most {
		return fmt.Sprintf("shaped %q... (%d characters)", b.String(), n)
	}
	return fmt.Sprintf("shaped %q (%d characters)", b.String(), n)
}

// jsonKind names the kind of a decoded JSON value (describeText for a
// string), not the value itself.
func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string (" + describeText(v) + ")"
	case []any:
		return fmt.Sprintf("an array of %d", len(v))
	case map[string]any:
		return fmt.Sprintf("an object of %d keys", len(v))
	default:
		return fmt.Sprintf("a %T", v)
	}
}

func (c *check) unreadable(detail string) {
	c.res.Outcome, c.res.Reason, c.res.Detail = Error, ReasonUnreadableSlots, detail
	c.res.URL = c.location()
	c.saveArtifacts()
}

// fill types a value into a field: focused, its contents selected, the
// text inserted with the browser's insertText editing command, so the
// page's scripts see trusted input events, and a change event when the
// focus moves on, as they do for typing. A field that command cannot type
// into gets its value set, with input and change events.
func fill(sel, text string) chromedp.Action[chromedp.Void] {
	return inPage(`(function (sel, text) {
  var e = document.querySelector(sel);
  if (!e) { return 1; }
  e.focus();
  if (typeof e.select === "function") { e.select(); }
  if (!document.execCommand("insertText", false, text) || e.value !== text) {
    e.value = text;
    e.dispatchEvent(new Event("input", {bubbles: true}));
    e.dispatchEvent(new Event("change", {bubbles: true}));
  }
  return 0;
})(`+jsString(sel)+`, `+jsString(text)+`)`, "no element "+sel)
}

// clickWithin clicks the first element matching sel inside the first
// element matching w (css, and text or regexp); with sel "", that element.
func clickWithin(sel string, w profile.Marker) chromedp.Action[chromedp.Void] {
	scope := w.Regexp // as the script reads it: w.text || w.regexp
	if w.Text != "" {
		scope = w.Text
	}
	// The regexp is compiled first, in a try of our own: profile
	// validation reads it as Go does, and a regexp JavaScript cannot read
	// ("(?i)...") is the profile's fault, not the page's.
	return inPage(`(function (s, w) {
  var re = null;
  if (w.regexp) { try { re = new RegExp(w.regexp, "i"); } catch (e) { return 3; } }
  var els = document.querySelectorAll(w.css), scope = null;
  for (var i = 0; i < els.length && !scope; i++) {
    var t = els[i].textContent || "";
    if (re ? re.test(t) : t.toLowerCase().indexOf((w.text || "").toLowerCase()) >= 0) { scope = els[i]; }
  }
  if (!scope) { return 1; }
  var e = s ? scope.querySelector(s) : scope;
  if (!e) { return 2; }
  e.click();
  return 0;
})(`+jsString(sel)+`, `+mustJSON(w)+`)`,
		"no element "+w.CSS+" with "+jsString(scope), "no element "+sel+" within "+w.CSS,
		"the profile's regexp "+jsString(w.Regexp)+" for "+w.CSS+" is one JavaScript cannot read")
}
