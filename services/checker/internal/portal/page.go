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

// errBadProfile means the page cannot use something else of the profile
// (a regular expression JavaScript does not read).
var errBadProfile = errors.New("the page cannot use the profile")

// errPageScript means the driver's script threw in the page. Its message
// is not ours: the page's own scripts may have thrown it (or replaced what
// ours calls), and V8's messages quote the values they fail on, so it may
// hold what the page shows of an applicant. Details name its kind only.
var errPageScript = errors.New("the driver's script threw in the page")

// jsErrorKinds are the exception names a detail may repeat: JavaScript's
// and the DOM's own, none a page made up.
var jsErrorKinds = map[string]bool{
	"Error": true, "TypeError": true, "RangeError": true, "ReferenceError": true, "SyntaxError": true,
	"EvalError": true, "URIError": true, "AggregateError": true, "DOMException": true,
}

// jsErrorKind says what kind of exception name is, in words that hold
// nothing of the page.
func jsErrorKind(name string) string {
	switch {
	case !jsErrorKinds[name]:
		return "an exception of no standard kind"
	case strings.IndexByte("AEIOU", name[0]) >= 0:
		return "an " + name
	}
	return "a " + name
}

// pageScriptError is errPageScript for an exception named name
// (TypeError...), told in our words: its kind at most, never its message.
func pageScriptError(name string) error {
	return fmt.Errorf("%w (%s; its message is left out: it may quote the page)", errPageScript, jsErrorKind(name))
}

// exceptionName is the name of the exception an Evaluate met (its class,
// TypeError...), "" when it threw no object.
func exceptionName(e *chromedp.ExceptionError) string {
	if e.ExceptionDetails == nil || e.Exception == nil {
		return ""
	}
	return e.Exception.ClassName
}

