package portal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
)

// check is one CheckMission in progress.
type check struct {
	d       *Driver
	ctx     context.Context // the tab's
	acct    Account
	mission string
	res     Result
	// infraErr is set when the browser, not the portal, failed.
	infraErr error
}

// The kinds of page the driver recognises. Markers are tried in the order
// of each step's list, so a block page that also shows the account menu is
// a block page.
const (
	pageCaptcha        = "captcha"
	pageBlocked        = "blocked"
	pageRateLimited    = "rate_limited"
	pageMaintenance    = "maintenance"
	pageLoggedOut      = "logged_out"
	pageBadCredentials = "bad_credentials"
	pageLoggedIn       = "logged_in"
	pageLoginForm      = "login_form"
	pageSlotForm       = "slot_form"
)

// trouble is what every step looks for first.
func (c *check) trouble() []matcher {
	m := c.d.prof.Markers
	return []matcher{
		{pageCaptcha, m.Captcha},
		{pageBlocked, m.Blocked},
		{pageRateLimited, m.RateLimited},
		{pageMaintenance, m.Maintenance},
	}
}

func (c *check) run(queries []Query) {
	p := c.d.prof
	if !c.loginPage() || !c.login() {
		return
	}

	c.res.Step = "slot_page"
	loadBy, err := c.navigate(p.SlotURL(c.mission))
	if err != nil {
		c.failNav(err)
		return
	}
	kinds := append(c.trouble(),
		matcher{pageLoggedOut, p.Markers.LoggedOut},
		matcher{pageLoginForm, []profile.Marker{{CSS: p.Login.Email}}},
		matcher{pageSlotForm, []profile.Marker{{CSS: p.Slots.Centre}}},
	)
	if pg, err := c.classify(kinds, loadBy); err != nil || pg.Kind != pageSlotForm {
		c.endOrFail(pg, err)
		return
	}

	c.res.Step = "slots"
	for _, q := range queries {
		if !c.readSlots(q) {
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

// loginPage opens the login form.
func (c *check) loginPage() bool {
	p := c.d.prof
	c.res.Step = "login_page"
	loadBy, err := c.navigate(p.URL(p.Login.URL))
	if err != nil {
		c.failNav(err)
		return false
	}
	kinds := append(c.trouble(), matcher{pageLoginForm, []profile.Marker{{CSS: p.Login.Email}}})
	if pg, err := c.classify(kinds, loadBy); err != nil || pg.Kind != pageLoginForm {
		c.endOrFail(pg, err)
		return false
	}
	return true
}

// login fills the form and submits it (see fillAndSubmit).
func (c *check) login() bool {
	p := c.d.prof
	c.res.Step = "login"
	ctx, cancel := context.WithTimeout(c.ctx, p.Timeouts.Page.D())
	defer cancel()
	if err := c.load(ctx, fillAndSubmit(p.Login, c.acct)); err != nil {
		c.failNav(fmt.Errorf("fill and submit the login form: %w", err))
		return false
	}
	kinds := append(c.trouble(),
		matcher{pageBadCredentials, p.Markers.BadCredentials},
		matcher{pageLoggedIn, p.Markers.LoggedIn},
	)
	loadBy, _ := ctx.Deadline()
	if pg, err := c.classify(kinds, loadBy); err != nil || pg.Kind != pageLoggedIn {
		c.endOrFail(pg, err)
		return false
	}
	c.res.LoggedIn = true
	return true
}

// readSlots chooses one centre and category, waits for the dates and
// reads them. It returns false when the check must end.
func (c *check) readSlots(q Query) bool {
	p := c.d.prof
	qr := QueryResult{Query: q}
	defer func() { c.res.Queries = append(c.res.Queries, qr) }()

	ctx, cancel := context.WithTimeout(c.ctx, p.Timeouts.Slots.D())
	defer cancel()
	trouble := append(c.trouble(), matcher{pageLoggedOut, p.Markers.LoggedOut})
	st, err := c.chooseAndWait(ctx, q, trouble)
	if err != nil {
		c.failNav(fmt.Errorf("dates of %s / %s: %w", q.Centre, q.VisaCategory, err))
		return false
	}
	qr.Offered = st.State != "not_offered" && !strings.HasPrefix(st.State, "no element ")
	switch {
	case st.State == "ready":
	case st.State == "not_offered":
		return true
	case st.State == "failed":
		c.res.Outcome, c.res.Reason = Error, ReasonSlotsFailed
		c.res.Detail = "the slot page says loading the dates failed"
		c.res.URL = c.location()
		c.saveArtifacts()
		return false
	case strings.HasPrefix(st.State, "no element "):
		c.unknownPage(fmt.Sprintf("slot page: %s", st.State))
		return false
	default:
		c.endOn(st.State, 0)
		return false
	}
	for _, it := range st.Items {
		if !validDate(it.Date) || (it.Time != "" && !validTime(it.Time)) {
			c.res.Outcome, c.res.Reason = Error, ReasonUnreadableSlots
			c.res.Detail = fmt.Sprintf("a slot has date %q time %q; want YYYY-MM-DD and HH:MM (check slots.date_attr and time_attr)", it.Date, it.Time)
			c.res.URL = c.location()
			c.saveArtifacts()
			return false
		}
		c.res.Slots = append(c.res.Slots, Slot{Mission: c.mission, Centre: q.Centre, VisaCategory: q.VisaCategory, Date: it.Date, Time: it.Time})
	}
	qr.Checked, qr.Slots = true, len(st.Items)
	return true
}

// logout ends the portal session, on the tab's context after the result
// has been returned (see CheckMission). It is a courtesy to the portal:
// the browser context is discarded anyway, so a failure is logged, not
// reported. A logout URL is requested from the page, with the session's
// cookies, rather than opened: the portal ends the session all the same,
// and Chromium renders no page that nobody reads.
func (c *check) logout(tabCtx context.Context) {
	p := c.d.prof
	ctx, cancel := context.WithTimeout(tabCtx, p.Timeouts.Logout.D())
	defer cancel()
	var err error
	if p.Logout.URL != "" {
		err = chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`fetch(%s, {credentials: "include", redirect: "manual", cache: "no-store"}).then(function () {})`,
			jsString(p.URL(p.Logout.URL))), awaitPromise))
	} else {
		err = c.load(ctx, click(p.Logout.Selector))
	}
	if err != nil {
		c.d.log.Info("logout failed", "account", c.acct, "mission", c.mission, "err", err)
	}
}

