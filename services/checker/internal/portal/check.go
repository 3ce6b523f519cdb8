package portal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
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
	resp, err := c.navigate(p.SlotURL(c.mission))
	if err != nil {
		c.failNav(err)
		return
	}
	kinds := append(c.trouble(),
		matcher{pageLoggedOut, p.Markers.LoggedOut},
		matcher{pageLoginForm, []profile.Marker{{CSS: p.Login.Email}}},
		matcher{pageSlotForm, []profile.Marker{{CSS: p.Slots.Centre}}},
	)
	if kind, err := c.classify(kinds, resp); err != nil || kind != pageSlotForm {
		c.endOrFail(kind, resp, err)
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
	resp, err := c.navigate(p.URL(p.Login.URL))
	if err != nil {
		c.failNav(err)
		return false
	}
	kinds := append(c.trouble(), matcher{pageLoginForm, []profile.Marker{{CSS: p.Login.Email}}})
	if kind, err := c.classify(kinds, resp); err != nil || kind != pageLoginForm {
		c.endOrFail(kind, resp, err)
		return false
	}
	return true
}

// login fills the form and submits it. Typing goes through Input.insertText
// (one call per field, with the input events a user's typing fires) rather
// than a key event per character.
func (c *check) login() bool {
	p := c.d.prof
	c.res.Step = "login"
	ctx, cancel := context.WithTimeout(c.ctx, p.Timeouts.Page.D())
	defer cancel()
	for _, f := range []struct{ sel, text string }{{p.Login.Email, c.acct.Email}, {p.Login.Password, c.acct.Password}} {
		if err := chromedp.Do(ctx, focus(f.sel), insertText(f.text)); err != nil {
			c.failNav(fmt.Errorf("fill %s: %w", f.sel, err))
			return false
		}
	}
	resp, err := chromedp.RunResponse(ctx, click(p.Login.Submit))
	if err != nil {
		c.failNav(fmt.Errorf("submit login: %w", err))
		return false
	}
	kinds := append(c.trouble(),
		matcher{pageBadCredentials, p.Markers.BadCredentials},
		matcher{pageLoggedIn, p.Markers.LoggedIn},
	)
	if kind, err := c.classify(kinds, resp); err != nil || kind != pageLoggedIn {
		c.endOrFail(kind, resp, err)
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
		c.endOn(st.State, nil)
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
// reported.
func (c *check) logout(tabCtx context.Context) {
	p := c.d.prof
	ctx, cancel := context.WithTimeout(tabCtx, p.Timeouts.Logout.D())
	defer cancel()
	var err error
	if p.Logout.URL != "" {
		err = chromedp.Do(ctx, chromedp.Navigate(p.URL(p.Logout.URL)))
	} else {
		_, err = chromedp.RunResponse(ctx, click(p.Logout.Selector))
	}
	if err != nil {
		c.d.log.Info("logout failed", "account", c.acct, "mission", c.mission, "err", err)
	}
}

// navigate loads url within the page timeout and returns its response.
func (c *check) navigate(url string) (*network.Response, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.d.prof.Timeouts.Page.D())
	defer cancel()
	return chromedp.Run(ctx, chromedp.NavigateResponse(url))
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
		ctx, cancel := context.WithTimeout(c.ctx, time.Second)
		_ = chromedp.Do(ctx, chromedp.Stop())
		cancel()
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
func (c *check) endOrFail(kind string, resp *network.Response, err error) {
	if err != nil {
		c.failNav(err)
		return
	}
	c.endOn(kind, resp)
}

// endOn turns a recognised (or unrecognised: "") page into a result.
func (c *check) endOn(kind string, resp *network.Response) {
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
		if resp != nil && resp.Status >= 500 {
			c.res.Outcome, c.res.Reason = Error, ReasonServerError
			c.res.Detail = fmt.Sprintf("%s: the portal answered HTTP %d", c.res.Step, resp.Status)
			return
		}
		status := ""
		if resp != nil {
			status = fmt.Sprintf(" (HTTP %d)", resp.Status)
		}
		c.unknownPage(fmt.Sprintf("%s: no marker of the profile matches the page%s", c.res.Step, status))
	}
}

func (c *check) unknownPage(detail string) {
	c.res.Outcome, c.res.Reason, c.res.Detail = Error, ReasonUnknownPage, detail
	c.res.URL = c.location()
	c.saveArtifacts()
}

// location is the tab's current URL, or "" if it cannot be read quickly.
func (c *check) location() string {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return ""
	}
	return u
}

// focus focuses the first element matching a CSS selector.
func focus(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(function(s){var e=document.querySelector(s);if(!e)throw new Error("no element "+s);e.focus();})(%s)`, jsString(sel)))
}

// click clicks the first element matching a CSS selector.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(function(s){var e=document.querySelector(s);if(!e)throw new Error("no element "+s);e.click();})(%s)`, jsString(sel)))
}

// insertText types text into the focused element.
func insertText(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}
