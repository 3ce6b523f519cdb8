package portal

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// retryWatch keeps the longest Retry-After of the 429 and 503 answers a
// tab got, to its pages and to their scripts' requests. The headers are
// not visible from the page, and the Network domain, which reports them,
// is off (browser.quietTab): the tab pauses each such response instead
// (Fetch, response stage, documents, XHR and fetch only), reads its status
// and headers, and lets it go on at once.
type retryWatch struct {
	mu  sync.Mutex
	max time.Duration
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
		if e.ResponseStatusCode == http.StatusTooManyRequests || e.ResponseStatusCode == http.StatusServiceUnavailable {
			for _, h := range e.ResponseHeaders {
				if strings.EqualFold(h.Name, "Retry-After") {
					w.note(retryAfter(h.Value, time.Now()))
				}
			}
		}
		// A listener must not call the browser: it would wait for itself.
		go func() {
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
	_, err = cdp.Call(ctx, target, fetch.Enable, fetch.EnableParams{Patterns: patterns})
	return err
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
