package portal

import (
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
)

func TestSiteOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://visa.vfsglobal.com/gbr/en/fra": "vfsglobal.com",
		"https://lift-api.vfsglobal.com/x":      "vfsglobal.com",
		"https://www.tlscontact.co.uk/":         "tlscontact.co.uk",
		"http://127.0.0.1:8080/login":           "127.0.0.1",
		"http://localhost:9/beacon":             "localhost",
		"http://[::1]:9/":                       "::1",
		// As Chromium reports hosts: lower case, no final dot, xn--.
		"https://Visa.VFSGlobal.com/":    "vfsglobal.com",
		"https://VISA.TLSCONTACT.CO.UK/": "tlscontact.co.uk",
		"https://visa.example.com./":     "example.com",
		"https://visa.bücher.example/":   "xn--bcher-kva.example",
	} {
		if got := siteOf(in); got != want {
			t.Errorf("siteOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// A third party's answer to a page's script (an analytics beacon's 429, a
// captcha widget still loading) says nothing of the portal: a wait step
// that times out must not read it as the portal's rate limit or slowness.
func TestRetryWatchCountsOnlyThePortalsRequests(t *testing.T) {
	t.Parallel()
	w := &retryWatch{sites: portalSites(&profile.Profile{BaseURL: "http://127.0.0.1:8080", AllowedOrigins: []string{"http://[::1]:8443"}})}
	event := func(id, url string, status int64) *fetch.EventRequestPaused {
		return &fetch.EventRequestPaused{RequestID: fetch.RequestID(id), Request: &network.Request{URL: url},
			ResourceType: network.ResourceTypeXHR, ResponseStatusCode: status,
			ResponseHeaders: []*fetch.HeaderEntry{{Name: "Retry-After", Value: "600"}}}
	}
	w.paused(event("beacon", "http://localhost:9/collect", 0))
	w.paused(event("widget", "http://localhost:9/captcha", 0))
	w.paused(event("beacon", "http://localhost:9/collect", 429))
	if inFlight, status := w.scripts(); inFlight != 0 || status != 0 || w.longest() != 0 {
		t.Fatalf("third party's requests counted: %d in flight, status %d, retry after %s", inFlight, status, w.longest())
	}
	w.paused(event("api", "http://127.0.0.1:8080/api/slots", 0))
	w.paused(event("login", "http://[::1]:8443/login", 0)) // an allowed origin is the portal's
	if inFlight, _ := w.scripts(); inFlight != 2 {
		t.Fatalf("%d of the portal's requests in flight, want 2", inFlight)
	}
	w.paused(event("login", "http://[::1]:8443/login", 200))
	w.paused(event("api", "http://127.0.0.1:8080/api/slots", 429))
	if inFlight, status := w.scripts(); inFlight != 0 || status != 429 || w.longest() != 10*time.Minute {
		t.Fatalf("the portal's 429: %d in flight, status %d, retry after %s", inFlight, status, w.longest())
	}
}