// navigate opens url (see load) and returns when the page must have
// finished loading: the page timeout, counted from the navigation's start.
func (c *check) navigate(url string) (loadBy time.Time, err error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.d.prof.Timeouts.Page.D())
	defer cancel()
	loadBy, _ = ctx.Deadline()
	return loadBy, c.load(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, page.Navigate, page.NavigateParams{URL: url})
		if err == nil && res.ErrorText != "" {
			err = &chromedp.LoadError{ErrorText: res.ErrorText}
		}
		return err
	}))
}

// load runs act, which starts a navigation of the tab (opening a URL, or
// clicking a submit button), and returns as soon as the new document has
// committed. It does not wait for the page's stylesheets, scripts and load
// event: classify waits for those in the page, in the same round trip that
// looks for the markers and reads the response status. A navigation that
// ends on Chromium's error page instead of the portal's (connection
// refused, too many redirects) is a *chromedp.LoadError.
func (c *check) load(ctx context.Context, act chromedp.Action[chromedp.Void]) error {
	committed := make(chan error, 1)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	err := chromedp.Listen(lctx, func(ev any) {
		nav, ok := ev.(*page.EventFrameNavigated)
		if !ok || nav.Frame.ParentID != "" {
			return // not a new document in the tab's own frame
		}
		var err error
		if nav.Frame.UnreachableURL != "" {
			err = &chromedp.LoadError{ErrorText: "the portal could not be reached at " + nav.Frame.UnreachableURL}
		}
		select {
		case committed <- err:
		default: // only the first commit counts
		}
	})
	if err != nil {
		return err
	}
	if err := chromedp.Do(ctx, act); err != nil {
		return err
	}
	select {
	case err := <-committed:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failNav turns a failed browser step into a result.
func (c *check) failNav(err error) {
	var (
		loadErr *chromedp.LoadError
		jsErr   *chromedp.ExceptionError
	)
	c.res.Outcome = Error
	if errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil {
		// A page still loading holds back the screenshot and the reads
		// below until it arrives: stop it first.
		_, _ = within(c, time.Second, chromedp.Stop())
	}
	c.res.URL = c.location()
	switch {
	case c.ctx.Err() != nil:
		// The tab ended: the caller gave up, or the browser died.
		c.res.Reason = ReasonBrowser
		c.res.Detail = fmt.Sprintf("%s: %v", c.res.Step, err)
		c.infraErr = err
	case errors.Is(err, context.DeadlineExceeded):
		c.res.Reason = ReasonTimeout
		c.res.Detail = fmt.Sprintf("%s: no answer within the step timeout: %v", c.res.Step, err)
		c.saveArtifacts()
	case errors.Is(err, errBadSelector):
		c.res.Reason = ReasonProfile
		c.res.Detail = fmt.Sprintf("%s: %v", c.res.Step, err)
	case errors.As(err, &jsErr):
		// A form field or button of the profile is not on the page.
		c.res.Reason = ReasonProfile
		c.res.Detail = fmt.Sprintf("%s: the page does not fit the profile: %v", c.res.Step, err)
		c.saveArtifacts()
	case errors.As(err, &loadErr):
		c.res.Reason = ReasonUnreachable
		c.res.Detail = fmt.Sprintf("%s: %s", c.res.Step, loadErr.ErrorText)
	default:
		c.res.Reason = ReasonBrowser
		c.res.Detail = fmt.Sprintf("%s: %v", c.res.Step, err)
		c.infraErr = err
	}
}

// endOrFail ends the check on a classified page, or on the error that
// kept the page from being classified.
func (c *check) endOrFail(pg lookResult, err error) {
	if err != nil {
		c.failNav(err)
		return
	}
	c.endOn(pg.Kind, pg.Status)
}

// endOn turns a recognised (or unrecognised: "") page into a result;
// status is the page's HTTP status, 0 when unknown.
func (c *check) endOn(kind string, status int) {
	c.res.URL = c.location()
	switch kind {
	case pageCaptcha:
		c.res.Outcome, c.res.Reason, c.res.Detail = Banned, ReasonCaptcha, "the portal asks for a CAPTCHA"
	case pageBlocked:
		c.res.Outcome, c.res.Reason, c.res.Detail = Banned, ReasonBlocked, "the portal says the account is blocked"
	case pageRateLimited:
		c.res.Outcome, c.res.Reason, c.res.Detail = Banned, ReasonRateLimited, "the portal says too many requests"
	case pageMaintenance:
		c.res.Outcome, c.res.Reason, c.res.Detail = Error, ReasonMaintenance, "the portal is down for maintenance"
	case pageBadCredentials:
		c.res.Outcome, c.res.Reason, c.res.Detail = LoginFail, ReasonBadCredentials, "the portal refused the email or password"
	case pageLoggedOut, pageLoginForm:
		c.res.Outcome, c.res.Reason, c.res.Detail = Error, ReasonLoggedOut, "the portal ended the session"
	default:
		if status >= 500 {
			c.res.Outcome, c.res.Reason = Error, ReasonServerError
			c.res.Detail = fmt.Sprintf("%s: the portal answered HTTP %d", c.res.Step, status)
			return
		}
		http := ""
		if status != 0 {
			http = fmt.Sprintf(" (HTTP %d)", status)
		}
		c.unknownPage(fmt.Sprintf("%s: no marker of the profile matches the page%s", c.res.Step, http))
	}
}

func (c *check) unknownPage(detail string) {
	c.res.Outcome, c.res.Reason, c.res.Detail = Error, ReasonUnknownPage, detail
	c.res.URL = c.location()
	c.saveArtifacts()
}

// location is the tab's current URL without what may carry a secret
// (redactURL), or "" if it cannot be read quickly.
func (c *check) location() string {
	u, err := within(c, 2*time.Second, chromedp.Location())
	if err != nil {
		return ""
	}
	return redactURL(u)
}

// click clicks the first element matching a CSS selector.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(function(s){var e=document.querySelector(s);if(!e)throw new Error("no element "+s);e.click();})(%s)`, jsString(sel)))
}

// fillAndSubmit types the account's email and password into the login
// form and clicks its submit button, in one round trip. Each field is
// focused, its contents selected, and the text inserted with the
// browser's insertText editing command, so the page's scripts see trusted
// input events, and a change event when the focus moves on, as they do
// for typing (unlike typing, the command fires no beforeinput). A field
// that command cannot type into gets its value set, with input and change
// events.
func fillAndSubmit(l profile.Login, acct Account) chromedp.Action[chromedp.Void] {
	args := mustJSON(map[string]string{
		"email": l.Email, "emailText": acct.Email, "password": l.Password, "passwordText": acct.Password, "submit": l.Submit,
	})
	return chromedp.Evaluate[chromedp.Void](`(function (a) {
  function el(sel) {
    var e = document.querySelector(sel);
    if (!e) { throw new Error("no element " + sel); }
    return e;
  }
  function type(sel, text) {
    var e = el(sel);
    e.focus();
    if (typeof e.select === "function") { e.select(); }
    if (!document.execCommand("insertText", false, text) || e.value !== text) {
      e.value = text;
      e.dispatchEvent(new Event("input", {bubbles: true}));
      e.dispatchEvent(new Event("change", {bubbles: true}));
    }
  }
  type(a.email, a.emailText);
  type(a.password, a.passwordText);
  el(a.submit).click();
})(` + args + `)`)
}
