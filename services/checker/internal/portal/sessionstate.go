package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// The session state is the Checker's own format, opaque to the account
// pool, which stores it encrypted per account: the browser context's
// cookies as the DevTools protocol gives them, in JSON,
//
//	{"v": 1, "cookies": [{"name": ..., "value": ..., "domain": ..., ...}],
//	 "local_storage": {"https://portal.example": {"key": "value"}}}
//
// local_storage is there when the profile asks for it
// (session_local_storage): the local storage of the origin of the page the
// check ended on, put back by a script that runs before the portal's own
// on the first page of that origin.
//
// Storage.getCookies / Storage.setCookies, called on the browser endpoint
// with the tab's browser context, need no Network domain enabled.
type sessionState struct {
	V            int                          `json:"v"`
	Cookies      []*network.Cookie            `json:"cookies"`
	LocalStorage map[string]map[string]string `json:"local_storage,omitempty"`
}

// restoreStorageJS puts an origin's saved local storage back, once per
// tab (the sessionStorage flag), before the page's scripts run.
const restoreStorageJS = `(function (saved) {
  try {
    var items = saved[location.origin];
    if (!items || sessionStorage.getItem("slotwatch_restored")) { return; }
    Object.keys(items).forEach(function (k) { localStorage.setItem(k, items[k]); });
    sessionStorage.setItem("slotwatch_restored", "1");
  } catch (e) {}
})(%s)`

// readStorageJS reads the page's origin and local storage.
const readStorageJS = `(function () {
  var items = {};
  try { for (var i = 0; i < localStorage.length; i++) { var k = localStorage.key(i); items[k] = localStorage.getItem(k); } } catch (e) {}
  return {origin: location.origin, items: items};
})()`

const sessionStateVersion = 1

// MaxSessionState is the largest state the pool takes (ReleaseRequest's
// session_state); a bigger one is not kept.
const MaxSessionState = 128 << 10

var errSessionState = errors.New("the session state is not one this checker wrote")

// restoreSession puts the state's cookies into the tab's browser context.
// An expired cookie is left out, as the browser would drop it.
func (c *check) restoreSession(state []byte) error {
	var st sessionState
	if err := json.Unmarshal(state, &st); err != nil || st.V != sessionStateVersion {
		return errSessionState
	}
	now := float64(time.Now().Unix())
	params := make([]*network.CookieParam, 0, len(st.Cookies))
	for _, k := range st.Cookies {
		if k == nil || (!k.Session && k.Expires > 0 && k.Expires < now) {
			continue
		}
		p := &network.CookieParam{Name: k.Name, Value: k.Value, Domain: k.Domain, Path: k.Path, Secure: k.Secure,
			HTTPOnly: k.HTTPOnly, SameSite: k.SameSite, Priority: k.Priority, SourceScheme: k.SourceScheme,
			SourcePort: k.SourcePort, PartitionKey: k.PartitionKey}
		if !k.Session && k.Expires > 0 {
			p.Expires = cdp.TimeSinceEpoch(k.Expires)
		}
		params = append(params, p)
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if len(st.LocalStorage) > 0 && c.d.prog.KeepLocalStorage {
		err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
				Source: fmt.Sprintf(restoreStorageJS, mustJSON(st.LocalStorage)), WorldName: "slotwatch"})
			return err
		}))
		if err != nil {
			return fmt.Errorf("restore the local storage: %w", err)
		}
	}
	if len(params) == 0 {
		return nil
	}
	b, id := c.browserContext()
	_, err := cdp.Call(ctx, b, storage.SetCookies, storage.SetCookiesParams{Cookies: params, BrowserContextID: id})
	return err
}

// browserContext is the browser endpoint and the tab's browser context,
// on which the Storage domain reads and writes the context's cookies.
func (c *check) browserContext() (*chromedp.Browser, cdp.BrowserContextID) {
	cc := chromedp.FromContext(c.ctx)
	return cc.Browser, cc.BrowserContextID
}

// saveSession reads the tab's browser context's cookies as a session
// state; nil when there are none.
func (c *check) saveSession() ([]byte, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	b, id := c.browserContext()
	res, err := cdp.Call(ctx, b, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: id})
	cookies := res.Cookies
	if err != nil {
		return nil, fmt.Errorf("read the session's cookies: %w", err)
	}
	st := sessionState{V: sessionStateVersion, Cookies: cookies}
	if c.d.prog.KeepLocalStorage {
		type pageStorage struct {
			Origin string            `json:"origin"`
			Items  map[string]string `json:"items"`
		}
		ps, err := within(c, 5*time.Second, chromedp.Evaluate[pageStorage](readStorageJS))
		if err != nil {
			return nil, fmt.Errorf("read the local storage: %w", err)
		}
		if len(ps.Items) > 0 && (strings.HasPrefix(ps.Origin, "http://") || strings.HasPrefix(ps.Origin, "https://")) {
			st.LocalStorage = map[string]map[string]string{ps.Origin: ps.Items}
		}
	}
	if len(st.Cookies) == 0 && len(st.LocalStorage) == 0 {
		return nil, nil
	}
	out, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	if len(out) > MaxSessionState {
		return nil, fmt.Errorf("the session's cookies take %d bytes, more than the %d the pool keeps", len(out), MaxSessionState)
	}
	return out, nil
}
