package portal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
)

// matcher names a kind of page and the markers that show it.
type matcher struct {
	name    string
	markers []profile.Marker
}

func (m matcher) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string           `json:"name"`
		Markers []profile.Marker `json:"markers"`
	}{m.name, m.markers})
}

// errBadSelector means a selector of the profile does not parse.
var errBadSelector = errors.New("the profile has an invalid CSS selector")

// matchJS defines, in the page, the marker test and the wait that
// classification and the slot wait share. A selector that does not parse
// makes the page answer {error: "!selector:..."} so that a broken profile
// is named, not mistaken for an unknown page.
//
// __wait resolves as soon as check() returns something, looking at every
// DOM change and at the document's load (and every 50 ms, for what
// observers miss), or resolves null after timeoutMs: one DevTools round
// trip per wait, and no polling delay. A check may call __settled(ms) to
// learn whether the document has been loaded for ms already.
const matchJS = `
var __text = null;
function __bodyText() {
  if (__text === null) { __text = (document.body ? document.body.innerText : "").toLowerCase(); }
  return __text;
}
function __matches(m) {
  if (!m || (!m.css && !m.text)) { return false; }
  if (m.css) {
    var els;
    try { els = document.querySelectorAll(m.css); } catch (e) { throw new Error("!selector:" + m.css); }
    if (!m.text) { return els.length > 0; }
    var t = m.text.toLowerCase();
    for (var i = 0; i < els.length; i++) {
      if ((els[i].textContent || "").toLowerCase().indexOf(t) >= 0) { return true; }
    }
    return false;
  }
  return __bodyText().indexOf(m.text.toLowerCase()) >= 0;
}
function __kind(kinds) {
  for (var i = 0; i < kinds.length; i++) {
    for (var j = 0; j < (kinds[i].markers || []).length; j++) {
      if (__matches(kinds[i].markers[j])) { return kinds[i].name; }
    }
  }
  return "";
}
var __loadedAt = null;
function __settled(ms) {
  if (document.readyState !== "complete") { return false; }
  if (__loadedAt === null) { __loadedAt = Date.now(); }
  return Date.now() - __loadedAt >= ms;
}
function __wait(check, timeoutMs) {
  return new Promise(function (resolve) {
    var done = false, obs = null, timer = null, tick = null;
    function finish(v) {
      if (done) { return; }
      done = true;
      if (obs) { obs.disconnect(); }
      clearTimeout(timer);
      clearInterval(tick);
      window.removeEventListener("load", look);
      resolve(v);
    }
    function look() {
      __text = null;
      try {
        var v = check();
        if (v) { finish(v); }
      } catch (e) {
        finish({error: String(e && e.message || e)});
      }
    }
    look();
    if (done) { return; }
    obs = new MutationObserver(look);
    obs.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
    window.addEventListener("load", look);
    tick = setInterval(look, 50);
    timer = setTimeout(function () { finish(null); }, timeoutMs);
  });
}
`

// lookResult is what an in-page wait resolves with.
type lookResult struct {
	Kind string `json:"kind"`
	// Loaded and Status are set by classify once the page has loaded:
	// with no Kind, the page is unknown; without Loaded, it did not load
	// in time. Status is the page's HTTP status (0: unknown).
	Loaded bool       `json:"loaded"`
	Status int        `json:"status"`
	State  string     `json:"state"` // the slot wait: "ready", "failed" or a trouble kind
	Items  []slotItem `json:"items"`
	Error  string     `json:"error"`
}

type slotItem struct {
	Date string `json:"date"`
	Time string `json:"time"`
}