// matchJS defines, in the page, the marker test and the wait that
// classification and the slot wait share. A selector that does not parse
// makes the page answer {ours: __ours, fault: "selector", what: the
// selector} so that a broken profile is named, not mistaken for an
// unknown page. __ours is await's random token for the run: an answer
// without it is never read as ours (a page's exception could say anything
// a prefix would), and __caught tells any other exception by its name only.
//
// __wait resolves as soon as check() returns something, looking at every
// DOM change and at the document's load (and every 50 ms, for what
// observers miss), or resolves null after timeoutMs: one DevTools round
// trip per wait, and no polling delay. A check may call __settled(ms) to
// learn whether the document has been loaded for ms already.
const matchJS = `
function __fault(kind, what) { return {ours: __ours, fault: kind, what: what}; }
function __caught(e) {
  if (e && e.ours === __ours && e.fault) { return __fault(e.fault, e.what); }
  var name = "";
  try { name = String(e && e.name || typeof e); } catch (x) {}
  return {thrown: true, errorName: name};
}
var __text = null;
function __bodyText() {
  if (__text === null) { __text = (document.body ? document.body.innerText : "").toLowerCase(); }
  return __text;
}
function __re(src) {
  try { return new RegExp(src, "i"); } catch (e) { throw __fault("profile", "regexp " + src + " does not parse in JavaScript"); }
}
function __has(text, m) {
  if (m.regexp) { return __re(m.regexp).test(text); }
  return text.toLowerCase().indexOf(m.text.toLowerCase()) >= 0;
}
function __matches(m) {
  if (!m || (!m.css && !m.text && !m.regexp)) { return false; }
  if (m.css) {
    var els;
    try { els = document.querySelectorAll(m.css); } catch (e) { throw __fault("selector", m.css); }
    if (!m.text && !m.regexp) { return els.length > 0; }
    for (var i = 0; i < els.length; i++) {
      if (__has(els[i].textContent || "", m)) { return true; }
    }
    return false;
  }
  return __has(__bodyText(), m);
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
        finish(__caught(e));
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
	State  string     `json:"state"` // a step's wait: "ready", "failed" or a trouble kind
	Items  []slotItem `json:"items"`
	Text   string     `json:"text"`  // a message to read, or a JSON answer
	Retry  string     `json:"retry"` // the Retry-After of a fetched answer
	More   bool       `json:"more"`  // a list's next page link shows
	// Ours is await's token for the run, set with Fault ("selector",
	// "profile") when the profile is at fault, What naming what of it.
	// Thrown says the script met an exception, ErrorName its name
	// (TypeError...): the page's to choose, its message not even read.
	Ours      string `json:"ours"`
	Fault     string `json:"fault"`
	What      string `json:"what"`
	Thrown    bool   `json:"thrown"`
	ErrorName string `json:"errorName"`
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
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	ours := hex.EncodeToString(tok[:])
	expr := "(function(){var __ours = " + jsString(ours) + ";" + matchJS +
		"\ntry {\n" + body + "\n} catch (e) { return __caught(e); }\n})()"
	for {
		res, err := chromedp.Run(ctx, chromedp.Evaluate[*lookResult](expr, awaitPromise))
		switch {
		case err == nil && res == nil:
			return lookResult{}, nil
		case err == nil && res.Ours == ours && res.Fault == "selector":
			return lookResult{}, fmt.Errorf("%w: %s", errBadSelector, res.What)
		case err == nil && res.Ours == ours && res.Fault == "profile":
			return lookResult{}, fmt.Errorf("%w: %s", errBadProfile, res.What)
		case err == nil && (res.Thrown || res.Fault != ""):
			return lookResult{}, pageScriptError(res.ErrorName)
		case err == nil:
			return *res, nil
		}
		if ex := (*chromedp.ExceptionError)(nil); errors.As(err, &ex) {
			// The script threw outside __wait's try, or its promise was
			// rejected: the page replaced what it calls (MutationObserver,
			// setInterval, Promise, fetch). Another run would throw again.
			return lookResult{}, pageScriptError(exceptionName(ex))
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

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only plain strings and maps go in
	}
	return string(b)
}

func jsString(s string) string { return mustJSON(s) }

// saveArtifacts writes what the check knew (check.json) into a folder of
// the artifacts directory, for the operator, and links it from the result;
// with CHECKER_ARTIFACTS_PAGES (artifactStore.pages) the page's HTML and a
// screenshot too. They are left out by default because a portal page can
// show an applicant's name, passport number and email, and carry the
// session's tokens, which no redaction can find all of. The password is
// redacted, in every form a page may hold it, from the HTML and
// check.json; the URL has no query string or fragment. A check's folder
// stays within its byte budget (the HTML cut, the screenshot left out) and
// the oldest folders make room.
func (c *check) saveArtifacts() {
	if c.courtesy {
		return
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	name := fmt.Sprintf("%s-%s-%s-%s", time.Now().UTC().Format(folderTime),
		safeName(c.mission), c.res.Step, hex.EncodeToString(suffix[:]))
	// The HTML first, each with a timeout of its own: a screenshot waits
	// for the page to render a frame, and a page that cannot must not
	// cost the operator its HTML too. A renderer that cannot even give
	// the HTML in time will not render a frame: no screenshot is tried.
	pages := c.d.artifacts.pages
	var (
		html    string
		htmlErr error
		png     []byte
	)
	if pages {
		html, htmlErr = within(c, 5*time.Second, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.outerHTML : ""`))
		if !errors.Is(htmlErr, context.DeadlineExceeded) {
			var err error
			if png, err = within(c, 5*time.Second, c.screenshot); err != nil {
				c.d.log.Info("no screenshot of the page", "err", err)
			}
		}
	}
	pw := c.acct.Password
	info := map[string]any{
		"mission": c.mission, "account": c.acct.Email, "step": c.res.Step, "outcome": c.res.Outcome,
		"reason": c.res.Reason, "detail": redactDetail(c.res.Detail, pw), "url": redactURL(c.res.URL), "at": time.Now().UTC(),
	}
	if !pages {
		info["page"] = "not kept: CHECKER_ARTIFACTS_PAGES=true keeps the HTML and a screenshot"
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
	if pages && htmlErr == nil {
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
	c.d.log.Warn("saved the artifacts of a page the checker could not make sense of", "dir", a.Dir, "mission", c.mission,
		"step", c.res.Step, "reason", c.res.Reason, "pages", pages)
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
