package portal

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// retryWatch keeps the longest Retry-After of the 429 and 503 answers a
// tab got, to its pages and to their scripts' requests. The headers are
// not visible from the page, and the Network domain, which reports them,
// is off (browser.quietTab): the tab pauses each such response instead
// (Fetch, response stage, documents, XHR and fetch only), reads its status
// and headers, and lets it go on at once.
//
// It also keeps what a page's script is waiting for, which the page cannot
// tell: a single-page app that never shows what a wait step waits for
// may be waiting for a slow answer (a timeout, not an unknown page), or
// have had a 5xx answer it drew as its own error view (a server error).
// Scripts' requests are paused when sent as well, to count those in
// flight.
type retryWatch struct {
	mu  sync.Mutex
	max time.Duration
	// pending are the scripts' requests sent and not answered yet.
	pending map[fetch.RequestID]bool
	// scriptStatus is the HTTP status of the latest answer to a script.
	scriptStatus int64
	// sites are the portal's (siteOf its base URL and of its allowed
	// origins): only their requests count (what a page waits for, a
	// Retry-After). A third party's (an analytics beacon's 429, a slow
	// captcha widget) says nothing of the portal. Empty: every request
	// counts.
	sites map[string]bool
}

// portalSites are the sites of a profile's base URL and allowed origins.
func portalSites(p *profile.Profile) map[string]bool {
	sites := map[string]bool{siteOf(p.BaseURL): true}
	for _, o := range p.AllowedOrigins {
		sites[siteOf(o)] = true
	}
	delete(sites, "")
	return sites
}

// siteOf is the site of a URL: its registrable domain (visa.example.com
// and api.example.com are one site), or its host when it has none (an IP
// address, localhost).
func siteOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	// As the browser reports it: lower case, no final dot, an
	// internationalised name in its xn-- form.
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if ascii, err := idna.Lookup.ToASCII(host); err == nil {
		host = ascii
	}
	if site, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil && net.ParseIP(host) == nil {
		return site
	}
	return host
}

func (w *retryWatch) note(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.max = max(w.max, d)
}

func (w *retryWatch) longest() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// scripts reports how many script requests await their answer, and the
// status of the latest one answered (0: none yet, or a network error).
func (w *retryWatch) scripts() (inFlight int, lastStatus int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending), int(w.scriptStatus)
}

// paused records a paused request or response of the tab.
func (w *retryWatch) paused(e *fetch.EventRequestPaused) {
	script := e.ResourceType == network.ResourceTypeXHR || e.ResourceType == network.ResourceTypeFetch
	atRequest := e.ResponseStatusCode == 0 && e.ResponseErrorReason == ""
	if len(w.sites) > 0 && e.Request != nil && !w.sites[siteOf(e.Request.URL)] {
		return // not the portal's: neither waited for, nor its answer
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if script {
		if w.pending == nil {
			w.pending = map[fetch.RequestID]bool{}
		}
		if atRequest {
			w.pending[e.RequestID] = true
			return
		}
		delete(w.pending, e.RequestID)
		w.scriptStatus = e.ResponseStatusCode
	}
	if e.ResponseStatusCode == http.StatusTooManyRequests || e.ResponseStatusCode == http.StatusServiceUnavailable {
		for _, h := range e.ResponseHeaders {
			if strings.EqualFold(h.Name, "Retry-After") {
				w.max = max(w.max, retryAfter(h.Value, time.Now()))
			}
		}
	}
}

// start begins watching the tab of ctx, until the tab ends.
func (w *retryWatch) start(ctx context.Context) error {
	var target *chromedp.Target
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		target = t
		return nil
	}))
	if err != nil {
		return err
	}
	err = chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		w.paused(e)
		atRequest := e.ResponseStatusCode == 0 && e.ResponseErrorReason == ""
		// A listener must not call the browser: it would wait for itself.
		go func() {
			if atRequest {
				_, _ = cdp.Call(ctx, target, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
				return
			}
			_, _ = cdp.Call(ctx, target, fetch.ContinueResponse, fetch.ContinueResponseParams{RequestID: e.RequestID})
		}()
	})
	if err != nil {
		return err
	}
	var patterns []*fetch.RequestPattern
	for _, t := range []network.ResourceType{network.ResourceTypeDocument, network.ResourceTypeXHR, network.ResourceTypeFetch} {
		patterns = append(patterns, &fetch.RequestPattern{URLPattern: "*", ResourceType: t, RequestStage: fetch.RequestStageResponse})
	}
	for _, t := range []network.ResourceType{network.ResourceTypeXHR, network.ResourceTypeFetch} {
		patterns = append(patterns, &fetch.RequestPattern{URLPattern: "*", ResourceType: t, RequestStage: fetch.RequestStageRequest})
	}
	_, err = cdp.Call(ctx, target, fetch.Enable, fetch.EnableParams{Patterns: patterns})
	return err
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. A delay
// past apirule.MaxPortalRetryAfter, the longest pause a portal's hint
// makes, is that: seconds are capped before they become a Duration, which
// too many of them would overflow.
func retryAfter(h string, now time.Time) time.Duration {
	const maxSeconds = uint64(apirule.MaxPortalRetryAfter / time.Second)
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	// Digits only; too many of them parse as the largest uint64.
	if s, err := strconv.ParseUint(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		return time.Duration(min(s, maxSeconds)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), apirule.MaxPortalRetryAfter)
	}
	return 0
}