// await runs body (JavaScript that returns a promise, with matchJS in
// scope) and returns what it resolves with. A null resolution is a zero
// lookResult. The page may be between two documents (a script redirect)
// and lose the evaluation: then it tries again until ctx ends.
func await(ctx context.Context, body string) (lookResult, error) {
	expr := "(function(){" + matchJS + "\n" + body + "\n})()"
	for {
		res, err := chromedp.Run(ctx, chromedp.Evaluate[*lookResult](expr, awaitPromise))
		switch {
		case err == nil && res == nil:
			return lookResult{}, nil
		case err == nil && strings.HasPrefix(res.Error, "!selector:"):
			return lookResult{}, fmt.Errorf("%w: %s", errBadSelector, strings.TrimPrefix(res.Error, "!selector:"))
		case err == nil && res.Error != "":
			return lookResult{}, fmt.Errorf("page script: %s", res.Error)
		case err == nil:
			return *res, nil
		}
		if ctx.Err() != nil {
			return lookResult{}, fmt.Errorf("%w (last try: %v)", ctx.Err(), err)
		}
		select {
		case <-ctx.Done():
			return lookResult{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// awaitPromise makes an Evaluate wait for the promise the expression
// returns and give what it resolves with.
func awaitPromise(p *runtime.EvaluateParams) { t := true; p.AwaitPromise = &t }

// classify waits until loadBy for the page that load committed to
// finish loading (its stylesheets too: a text marker is read
// from the rendered text, and a stylesheet may hide some), then up to the
// settle time for it to match one of kinds. It returns the first kind that
// matches, or "" for an unknown page, with the page's HTTP status. Kinds
// are tried in their order once the document is complete, never on a
// half-parsed one, where a marker of a later kind could show before the
// one that wins. An error status gets one look only: such pages come from
// the server as they are, and a bare 500 should not cost the settle time.
func (c *check) classify(kinds []matcher, loadBy time.Time) (lookResult, error) {
	settle, left := c.d.prof.Timeouts.Settle.D(), max(time.Until(loadBy), 0)
	body := fmt.Sprintf(`var kinds = %s;
return __wait(function () {
  if (document.readyState !== "complete") { return null; }
  var nav = performance.getEntriesByType("navigation")[0];
  var status = (nav && nav.responseStatus) || 0;
  var k = __kind(kinds);
  if (k) { return {kind: k, loaded: true, status: status}; }
  return __settled(status >= 400 ? 0 : %d) ? {kind: "", loaded: true, status: status} : null;
}, %d);`, mustJSON(kinds), settle.Milliseconds(), (left + settle).Milliseconds())
	// The page's own timer ends the wait; the context is a backstop for a
	// renderer that does not answer at all.
	ctx, cancel := context.WithTimeout(c.ctx, left+settle+2*time.Second)
	defer cancel()
	res, err := await(ctx, body)
	switch {
	case err != nil && c.ctx.Err() != nil:
		return lookResult{}, c.ctx.Err()
	case err != nil:
		return lookResult{}, err
	case !res.Loaded:
		return lookResult{}, fmt.Errorf("the page did not finish loading: %w", context.DeadlineExceeded)
	}
	return res, nil
}

// chooseAndWait selects the centre and the category (by value or by
// label), fires the events a user's choice fires, clicks the submit
// button, and waits in the page until the dates are loaded, the page says
// they failed, or a trouble marker shows. State "not_offered" means the
// page has no such centre or category; "no element ..." that the profile
// does not fit the page.
func (c *check) chooseAndWait(ctx context.Context, q Query, trouble []matcher) (lookResult, error) {
	p := c.d.prof
	args := map[string]any{
		"centre": p.Slots.Centre, "centreValue": q.Centre,
		"category": p.Slots.VisaCategory, "categoryValue": q.VisaCategory,
		"submit": p.Slots.Submit, "kinds": trouble, "ready": p.Slots.Ready,
		"item": p.Slots.Item, "dateAttr": p.Slots.DateAttr, "timeAttr": p.Slots.TimeAttr,
	}
	if !p.Slots.Failed.IsZero() {
		args["failed"] = p.Slots.Failed
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(p.Timeouts.Slots.D())
	}
	body := fmt.Sprintf(`var a = %s;
function pick(sel, want) {
  var el = document.querySelector(sel);
  if (!el) { return "no element " + sel; }
  var opts = Array.prototype.slice.call(el.options || []);
  var opt = opts.filter(function (o) { return o.value === want; })[0] ||
            opts.filter(function (o) { return o.text.trim() === want; })[0];
  if (!opt) { return "not_offered"; }
  el.value = opt.value;
  el.dispatchEvent(new Event("input", {bubbles: true}));
  el.dispatchEvent(new Event("change", {bubbles: true}));
  return "";
}
var r = pick(a.centre, a.centreValue) || pick(a.category, a.categoryValue);
if (r) { return {state: r}; }
if (a.submit) {
  var b = document.querySelector(a.submit);
  if (!b) { return {state: "no element " + a.submit}; }
  b.click();
}
return __wait(function () {
  var k = __kind(a.kinds);
  if (k) { return {state: k}; }
  if (a.failed && __matches(a.failed)) { return {state: "failed"}; }
  if (!__matches(a.ready)) { return null; }
  var items = Array.prototype.map.call(document.querySelectorAll(a.item), function (e) {
    return {date: (e.getAttribute(a.dateAttr) || "").trim(), time: a.timeAttr ? (e.getAttribute(a.timeAttr) || "").trim() : ""};
  });
  return {state: "ready", items: items};
}, %d);`, mustJSON(args), time.Until(deadline).Milliseconds())
	res, err := await(ctx, body)
	if err == nil && res.State == "" {
		err = fmt.Errorf("the dates did not load: %w", context.DeadlineExceeded)
	}
	return res, err
}

var (
	dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	timeRE = regexp.MustCompile(`^\d{2}:\d{2}$`)
)

func validDate(s string) bool {
	if !dateRE.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

func validTime(s string) bool {
	if !timeRE.MatchString(s) {
		return false
	}
	_, err := time.Parse("15:04", s)
	return err == nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only plain strings and maps go in
	}
	return string(b)
}

func jsString(s string) string { return mustJSON(s) }

// saveArtifacts writes the page's HTML, a screenshot and what the check
// knew into a folder of the artifacts directory, for the operator, and
// links them from the result. The password is redacted, in every form a
// page may hold it, from the HTML and check.json; the URL has no query
// string or fragment. A check's folder stays within its byte budget (the
// HTML cut, the screenshot left out) and the oldest folders make room.
func (c *check) saveArtifacts() {
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	name := fmt.Sprintf("%s-%s-%s-%s", time.Now().UTC().Format("20060102T150405.000Z"),
		safeName(c.mission), c.res.Step, hex.EncodeToString(suffix[:]))
	// The HTML first, each with a timeout of its own: a screenshot waits
	// for the page to render a frame, and a page that cannot must not
	// cost the operator its HTML too. A renderer that cannot even give
	// the HTML in time will not render a frame: no screenshot is tried.
	html, htmlErr := within(c, 5*time.Second, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.outerHTML : ""`))
	var png []byte
	if !errors.Is(htmlErr, context.DeadlineExceeded) {
		var err error
		if png, err = within(c, 5*time.Second, c.screenshot); err != nil {
			c.d.log.Info("no screenshot of the page", "err", err)
		}
	}
	pw := c.acct.Password
	info := map[string]any{
		"mission": c.mission, "account": c.acct.Email, "step": c.res.Step, "outcome": c.res.Outcome,
		"reason": c.res.Reason, "detail": redactDetail(c.res.Detail, pw), "url": redactURL(c.res.URL), "at": time.Now().UTC(),
	}
	// check.json is small; the HTML gets what is left of the check's
	// budget, and the screenshot is kept only if it fits whole.
	const infoRoom = 4 << 10
	budget := c.d.artifacts.perCheck - infoRoom
	page := []byte(redactSecret(html, pw))
	if int64(len(page)) > budget {
		info["html_truncated_from_bytes"] = len(page)
		page = page[:max(budget, 0)]
	}
	if len(png) > 0 && int64(len(page)+len(png)) > budget {
		info["screenshot_left_out_bytes"] = len(png)
		png = nil
	}
	body, _ := json.MarshalIndent(info, "", "  ")
	files := []artifactFile{{name: "check.json", body: body}}
	if htmlErr == nil {
		files = append(files, artifactFile{name: "page.html", body: page})
	}
	if len(png) > 0 {
		files = append(files, artifactFile{name: "screenshot.png", body: png, optional: true})
	}
	paths, err := c.d.artifacts.save(name, files)
	if paths == nil {
		c.d.log.Warn("cannot save artifacts", "dir", c.d.artifacts.dir, "err", err)
		return
	}
	if err != nil {
		c.d.log.Warn("some artifacts not saved", "err", err)
	}
	a := &Artifacts{Dir: filepath.Join(c.d.artifacts.dir, name), HTML: paths["page.html"], Screenshot: paths["screenshot.png"]}
	c.res.Artifacts = a
	c.d.log.Warn("saved the page the checker could not recognise", "dir", a.Dir, "mission", c.mission, "step", c.res.Step, "reason", c.res.Reason)
}

// screenshot shows the tab's page, then captures it: the page of a
// background tab is not rendered (see browser.Config.Background). A tab
// that cannot be shown is captured as it is.
func (c *check) screenshot(ctx context.Context, t *chromedp.Target) ([]byte, error) {
	if err := browser.Reveal(ctx); err != nil {
		c.d.log.Info("cannot show the tab for its screenshot", "err", err)
	}
	return chromedp.CaptureScreenshot()(ctx, t)
}

// within runs act on the tab, bounded by d of its own: for what the check
// does after a step has failed or ended (artifacts, the URL reached).
func within[T any](c *check, d time.Duration, act chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	return chromedp.Run(ctx, act)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func safeName(s string) string {
	s = unsafeChars.ReplaceAllString(s, "_")
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}
