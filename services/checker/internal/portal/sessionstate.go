package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// The session state is the Checker's own format, opaque to the account
// pool, which stores it encrypted per account: the browser context's
// cookies as the DevTools protocol gives them, in JSON,
//
//	{"v": 1, "cookies": [{"name": ..., "value": ..., "domain": ..., ...}]}
//
// Storage.getCookies / Storage.setCookies, called on the browser endpoint
// with the tab's browser context, need no Network domain enabled.
type sessionState struct {
	V       int               `json:"v"`
	Cookies []*network.Cookie `json:"cookies"`
}

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
	if len(params) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
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
	if len(cookies) == 0 {
		return nil, nil
	}
	out, err := json.Marshal(sessionState{V: sessionStateVersion, Cookies: cookies})
	if err != nil {
		return nil, err
	}
	if len(out) > MaxSessionState {
		return nil, fmt.Errorf("the session's cookies take %d bytes, more than the %d the pool keeps", len(out), MaxSessionState)
	}
	return out, nil
}
