package portal

import (
	"net/http"
	"testing"
)

// A page whose own script makes the driver's in-page wait throw (Date.now
// replaced, as in TestAPageScriptErrorIsToldInOurWords) is the portal's
// page, not the browser: as the same exception met in a fill, it is
// reason=profile with the artifacts saved, not reason=browser (which would
// probe the browser and release the account as aborted, uncharged).
func TestAPageExceptionInAWaitIsNotABrowserFailure(t *testing.T) {
	t.Parallel()
	d, _ := setupWith(t, nil, loginPageWithScript(`Date.now = function () { throw new TypeError("no"); };`))
	res, err := d.CheckMission(t.Context(), Account{Email: acc1, Password: pw1}, "fra", []Query{londonTourism}, nil)
	t.Logf("%s/%s at %s (%s), err %v, artifacts %v", res.Outcome, res.Reason, res.Step, res.Detail, err, res.Artifacts)
	if res.Reason == ReasonBrowser || err != nil {
		t.Errorf("a page's exception in the wait ends as reason=%s with CheckMission's error %v (an infra error: browser probed, account released aborted); want the page's fault, as in a fill (profile), and no error", res.Reason, err)
	}
	if res.Artifacts == nil {
		t.Errorf("no artifacts kept for a page that broke the driver's script (a fill's page exception keeps them)")
	}
}

// loginPageWithScript serves, for the portal's login page, a page that
// matches none of the profile's markers and runs script (the page's own
// code, which the driver's scripts then meet); the rest of the portal is
// as it was.
func loginPageWithScript(script string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/login" {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<!doctype html><html><body><h1>Applicant</h1>
<script>` + script + `</script></body></html>`))
		})
	}
}
