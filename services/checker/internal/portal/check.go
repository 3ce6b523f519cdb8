package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// check is one CheckMission in progress.
type check struct {
	d       *Driver
	ctx     context.Context // the tab's
	acct    Account
	mission string
	gate    Gate
	res     Result
	// infraErr is set when the browser, not the portal, failed.
	infraErr error
	// flow is the flow running; query the centre and category of the
	// check flow's run.
	flow  string
	query Query
	// courtesy is set while logging out: what goes wrong is logged, and
	// no artifacts are saved.
	courtesy bool
	retry    retryWatch
	// seen is what the running step saw (StepTrace.Page).
	seen string
	// saved are the values selects kept ({page.AS}), per flow run.
	saved map[string]string
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
	// pageServerError is no marker's: a page no marker matched, answered
	// with a 5xx (statusKind).
	pageServerError = "server_error"
)

// navigate opens url (see load) and returns when the page must have
// finished loading: the timeout, counted from the navigation's start.
func (c *check) navigate(url string, timeout time.Duration) (loadBy time.Time, err error) {
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
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
			// Chromium's error page. It tells no net error code, and the
			// URL is not repeated: its path may hold personal data, and
			// the result's URL is the tab's.
			err = &chromedp.LoadError{}
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
	case errors.Is(err, errBadSelector), errors.Is(err, errBadProfile):
		c.res.Reason = ReasonProfile
		c.res.Detail = fmt.Sprintf("%s: %v", c.res.Step, err)
	case errors.Is(err, errNoElement):
		c.res.Reason = ReasonProfile
		c.res.Detail = fmt.Sprintf("%s: %v", c.res.Step, err)
		c.saveArtifacts()
	case errors.As(err, &jsErr):
		// The page's own code threw where the driver's action (a fill, a
		// click, a request) called it: our scripts throw nothing of their
		// own (inPage). The exception's message and stack are the page's.
		c.res.Reason = ReasonProfile
		c.res.Detail = fmt.Sprintf("%s: %v", c.res.Step, pageScriptError(exceptionName(jsErr)))
		c.saveArtifacts()
	case errors.Is(err, errPageScript):
		// The same met in a wait (await): the page's code, not Chromium.
		c.res.Reason = ReasonProfile
		c.res.Detail = fmt.Sprintf("%s: %v", c.res.Step, err)
		c.saveArtifacts()
	case errors.As(err, &loadErr):
		c.res.Reason = ReasonUnreachable
		c.res.Detail = fmt.Sprintf("%s: %s", c.res.Step, loadErrorDetail(loadErr.ErrorText))
	default:
		c.res.Reason = ReasonBrowser
		c.res.Detail = fmt.Sprintf("%s: %v", c.res.Step, err)
		c.infraErr = err
	}
}

// netErrorRE matches Chromium's net error codes (net/base/net_error_list.h),
// such as net::ERR_CONNECTION_REFUSED: fixed tokens, which a detail may
// repeat.
var netErrorRE = regexp.MustCompile(`^net::ERR_[A-Z0-9_]+$`)

// loadErrorDetail says that a page could not be loaded, with Chromium's
// net error code when text is one; any other text is left out.
func loadErrorDetail(text string) string {
	if netErrorRE.MatchString(text) {
		return "the portal could not be reached (" + text + ")"
	}
	return "the portal could not be reached"
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
// status is the page's HTTP status, 0 when unknown, which names an
// unrecognised page (statusKind).
func (c *check) endOn(kind string, status int) {
	c.res.URL = c.location()
	if kind == "" {
		kind = statusKind(status)
	}
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
	case pageLoggedOut:
		c.res.Outcome, c.res.Reason, c.res.Detail = Error, ReasonLoggedOut, "the portal ended the session"
	case pageServerError:
		c.res.Outcome, c.res.Reason = Error, ReasonServerError
		c.res.Detail = fmt.Sprintf("%s: the portal answered HTTP %d", c.res.Step, status)
	default:
		http := ""
		if status != 0 {
			http = fmt.Sprintf(" (HTTP %d)", status)
		}
		c.unknownPage(fmt.Sprintf("%s: no marker of the profile matches the page%s", c.res.Step, http))
	}
}

// statusKind is the kind of a page no marker matched, by its HTTP status
// (0: unknown): a bare 429, such as a CDN's or firewall's own page, is a
// rate limit all the same (its Retry-After is in c.retry), a bare 403 a
// block, a 5xx a server error; anything else is an unknown page ("").
func statusKind(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return pageRateLimited
	case status == http.StatusForbidden:
		return pageBlocked
	case status >= 500:
		return pageServerError
	}
	return ""
}

func (c *check) unknownPage(detail string) {
	c.res.Outcome, c.res.Reason, c.res.Detail = Error, ReasonUnknownPage, detail
	c.res.URL = c.location()
	c.saveArtifacts()
	if !c.courtesy {
		c.d.unknownSeen(c.res.Step, c.res.Artifacts)
	}
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
	return inPage(fmt.Sprintf(
		`(function(s){var e=document.querySelector(s);if(!e){return 1;}e.click();return 0;})(%s)`, jsString(sel)), "no element "+sel)
}

// errNoElement means an element the profile names is not on the page.
var errNoElement = errors.New("the page does not fit the profile")

// inPage runs a script of the driver's that returns 0 once it did its
// work, or n when it did not find the element missing[n-1] describes
// (errNoElement). Our scripts throw nothing: an exception is the page's
// own code's, where ours called it (failNav tells it by its kind).
func inPage(expr string, missing ...string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		n, err := chromedp.Evaluate[int](expr)(ctx, t)
		switch {
		case err != nil:
			return chromedp.Void{}, err
		case n > 0 && n <= len(missing):
			return chromedp.Void{}, fmt.Errorf("%w: %s", errNoElement, missing[n-1])
		}
		return chromedp.Void{}, nil
	}
}
