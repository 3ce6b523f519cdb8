package portal

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
)

// miniDriverVia is miniDriver with the portal's handler wrapped.
func miniDriverVia(t *testing.T, check string, wrap func(http.Handler) http.Handler) *Driver {
	t.Helper()
	back := miniPortal(t)
	u, _ := url.Parse(back.URL)
	front := httptest.NewServer(wrap(httputil.NewSingleHostReverseProxy(u)))
	t.Cleanup(front.Close)
	prof, err := profile.Parse(fmt.Appendf(nil, miniProfile, check))
	if err != nil {
		t.Fatal(err)
	}
	if prof, err = prof.WithBaseURL(front.URL); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Profile: prof, Browser: shared(t), ArtifactsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A request step whose fetch gets no answer (the portal drops the
// connection) is a network error, as the JSON extract's is
// (reason=unreachable, TestJSONEndpointThatDropsTheConnectionIsUnreachable),
// not the page's own code having thrown (reason=profile).
func TestARequestStepThatGetsNoAnswerIsUnreachable(t *testing.T) {
	t.Parallel()
	d := miniDriverVia(t, `    - {name: home, goto: /home, expect: logged_in}
    - {name: ping, request: /keepalive}
    - {name: days, extract: {json: {url: "/days/{centre.id}.json", path: date, layout: "2006-01-02T15:04:05Z07:00"}}}
`, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/keepalive" {
				next.ServeHTTP(w, r)
				return
			}
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		})
	})
	res, _ := d.CheckMission(t.Context(), Account{Email: acc1, Password: pw1}, "fra", []Query{londonTourism}, nil)
	t.Logf("%s/%s at %s (%s)", res.Outcome, res.Reason, res.Step, res.Detail)
	if res.Outcome != Error || res.Reason != ReasonUnreachable || res.Step != "ping" {
		t.Errorf("got %s/%s at %s (%s); want error/unreachable at ping", res.Outcome, res.Reason, res.Step, res.Detail)
	}
}
