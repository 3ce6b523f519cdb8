package portal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

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

// pollEvery is how often a page is looked at while the driver waits for a
// marker. Each look is one DevTools round trip of a millisecond or so.
const pollEvery = 20 * time.Millisecond

// matchJS defines, in the page, the marker test that classification and
// the slot wait share. A selector that does not parse makes the page
// answer "!selector:" so that a broken profile is named, not mistaken for
// an unknown page.
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
`

// classify looks at the loaded page for up to the settle time and returns
// the first kind whose markers match, or "" for an unknown page. An error
// status gets one look only: such pages come from the server as they are,
// and a bare 500 should not cost the settle time.
func (c *check) classify(kinds []matcher, resp *network.Response) (string, error) {
	expr := fmt.Sprintf("(function(kinds){%s\nreturn __kind(kinds);})(%s)", matchJS, mustJSON(kinds))
	settle := c.d.prof.Timeouts.Settle.D()
	if resp != nil && resp.Status >= 400 {
		settle = 0
	}
	ctx, cancel := context.WithTimeout(c.ctx, settle)
	defer cancel()
	for {
		// The first look runs even when settle is 0.
		look, lookCancel := context.WithTimeout(c.ctx, max(settle, time.Second))
		kind, err := chromedp.Run(look, chromedp.Evaluate[string](expr))
		lookCancel()
		if err == nil && kind != "" {
			return kind, nil
		}
		if err != nil && strings.Contains(err.Error(), "!selector:") {
			return "", fmt.Errorf("%w: %w", errBadSelector, err)
		}
		if c.ctx.Err() != nil {
			return "", c.ctx.Err()
		}
		// A page can still be rendering its markers, or be between two
		// documents (a script redirect): look again until settle ends.
		select {
		case <-ctx.Done():
			return "", nil
		case <-time.After(pollEvery):
		}
	}
}

// slotState is what the slot wait sees.
type slotState struct {
	State string     `json:"state"` // "", "ready", "failed" or a trouble kind
	Items []slotItem `json:"items"`
}

type slotItem struct {
	Date string `json:"date"`
	Time string `json:"time"`
}

// pollSlots waits until the dates are loaded, the page says they failed,
// or a trouble marker shows, until ctx ends.
func (c *check) pollSlots(ctx context.Context, trouble []matcher) (slotState, error) {
	s := c.d.prof.Slots
	args := map[string]any{
		"kinds": trouble, "ready": s.Ready, "item": s.Item, "dateAttr": s.DateAttr, "timeAttr": s.TimeAttr,
	}
	if !s.Failed.IsZero() {
		args["failed"] = s.Failed
	}
	expr := fmt.Sprintf(`(function(a){%s
var k = __kind(a.kinds);
if (k) { return {state: k, items: []}; }
if (a.failed && __matches(a.failed)) { return {state: "failed", items: []}; }
if (!__matches(a.ready)) { return {state: "", items: []}; }
var items = Array.prototype.map.call(document.querySelectorAll(a.item), function (e) {
  return {date: (e.getAttribute(a.dateAttr) || "").trim(), time: a.timeAttr ? (e.getAttribute(a.timeAttr) || "").trim() : ""};
});
return {state: "ready", items: items};
})(%s)`, matchJS, mustJSON(args))
	for {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[slotState](expr))
		if err == nil && st.State != "" {
			return st, nil
		}
		if err != nil && strings.Contains(err.Error(), "!selector:") {
			return slotState{}, fmt.Errorf("%w: %w", errBadSelector, err)
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return slotState{}, fmt.Errorf("%w (last look: %v)", ctx.Err(), err)
		case <-time.After(pollEvery):
		}
	}
}

// chooseJS selects the centre and the category (by value or by label),
// fires the events a user's choice fires, and clicks the submit button.
func chooseJS(p *profile.Profile, q Query) string {
	args := map[string]string{
		"centre": p.Slots.Centre, "centreValue": q.Centre,
		"category": p.Slots.VisaCategory, "categoryValue": q.VisaCategory,
		"submit": p.Slots.Submit,
	}
	return fmt.Sprintf(`(function(a){
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
if (r) { return r; }
if (a.submit) {
  var b = document.querySelector(a.submit);
  if (!b) { return "no element " + a.submit; }
  b.click();
}
return "ok";
})(%s)`, mustJSON(args))
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

// saveArtifacts writes a screenshot, the page's HTML and what the check
// knew under the artifacts directory, for the operator, and links them
// from the result. The password is redacted from the HTML.
func (c *check) saveArtifacts() {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	name := fmt.Sprintf("%s-%s-%s-%s", time.Now().UTC().Format("20060102T150405.000Z"),
		safeName(c.mission), c.res.Step, hex.EncodeToString(suffix[:]))
	dir := filepath.Join(c.d.artifacts, name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		c.d.log.Warn("cannot save artifacts", "dir", dir, "err", err)
		return
	}
	a := &Artifacts{Dir: dir}
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		a.Screenshot = filepath.Join(dir, "screenshot.png")
		if err := os.WriteFile(a.Screenshot, png, 0o640); err != nil {
			a.Screenshot = ""
		}
	}
	if html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.outerHTML : ""`)); err == nil {
		if len(c.acct.Password) >= 4 {
			html = strings.ReplaceAll(html, c.acct.Password, "[password redacted]")
		}
		a.HTML = filepath.Join(dir, "page.html")
		if err := os.WriteFile(a.HTML, []byte(html), 0o640); err != nil {
			a.HTML = ""
		}
	}
	info, _ := json.MarshalIndent(map[string]any{
		"mission": c.mission, "account": c.acct.Email, "step": c.res.Step, "outcome": c.res.Outcome,
		"reason": c.res.Reason, "detail": c.res.Detail, "url": c.res.URL, "at": time.Now().UTC(),
	}, "", "  ")
	_ = os.WriteFile(filepath.Join(dir, "check.json"), info, 0o640)
	c.res.Artifacts = a
	c.d.log.Warn("saved the page the checker could not recognise", "dir", dir, "mission", c.mission, "step", c.res.Step, "reason", c.res.Reason)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func safeName(s string) string {
	s = unsafeChars.ReplaceAllString(s, "_")
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}
